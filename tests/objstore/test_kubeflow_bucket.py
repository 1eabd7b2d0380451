"""The Kubeflow spec of a bucket pipeline, run as compiled by ``kfp.local``: the object-store root
travels in the spec, credentials only by reference, and every artifact lands in the bucket."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from kfp import components, local

from mlpipe.metadata.config import sqlite
from mlpipe.metadata.queries import list_runs, run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.kubeflow import KubeflowDagRunner
from tests.objstore import oracle
from tests.objstore.bucket_pipeline import create_pipeline, expected_model_files
from tests.support.object_stores import SECRET_KEY

pytestmark = pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")


@pytest.mark.e2e
def test_compiled_spec_names_image_and_bucket_root_holds_no_secret_and_runs_on_kfp_local(
    tmp_path, bucket, monkeypatch
):
    db = tmp_path / "metadata.sqlite"
    monkeypatch.setenv("BUCKET_ROOT", f"{bucket}/root")
    monkeypatch.setenv("BUCKET_SERVING", f"{bucket}/serving/m")
    monkeypatch.setenv("MLPIPE_METADATA", str(db))
    monkeypatch.setenv("MLPIPE_TEST_CALLS_LOG", str(tmp_path / "calls.log"))
    pipeline = create_pipeline()
    runner = KubeflowDagRunner(
        image="registry.example.com/ml/mlpipe:abc123",
        env={"AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"]},
        secret_env={
            "AWS_ACCESS_KEY_ID": "mlpipe-s3:access_key_id",
            "AWS_SECRET_ACCESS_KEY": "mlpipe-s3:secret_access_key",
        },
    )
    path = runner.compile(pipeline, tmp_path / "bucket.yaml")

    text = Path(path).read_text()
    assert SECRET_KEY not in text and os.environ["AWS_ACCESS_KEY_ID"] not in text
    spec, _platform = yaml.safe_load_all(text)
    assert (
        f'"root":"{bucket}/root"'
        in spec["root"]["inputDefinitions"]["parameters"]["mlpipe_ir"]["defaultValue"]
    )
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {"registry.example.com/ml/mlpipe:abc123"}

    # kfp.local runs the tasks as subprocesses of this test, which hold the bucket's credentials
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-local"))
    components.load_component_from_file(path)()

    store = MetadataStore(sqlite(db))
    try:
        [run] = list_runs(store)
        executions = run_executions(store, run.run_id)
    finally:
        store.close()
    assert [(e.node_id, e.state) for e in executions] == [
        (n, "COMPLETE") for n in ("rows", "train", "Pusher")
    ]
    for execution in executions:
        for artifacts in execution.outputs.values():
            assert all(a.uri.startswith(f"{bucket}/root/") for a in artifacts)
    pushed = executions[-1].outputs["pushed_model"][0].get_custom_property("pushed_version")
    served = oracle.objects(f"{bucket}/serving/m/{pushed}")
    expected = {k.removeprefix("Format-Serving/"): v for k, v in expected_model_files(4, 3).items()}
    assert {k: v for k, v in served.items() if not k.startswith(".")} == expected
    assert not any(
        p.name.startswith("s3") for p in tmp_path.iterdir()
    )  # nothing local named after the bucket
