"""A module file in a bucket: the node runs the bucket's code, and a new upload is a cache miss."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlpipe.metadata.config import sqlite
from mlpipe.metadata.queries import list_runs, run_executions
from mlpipe.metadata.store import MetadataStore

REPO = Path(__file__).resolve().parents[2]
FOUR_NODES = str(REPO / "tests" / "orchestration" / "four_nodes.py")


def _put(uri: str, body: bytes) -> None:
    import botocore.session

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    botocore.session.get_session().create_client("s3").put_object(Bucket=bucket, Key=key, Body=body)


@pytest.mark.e2e
def test_a_module_file_in_a_bucket_is_run_and_its_changes_invalidate_the_cache(tmp_path, bucket):
    module = f"{bucket}/code/user_module.py"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FOUR_NODES_ROOT": str(tmp_path / "root"),
        "FOUR_NODES_MODULE": module,
        "MLPIPE_TEST_CALLS_LOG": str(tmp_path / "calls.log"),
    }
    run = [sys.executable, "-m", "mlpipe.cli", "run", FOUR_NODES]
    store_path = tmp_path / "metadata.sqlite"  # four_nodes' default: beside its root
    totals = []
    for body in (b"def transform(v):\n    return v + 1\n", b"def transform(v):\n    return v * 10\n"):
        _put(module, body)
        done = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        store = MetadataStore(sqlite(store_path))
        newest = max(list_runs(store), key=lambda r: r.created_ms)
        [total] = [
            e.outputs["total"][0] for e in run_executions(store, newest.run_id) if "total" in e.outputs
        ]
        totals.append(total.read())
        store.close()
    values = [2.0 * i for i in range(5)]  # ingest(n=5) scaled by 2
    assert totals == [sum(v + 1 for v in values), sum(v * 10 for v in values)]
    assert (tmp_path / "calls.log").read_text().split().count("apply_module") == 2


def test_import_schema_gen_reads_a_schema_file_in_a_bucket(tmp_path, bucket):
    from mlpipe import Pipeline
    from mlpipe.components.schema_gen import ImportSchemaGen
    from mlpipe.orchestration.local import LocalDagRunner

    text = (REPO / "pipelines" / "schema" / "schema.pbtxt").read_text()
    _put(f"{bucket}/schemas/schema.pbtxt", text.encode())
    node = ImportSchemaGen(schema_file=f"{bucket}/schemas/schema.pbtxt")
    pipeline = Pipeline("schema", str(tmp_path / "root"), [node], metadata=sqlite(tmp_path / "m.sqlite"))
    result = LocalDagRunner(progress=False).run(pipeline)
    [schema] = result.results[node.id].outputs["schema"]
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    written = text_format.Parse(open(os.path.join(schema.uri, "schema.pbtxt")).read(), schema_pb2.Schema())
    assert written == text_format.Parse(text, schema_pb2.Schema())
