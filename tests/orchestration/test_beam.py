"""BeamDagRunner runs the same pipeline with the same records and cache as the local runner."""

from __future__ import annotations

import pytest

from mlpipe.metadata.queries import run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.beam import BeamDagRunner
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.orchestration.run_result import RunError
from tests.orchestration import four_nodes

NODES = ["ingest", "scale", "apply_module", "summarize"]


def _pipeline(tmp_path, body: str):
    module = tmp_path / "user_module.py"
    module.write_text(body)
    return four_nodes.create_pipeline(str(tmp_path / "root"), str(module))


@pytest.mark.e2e
def test_beam_run_records_like_local_and_shares_its_cache(tmp_path):
    pipeline = _pipeline(tmp_path, "def transform(v):\n    return v + 1\n")
    result = BeamDagRunner().run(pipeline)
    assert {n: result.state_of(n) for n in NODES} == dict.fromkeys(NODES, "COMPLETE")
    assert {result.results[n].cache_miss for n in NODES} == {"no earlier successful execution of this node"}
    store = MetadataStore(pipeline.metadata)
    executions = run_executions(store, result.run_id)
    assert [e.node_id for e in executions] == NODES  # dependencies respected
    (total,) = executions[-1].outputs["total"]
    assert open(f"{total.uri}/value").read() == "25.0"

    local = LocalDagRunner(progress=False).run(pipeline)
    assert {r.state for r in local.results.values()} == {"CACHED"}
    again = BeamDagRunner().run(pipeline)
    assert {r.state for r in again.results.values()} == {"CACHED"}
    assert [e.cached_from for e in run_executions(store, again.run_id)] == [e.id for e in executions]


@pytest.mark.e2e
def test_beam_failure_reports_the_node_and_what_did_not_run(tmp_path):
    pipeline = _pipeline(tmp_path, "def transform(v):\n    raise RuntimeError('boom')\n")
    with pytest.raises(RunError) as info:
        BeamDagRunner().run(pipeline)
    result = info.value.result
    assert "node 'apply_module' failed: RuntimeError: boom" in str(result.failed["apply_module"])
    assert set(result.results) == {"ingest", "scale"}
    assert result.not_run == ["summarize"]


@pytest.mark.e2e
def test_a_node_with_several_upstream_nodes_runs_after_all_of_them(tmp_path):
    """Fan-in: report reads measure and select, and select reads measure. Each upstream is its own
    side input; one Flatten of them as a single side input left FnApiRunner with "watermark-pending
    bundles" it never ran, and report was reported "not run"."""
    from tests.orchestration import gated

    pipeline = gated.create_pipeline(str(tmp_path / "root"), rows=5)
    result = BeamDagRunner().run(pipeline)
    assert {n: result.state_of(n) for n in gated.NODES} == dict.fromkeys(gated.NODES, "COMPLETE")
    store = MetadataStore(pipeline.metadata)
    order = [e.node_id for e in run_executions(store, result.run_id)]
    assert order.index("report") > order.index("select") > order.index("measure")
    (summary,) = result.results["report"].outputs["summary"]
    assert open(f"{summary.uri}/value").read() == "5 rows, selected"
