"""``gs://`` through google-cloud-storage against gcp-storage-emulator on 127.0.0.1, read back with
the emulator's own JSON API client (google-cloud-storage, not mlpipe's wrapper)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlpipe.io import objstore
from mlpipe.serving.layout import publish_version, version_dirs
from tests.objstore.bucket_pipeline import expected_model_files, expected_rows

REPO = Path(__file__).resolve().parents[2]


def _objects(uri: str) -> dict[str, bytes]:
    from google.cloud import storage

    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    client = storage.Client.create_anonymous_client()
    root = prefix.rstrip("/") + "/"
    return {b.name[len(root) :]: b.download_as_bytes() for b in client.list_blobs(bucket, prefix=root)}


def test_trees_and_versions_on_gcs(tmp_path, gcs_bucket):
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "variables" / "v").write_bytes(b"weights")
    (model / "saved_model.pb").write_bytes(b"graph")
    base = f"{gcs_bucket}/serving/m"
    assert publish_version(str(model), base, 4) == 4
    assert _objects(f"{base}/4").keys() == {".mlpipe-claim", "saved_model.pb", "variables/v"}
    objstore.upload_tree(str(model / "variables"), f"{base}/9/variables")  # saved_model.pb not yet up
    assert version_dirs(base) == {4: f"{base}/4"}
    objstore.download_tree(f"{base}/4", str(tmp_path / "back"))
    assert (tmp_path / "back" / "variables" / "v").read_bytes() == b"weights"
    objstore.delete_tree(f"{base}/4")
    assert _objects(f"{base}/4") == {}


@pytest.mark.e2e
def test_a_pipeline_on_gcs_publishes_whole_artifacts_and_pushes(tmp_path, gcs_bucket):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "BUCKET_ROOT": f"{gcs_bucket}/root",
        "BUCKET_SERVING": f"{gcs_bucket}/serving/model",
        "MLPIPE_METADATA": str(tmp_path / "metadata.sqlite"),
        "MLPIPE_TEST_CALLS_LOG": str(tmp_path / "calls.log"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "mlpipe.cli", "run", str(Path(__file__).with_name("bucket_pipeline.py"))],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    root = _objects(f"{gcs_bucket}/root")
    assert root["rows/examples/1/values.json"] == json.dumps(expected_rows(4)).encode()
    assert {
        k.removeprefix("train/model/2/"): v for k, v in root.items() if k.startswith("train/model/2/")
    } == (expected_model_files(4, 3))
    [version] = {k.split("/")[0] for k in _objects(f"{gcs_bucket}/serving/model")}
    pushed = _objects(f"{gcs_bucket}/serving/model/{version}")
    pushed.pop(".mlpipe-claim")
    assert pushed == {k.removeprefix("Format-Serving/"): v for k, v in expected_model_files(4, 3).items()}
