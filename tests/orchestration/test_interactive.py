"""InteractiveContext: one component at a time, with MLMD and caching like the runners."""

from __future__ import annotations

import pytest

from mlpipe.errors import DefinitionError
from mlpipe.interactive import InteractiveContext
from mlpipe.ir import PipelineIR
from mlpipe.metadata.queries import run_executions
from mlpipe.orchestration.local import LocalDagRunner
from tests.orchestration import four_nodes


def test_step_by_step_with_cache_and_edited_module(tmp_path, monkeypatch):
    calls = tmp_path / "calls.log"
    monkeypatch.setenv("MLPIPE_TEST_CALLS_LOG", str(calls))
    module = tmp_path / "user_module.py"
    module.write_text("def transform(v):\n    return v + 1\n")
    ctx = InteractiveContext(pipeline_root=str(tmp_path / "root"))

    a = four_nodes.ingest(n=3)
    b = four_nodes.scale(examples=a.outputs["rows"])
    with pytest.raises(DefinitionError, match=r"run 'ingest' in this context before 'scale'"):
        ctx.run(b)
    assert ctx.run(a).state == "COMPLETE"
    assert ctx.run(b).state == "COMPLETE"
    c = four_nodes.apply_module(examples=b.outputs["scaled"], module_file=str(module))
    d = four_nodes.summarize(examples=c.outputs["transformed"])
    ctx.run(c)
    assert ctx.run(d).outputs["total"][0].read() == 9.0  # (0+2+4) + 3

    assert ctx.run(c).state == "CACHED"  # re-running an unchanged cell
    module.write_text("def transform(v):\n    return v * 10\n")
    assert ctx.run(c).state == "COMPLETE"  # the edited module file is read again
    assert ctx.run(d).outputs["total"][0].read() == 60.0
    assert calls.read_text().split() == [
        "ingest",
        "scale",
        "apply_module",
        "summarize",
        "apply_module",
        "summarize",
    ]

    executions = run_executions(ctx.store, ctx.run_id)
    assert [e.state for e in executions] == ["COMPLETE"] * 4 + ["CACHED", "COMPLETE", "COMPLETE"]

    shown = ctx.show(a.outputs["rows"])
    html = getattr(shown, "data", shown)  # an IPython HTML object in notebooks
    assert f"/ingest/rows/{ctx.results['ingest'].execution_id}" in html
    dag = getattr(ctx.show(ctx), "data", "")
    assert dag.count('class="node"') == 4 and "http" not in dag.replace("http://www.w3.org/2000/svg", "")

    ir_path = tmp_path / "exported.json"
    ctx.export_to_pipeline(str(ir_path))
    exported = PipelineIR.load(ir_path)
    assert [n.id for n in exported.nodes] == ["ingest", "scale", "apply_module", "summarize"]
    again = LocalDagRunner(progress=False).run(exported)  # the exported pipeline reuses the context's cache
    assert {r.state for r in again.results.values()} == {"CACHED"}
