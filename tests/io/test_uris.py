"""Locations: local paths and s3:// / gs:// URIs are accepted; any other scheme is refused when the
pipeline is defined, never written to a local look-alike."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from mlpipe import OutputArtifact, Pipeline, component
from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.components.pusher import Pusher
from mlpipe.errors import DefinitionError, ServingError
from mlpipe.io.uris import join, location
from mlpipe.metadata.config import sqlite
from mlpipe.serving.layout import base_path_location
from mlpipe.types import Model


@component
def noop() -> None:
    pass


@component
def make_model(model: OutputArtifact[Model]) -> None:
    pass


@pytest.mark.parametrize("root", ["hdfs://nn/root", "ftp://h/r", "S3A://b/r", "az://c/r"])
def test_a_scheme_mlpipe_cannot_handle_is_a_definition_error(tmp_path, root):
    with pytest.raises(DefinitionError) as caught:
        Pipeline("p", root, [noop()], metadata=sqlite(tmp_path / "m.sqlite"))
    message = str(caught.value)
    assert f"pipeline 'p': root is '{root}'" in message
    assert "local paths, s3:// and gs:// URIs" in message


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        ("s3://bucket/root", "s3://bucket/root"),
        ("S3://bucket//a/./b/", "s3://bucket/a/b"),
        ("gs://bucket", "gs://bucket"),
    ],
)
def test_bucket_roots_are_kept_as_normalized_uris(tmp_path, given, recorded):
    assert Pipeline("p", given, [noop()], metadata=sqlite(tmp_path / "m.sqlite")).root == recorded


def test_a_bucket_root_needs_a_metadata_store_that_is_not_beside_it():
    with pytest.raises(DefinitionError, match="no SQLite file can live"):
        Pipeline("p", "s3://bucket/root", [noop()])


def test_a_uri_without_a_bucket_is_refused():
    with pytest.raises(DefinitionError, match="name a bucket"):
        location("s3:///key", "x")


def test_file_uri_and_plain_paths_are_local(tmp_path):
    assert Pipeline("p", f"file://{tmp_path}/root", [noop()]).root == f"{tmp_path}/root"
    assert location("relative/dir", "x") == os.path.abspath("relative/dir")
    assert location("/a/b:c//d", "x") == "/a/b:c/d"  # '://' only counts as a scheme at the start
    assert join("s3://b/r/", "node", "key") == "s3://b/r/node/key"
    assert join("/r", "node") == "/r/node"


def test_pusher_and_example_gen_refuse_unknown_schemes_and_take_buckets():
    model = make_model().outputs["model"]
    with pytest.raises(
        DefinitionError, match="Pusher: push_destination base_directory is 'hdfs://b/serving'"
    ):
        Pusher(model=model, push_destination={"filesystem": {"base_directory": "hdfs://b/serving"}})
    Pusher(model=model, push_destination={"filesystem": {"base_directory": "gs://b/serving"}})
    with pytest.raises(DefinitionError, match="CsvExampleGen: input_base is 'ftp://h/data'"):
        CsvExampleGen(input_base="ftp://h/data")
    CsvExampleGen(input_base="s3://b/data")


def test_serving_refuses_unknown_schemes():
    with pytest.raises(ServingError, match="model base path is 'hdfs://nn/models'"):
        base_path_location("hdfs://nn/models")
    assert base_path_location("s3://b/models/") == "s3://b/models"


def test_mlpipe_run_with_an_unknown_scheme_fails_and_writes_nothing_locally(tmp_path):
    pipeline_file = tmp_path / "bucket_pipeline.py"
    pipeline_file.write_text(
        textwrap.dedent(
            """
            from mlpipe import Pipeline, component

            @component
            def noop() -> None:
                pass

            pipeline = Pipeline("bucket", "hdfs://nn/root", [noop()])
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "mlpipe.cli", "run", str(pipeline_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode != 0
    assert "'hdfs://nn/root'" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["bucket_pipeline.py"]


def test_an_approval_mailbox_in_a_bucket_is_refused_not_made_locally(tmp_path, monkeypatch):
    from mlpipe.errors import DataError
    from mlpipe.io.approvals import mailbox

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="must be local"):
        mailbox("s3://b/root/Approval", 3)
    assert not os.listdir(tmp_path)
