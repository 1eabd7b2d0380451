"""Running nodes of a compiled IR in separate processes, as Airflow/Kubeflow tasks do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlpipe.metadata.queries import run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.local import LocalDagRunner
from tests.orchestration import four_nodes

NODES = ["ingest", "scale", "apply_module", "summarize"]


def _compile(tmp_path: Path, module_text: str):
    module = tmp_path / "user_module.py"
    module.write_text(module_text)
    pipeline = four_nodes.create_pipeline(str(tmp_path / "root"), str(module))
    ir_path = tmp_path / "ir.json"
    ir = pipeline.compile()
    ir.save(ir_path)
    return pipeline, ir, ir_path


def _run_node(ir_path: Path, node: str, run_id: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mlpipe.orchestration.entrypoint", "--ir", str(ir_path), "--node", node]
    return subprocess.run([*cmd, "--run-id", run_id, *extra], capture_output=True, text=True, timeout=120)


@pytest.mark.e2e
def test_nodes_run_one_process_each_and_share_the_cache_with_the_local_runner(tmp_path):
    pipeline, ir, ir_path = _compile(tmp_path, "def transform(v):\n    return v + 1\n")
    for node in NODES:
        res = _run_node(ir_path, node, "remote-1")
        assert res.returncode == 0, res.stderr
        assert f"node {node} COMPLETE (execution " in res.stdout
        assert "; no earlier successful execution of this node) " in res.stdout
    store = MetadataStore(pipeline.metadata)
    executions = run_executions(store, "remote-1")
    assert [(e.node_id, e.state) for e in executions] == [(n, "COMPLETE") for n in NODES]
    (total,) = executions[-1].outputs["total"]
    assert open(Path(total.uri) / "value").read() == "25.0"

    local = LocalDagRunner(progress=False).run(pipeline)  # same MLMD: fully cached
    assert {r.state for r in local.results.values()} == {"CACHED"}
    assert local.results["summarize"].outputs["total"][0].id == total.id

    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlpipe.cli",
            "run-node",
            "--ir",
            str(ir_path),
            "--node",
            "summarize",
            "--run-id",
            "r2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and "node summarize CACHED" in res.stdout, res.stderr


def test_failing_node_prints_the_component_error_and_exits_1(tmp_path):
    _, _, ir_path = _compile(tmp_path, "def transform(v):\n    raise KeyError('fare')\n")
    for node in ["ingest", "scale"]:
        assert _run_node(ir_path, node, "r").returncode == 0
    res = _run_node(ir_path, "apply_module", "r")
    assert res.returncode == 1
    assert "node 'apply_module' failed: KeyError: 'fare'" in res.stderr and "executor.log" in res.stderr
    res = _run_node(ir_path, "nope", "r")
    assert res.returncode == 1 and "has no node 'nope'" in res.stderr
