"""Object-store URIs are refused when the pipeline is defined, never written to a local look-alike."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from mlpipe import OutputArtifact, Pipeline, component
from mlpipe.components.pusher import Pusher
from mlpipe.errors import DefinitionError
from mlpipe.io.uris import local_path
from mlpipe.types import Model


@component
def noop() -> None:
    pass


@component
def make_model(model: OutputArtifact[Model]) -> None:
    pass


@pytest.mark.parametrize("root", ["s3://bucket/root", "gs://bucket/root", "hdfs://nn/root", "S3://b/r"])
def test_object_store_root_is_a_definition_error(tmp_path, root):
    with pytest.raises(DefinitionError) as caught:
        Pipeline("p", root, [noop()])
    message = str(caught.value)
    assert f"pipeline 'p': root is '{root}'" in message
    assert "local paths only" in message


def test_file_uri_and_plain_paths_are_local(tmp_path):
    assert Pipeline("p", f"file://{tmp_path}/root", [noop()]).root == f"{tmp_path}/root"
    assert local_path("relative/dir", "x") == "relative/dir"
    assert local_path("/a/b:c//d", "x") == "/a/b:c//d"  # '://' only counts as a scheme at the start


def test_pusher_refuses_a_bucket_destination():
    with pytest.raises(DefinitionError, match="Pusher: push_destination base_directory is 'gs://b/serving'"):
        Pusher(
            model=make_model().outputs["model"],
            push_destination={"filesystem": {"base_directory": "gs://b/serving"}},
        )


def test_mlpipe_run_with_a_bucket_root_fails_and_writes_nothing_locally(tmp_path):
    pipeline_file = tmp_path / "bucket_pipeline.py"
    pipeline_file.write_text(
        textwrap.dedent(
            """
            from mlpipe import Pipeline, component

            @component
            def noop() -> None:
                pass

            pipeline = Pipeline("bucket", "s3://bucket/root", [noop()])
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
    assert "'s3://bucket/root'" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["bucket_pipeline.py"]
