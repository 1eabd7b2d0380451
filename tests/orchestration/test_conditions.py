"""``Cond``: nodes that run only when a predicate on upstream outputs holds, on every runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from mlpipe import Cond, Pipeline, component
from mlpipe.cli import main
from mlpipe.dsl.annotations import InputArtifact, OutputArtifact, Parameter
from mlpipe.dsl.condition import producers_read
from mlpipe.dsl.resolver import Resolver
from mlpipe.errors import DefinitionError
from mlpipe.ir import PipelineIR
from mlpipe.metadata.config import sqlite
from mlpipe.metadata.queries import run_executions
from mlpipe.metadata.store import SKIP_REASON, MetadataStore, execution_property
from mlpipe.orchestration.beam import BeamDagRunner
from mlpipe.orchestration.interactive import InteractiveContext
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.orchestration.plan import plan_run
from mlpipe.orchestration.run_result import RunError
from mlpipe.types import Examples, Integer
from mlpipe.types.artifact import ValueArtifact
from tests.orchestration import gated
from tests.orchestration.gated import measure, select, total

NODES = gated.NODES
AT_LEAST_3 = "condition measure.outputs['n'].future()[0].value >= 3 is false"
ODD = "condition measure.outputs['n'].future()[0].custom_property('parity') == 'odd' is false"


def _outcome(result) -> dict[str, tuple[str, str | None]]:
    return {n: (result.results[n].state, result.results[n].why) for n in NODES}


def _read(artifact) -> str:
    return (Path(artifact.uri) / "value").read_text()


# --- definition ------------------------------------------------------------------------------------


def test_cond_attaches_predicates_to_the_nodes_made_inside_and_compiles_them_to_json(tmp_path):
    pipeline = gated.create_pipeline(str(tmp_path / "root"))
    nodes = {c.id: c for c in pipeline.components}
    assert [len(nodes[n].conditions) for n in NODES] == [0, 1, 2, 0]  # total is in both blocks
    ir = pipeline.compile()
    assert ir.node("select").conditions == (
        {
            "op": ">=",
            "left": {"artifact": {"producer": "measure", "key": "n", "index": 0, "read": "value"}},
            "right": {"literal": 3},
        },
    )
    assert ir.node("total").conditions[1]["right"] == {"literal": "odd"}
    assert ir.node("total").conditions[1]["left"]["artifact"]["name"] == "parity"
    assert "measure" in ir.node("total").upstream  # it reads measure's output, so it runs after it
    # the IR file round-trips as version 2; an IR from before conditions (version 1) still loads, and
    # a pipeline without conditions is still written as version 1, for workers with an older mlpipe
    ir.save(tmp_path / "ir.json")
    assert PipelineIR.load(tmp_path / "ir.json") == ir
    assert json.loads(ir.to_json())["version"] == 2
    unconditioned = Pipeline("plain", root=str(tmp_path), components=[_count()]).compile()
    assert json.loads(unconditioned.to_json())["version"] == 1
    old = json.loads(ir.to_json())
    old["version"] = 1
    for node in old["nodes"]:
        del node["conditions"]
    (tmp_path / "v1.json").write_text(json.dumps(old))
    assert PipelineIR.load(tmp_path / "v1.json").node("select").conditions == ()
    old["version"] = 3
    (tmp_path / "v3.json").write_text(json.dumps(old))
    with pytest.raises(DefinitionError, match=r"IR version 3 is not one this mlpipe reads \(\(1, 2\)\)"):
        PipelineIR.load(tmp_path / "v3.json")


@component
def _count(n: OutputArtifact[Integer]):
    n.write(1)


@component
def _rows(examples: OutputArtifact[Examples], k: Parameter[int] = 0):
    pass


@component
def _use(n: InputArtifact[Integer]):
    pass


def test_predicates_combine_with_operators_and_name_nodes_by_their_final_id(tmp_path):
    a, b = _count(), _rows()
    value = a.outputs["n"].future()[0].value
    spans = b.outputs["examples"].future()[1].property("span")
    predicate = ((value > 0) & (spans != 3)) | ~(b.outputs["examples"].future().custom_property("x") <= 1.5)
    with Cond(predicate):
        c = _use(n=a.outputs["n"])
    a.with_id("counter")  # renamed after the predicate was written
    ir = Pipeline("p", root=str(tmp_path), components=[a, b, c]).compile()
    assert repr(c.conditions[0]) == (
        "Predicate(((counter.outputs['n'].future()[0].value > 0) & "
        "(_rows.outputs['examples'].future()[1].property('span') != 3)) | "
        "(~(_rows.outputs['examples'].future()[0].custom_property('x') <= 1.5)))"
    )
    assert set(ir.node("_use").upstream) == {"counter", "_rows"}
    assert ir.node("_use").conditions[0]["op"] == "or"


def test_one_cond_may_be_entered_again_and_nested_blocks_add_up():
    a = _count()
    positive = Cond(a.outputs["n"].future()[0].value > 0)
    with positive:
        with positive:
            twice = _use(n=a.outputs["n"])
        once = _use(n=a.outputs["n"])
    outside = _use(n=a.outputs["n"])
    assert [len(n.conditions) for n in (twice, once, outside)] == [2, 1, 0]


def test_definition_mistakes_are_clear_errors():
    a, b = _count(), _rows()
    value = a.outputs["n"].future()[0].value
    with pytest.raises(DefinitionError, match=r"has no truth value .* combine predicates with &, \| and ~"):
        (value > 0) and (value < 5)  # noqa: B018
    with pytest.raises(DefinitionError, match="compare it, e.g. ... == 1"):
        bool(value)
    with pytest.raises(DefinitionError, match=r"carries Examples, which has no \.value"):
        b.outputs["examples"].future()[0].value  # noqa: B018
    with pytest.raises(DefinitionError, match=r"compare with a bool, int, float or str"):
        value == [1]  # noqa: B015
    with pytest.raises(DefinitionError, match=r"Cond\(\) takes a predicate"):
        Cond(True)
    with pytest.raises(DefinitionError, match=r"the index must be an int >= 0"):
        a.outputs["n"].future()[-1]
    with pytest.raises(DefinitionError, match=r"the index must be an int >= 0"):
        a.outputs["n"].future()[True]
    with pytest.raises(DefinitionError, match="a property name must be a non-empty str"):
        b.outputs["examples"].future()[0].property("")
    with pytest.raises(DefinitionError) as info:
        (value > 0) & True  # noqa: B018
    assert str(info.value) == "'and' combines predicates, got True"
    with pytest.raises(DefinitionError) as info:
        (value > 0) | 1  # noqa: B018
    assert str(info.value) == "'or' combines predicates, got 1"


def test_producers_read_walks_and_or_not_and_both_sides_of_a_comparison():
    a, b, c = (_count().with_id(name) for name in "abc")
    va, vb, vc = (node.outputs["n"].future()[0].value for node in (a, b, c))
    predicate = ~((vb > 1) & (vc == va)) | (va < 0)
    assert producers_read([predicate.to_ir()]) == ["b", "c", "a"]  # first-read order, no repeats
    assert producers_read([(vc > 0).to_ir(), (vb == vc).to_ir()]) == ["c", "b"]
    assert producers_read([(va == vb).to_ir()]) == ["a", "b"]  # b only on the right
    assert producers_read([]) == []


# --- running ---------------------------------------------------------------------------------------


def test_a_false_condition_skips_the_node_and_what_needs_its_outputs(
    tmp_path, metadata_config, calls, caplog
):
    def run(rows: int):
        pipeline = gated.create_pipeline(str(tmp_path / "root"), metadata_config, rows=rows)
        planned = {s.node_id: s.action for s in plan_run(pipeline)}
        result = LocalDagRunner(progress=False).run(pipeline)
        return planned, result

    _, first = run(5)
    assert {n: r.state for n, r in first.results.items()} == dict.fromkeys(NODES, "COMPLETE")
    assert sorted(calls()) == sorted(NODES)
    assert _read(first.results["total"].outputs["sum_"][0]) == "10.0"  # 0+1+2+3+4
    assert _read(first.results["report"].outputs["summary"][0]) == "5 rows, selected"

    with caplog.at_level("INFO", logger="mlpipe"):
        _, even = run(4)  # parity is even: only the node in the inner block is skipped
    skipped = even.results["total"]
    assert skipped.state == "SKIPPED"
    assert skipped.why == f"{ODD}: measure.n (artifact 5) has parity = 'even'"
    # a skipped node has its own (CANCELED) execution, a duration, and a log line saying why
    assert skipped.node_id == "total" and isinstance(skipped.execution_id, int)
    assert skipped.execution_id not in {r.execution_id for n, r in even.results.items() if n != "total"}
    assert 0 <= skipped.seconds < 60
    assert f"node total: skipped: {skipped.why}" in [r.getMessage() for r in caplog.records]
    assert sorted(calls()) == ["measure", "report", "select"]

    planned, low = run(1)
    assert _outcome(low) == {
        "measure": ("COMPLETE", "since execution 5: parameter 'rows' changed: 4 -> 1"),
        "select": ("SKIPPED", f"{AT_LEAST_3}: measure.n (artifact 8) is 1"),
        "total": ("SKIPPED", f"{AT_LEAST_3}: measure.n (artifact 8) is 1"),
        # its optional input from the skipped node is empty, not an older run's output
        "report": (
            "COMPLETE",
            f"since execution {even.results['report'].execution_id}: input 'examples': "
            "none (was artifact 6); input 'n': artifact 8 (was artifact 5)",
        ),  # fmt: skip
    }
    assert sorted(calls()) == ["measure", "report"]
    assert low.results["select"].outputs == {} and low.succeeded
    assert _read(low.results["report"].outputs["summary"][0]) == "1 rows, none selected"
    # measure executes first, so the plan could not know what select and total would do
    assert planned == {"measure": "execute", "select": "execute", "total": "execute", "report": "execute"}

    # MLMD: a CANCELED execution per skipped node, with no events, saying why
    store = MetadataStore(metadata_config)
    recorded = {e.node_id: e for e in run_executions(store, low.run_id)}
    assert {n: e.state for n, e in recorded.items()} == {
        "measure": "COMPLETE", "select": "SKIPPED", "total": "SKIPPED", "report": "COMPLETE"
    }  # fmt: skip
    assert recorded["select"].why == low.results["select"].why
    (proto,) = store.db.mlmd.get_executions_by_id([recorded["select"].id])
    assert proto.last_known_state == pb.Execution.CANCELED
    assert execution_property(proto, SKIP_REASON) == low.results["select"].why
    assert store.db.mlmd.get_events_by_execution_ids([recorded["select"].id]) == []

    # skipped executions do not disturb the cache: back to 5 reuses the first run's results
    planned, again = run(5)
    assert {n: r.state for n, r in again.results.items()} == dict.fromkeys(NODES, "CACHED")
    assert calls() == []
    assert planned == dict.fromkeys(NODES, "reuse")
    # ... and with measure cached, the plan knows the condition's values and says what a run will do
    pipeline = gated.create_pipeline(str(tmp_path / "root"), metadata_config, rows=1)
    assert [(s.node_id, s.action, s.why) for s in plan_run(pipeline)] == [
        ("measure", "reuse", f"reuses execution {recorded['measure'].id}"),
        ("select", "skip", f"{AT_LEAST_3}: measure.n (artifact 8) is 1"),
        ("total", "skip", f"{AT_LEAST_3}: measure.n (artifact 8) is 1"),
        ("report", "reuse", f"reuses execution {recorded['report'].id}"),
    ]
    rerun = LocalDagRunner(progress=False).run(pipeline)
    assert {n: r.state for n, r in rerun.results.items()} == {
        "measure": "CACHED", "select": "SKIPPED", "total": "SKIPPED", "report": "CACHED"
    }  # fmt: skip
    store.close()


def test_a_node_that_needs_a_skipped_nodes_output_is_skipped_with_the_reason(tmp_path, calls):
    @component
    def summarize(examples: InputArtifact[Examples], n: OutputArtifact[Integer]):
        n.write(1)

    pipeline = gated.create_pipeline(str(tmp_path / "root"), rows=1)
    select = next(c for c in pipeline.components if c.id == "select")
    after = summarize(examples=select.outputs["examples"])  # outside the Cond blocks
    pipeline = Pipeline("gated", root=pipeline.root, components=[*pipeline.components, after])
    (planned,) = [s for s in plan_run(pipeline) if s.node_id == "summarize"]
    assert (planned.action, planned.why) == ("execute", "input 'examples' will be new (select executes)")
    result = LocalDagRunner(progress=False).run(pipeline)
    assert result.results["summarize"].state == "SKIPPED"
    assert result.results["summarize"].why == (
        f"input 'examples': node 'select' was skipped ({AT_LEAST_3}: measure.n (artifact 1) is 1)"
    )
    # select's newest outcome is this skip, so partial runs that do not run select skip it too,
    # even with an older run's outputs of select on disk
    LocalDagRunner(progress=False).run(gated.create_pipeline(pipeline.root, rows=5))
    last = LocalDagRunner(progress=False).run(pipeline)  # rows=1 again: select skipped
    partial = LocalDagRunner(progress=False).run(pipeline, only=["summarize", "report"])
    assert partial.results["summarize"].state == "SKIPPED"
    assert partial.results["summarize"].why == (
        f"input 'examples': node 'select' was skipped in run {last.run_id} ({AT_LEAST_3}: measure.n "
        "(artifact 1) is 1)"
    )
    assert _read(partial.results["report"].outputs["summary"][0]) == "1 rows, none selected"


def test_missing_values_skip_and_values_that_cannot_be_compared_fail(tmp_path):
    m = _count()
    with Cond(m.outputs["n"].future()[0].custom_property("quality") == "good"):
        unset = _use(n=m.outputs["n"]).with_id("unset")
    with Cond(~(m.outputs["n"].future()[0].custom_property("quality") == "good")):
        negated = _use(n=m.outputs["n"]).with_id("negated")  # unknown stays unknown through ~
    with Cond(m.outputs["n"].future()[1].value == 1):
        second = _use(n=m.outputs["n"]).with_id("second")
    with Cond((m.outputs["n"].future()[1].value == 1) | (m.outputs["n"].future()[0].value == 1)):
        either = _use(n=m.outputs["n"]).with_id("either")  # a true part of an 'or' decides
    pipeline = Pipeline(
        "missing", root=str(tmp_path / "root"), components=[m, unset, negated, second, either]
    )
    result = LocalDagRunner(progress=False).run(pipeline)
    assert result.results["unset"].why == (
        "condition _count.outputs['n'].future()[0].custom_property('quality') == 'good' cannot hold: "
        "_count.n (artifact 1) has no 'quality'"
    )
    assert result.results["negated"].why == (
        "condition ~(_count.outputs['n'].future()[0].custom_property('quality') == 'good') cannot hold: "
        "_count.n (artifact 1) has no 'quality'"
    )
    assert result.results["second"].why == (
        "condition _count.outputs['n'].future()[1].value == 1 cannot hold: _count.n has 1 artifact(s)"
    )
    assert {n: result.results[n].state for n in ("unset", "negated", "second", "either")} == {
        "unset": "SKIPPED", "negated": "SKIPPED", "second": "SKIPPED", "either": "COMPLETE"
    }  # fmt: skip

    with Cond(m.outputs["n"].future()[0].value < "3"):
        wrong = _use(n=m.outputs["n"]).with_id("wrong")
    pipeline = Pipeline("mismatch", root=str(tmp_path / "root2"), components=[m, wrong])
    with pytest.raises(RunError) as raised:
        LocalDagRunner(progress=False).run(pipeline)
    assert (
        "condition _count.outputs['n'].future()[0].value < '3': cannot compare 1 (int) with '3' (str)"
        in str(raised.value)
    )


def test_the_cli_shows_skipped_nodes_and_why(tmp_path, capsys):
    config = sqlite(tmp_path / "metadata.sqlite")
    result = LocalDagRunner(progress=False).run(gated.create_pipeline(str(tmp_path / "root"), config, rows=1))
    capsys.readouterr()
    assert main(["show", result.run_id, "--metadata", str(tmp_path / "metadata.sqlite")]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["select"].split()[1] == "SKIPPED"
    assert f"{AT_LEAST_3}: measure.n (artifact 1) is 1" in lines["select"]
    assert lines["report"].split()[1] == "COMPLETE"


@pytest.mark.e2e
def test_beam_and_one_process_per_node_skip_alike(tmp_path):
    beam = BeamDagRunner().run(gated.create_pipeline(str(tmp_path / "beam" / "root"), rows=4))
    assert {n: r.state for n, r in beam.results.items()} == {
        "measure": "COMPLETE", "select": "COMPLETE", "total": "SKIPPED", "report": "COMPLETE"
    }  # fmt: skip
    assert beam.results["total"].why == f"{ODD}: measure.n (artifact 1) has parity = 'even'"

    # as Airflow and Kubeflow tasks run them: one process per node, in order, one run id
    pipeline = gated.create_pipeline(str(tmp_path / "tasks" / "root"), rows=1)
    ir_path = tmp_path / "ir.json"
    pipeline.compile().save(ir_path)
    lines, codes = {}, {}
    for node in NODES:
        cmd = [sys.executable, "-m", "mlpipe.orchestration.entrypoint", "--ir", str(ir_path), "--node", node]
        skip_code = ["--skipped-exit-code", "99"] if node in ("select", "report") else []
        done = subprocess.run(
            [*cmd, "--run-id", "task-run", *skip_code], capture_output=True, text=True, timeout=120
        )
        assert done.returncode in (0, 99), done.stderr
        lines[node], codes[node] = done.stdout.strip(), done.returncode
    # a skipped node exits 0 unless the engine names its skip code (Airflow); a run node exits 0
    assert codes == {"measure": 0, "select": 99, "total": 0, "report": 0}
    assert lines["select"].startswith(f"mlpipe: node select SKIPPED (execution 2; {AT_LEAST_3}: measure.n")
    assert lines["total"].startswith(f"mlpipe: node total SKIPPED (execution 3; {AT_LEAST_3}")
    assert lines["report"].startswith("mlpipe: node report COMPLETE")
    store = MetadataStore(pipeline.metadata)
    (report,) = [e for e in run_executions(store, "task-run") if e.node_id == "report"]
    assert _read(report.outputs["summary"][0]) == "1 rows, none selected"
    store.close()


class Score(ValueArtifact):
    """A user's own value type: the plan must read it as one, not as a generic artifact."""

    TYPE_NAME = "ConditionTestScore"

    def _decode(self, data: bytes) -> float:
        return float(data)


@component
def _score(s: OutputArtifact[Score], value: Parameter[float] = 0.9):
    s.write(value)


def test_plan_reads_a_users_value_type_and_agrees_with_the_run(tmp_path):
    def build(value: float) -> Pipeline:
        s = _score(value=value)
        with Cond(s.outputs["s"].future()[0].value > 0.5):
            gated_node = _rows()
        return Pipeline("scored", root=str(tmp_path / "root"), components=[s, gated_node])

    for value, state in ((0.9, "CACHED"), (0.2, "SKIPPED")):
        LocalDagRunner(progress=False).run(build(value))  # the score is then cached for the plan
        (_, planned) = plan_run(build(value))
        rerun = LocalDagRunner(progress=False).run(build(value))
        assert (planned.action, rerun.results["_rows"].state) == (
            {"CACHED": "reuse", "SKIPPED": "skip"}[state],
            state,
        )
    assert planned.why == (
        "condition _score.outputs['s'].future()[0].value > 0.5 is false: _score.s (artifact 3) is 0.2"
    )


def test_a_resolver_reading_a_skipped_node_picks_its_newest_artifact_as_planned(tmp_path):
    def build(rows: int) -> Pipeline:
        m = measure(rows=rows)
        with Cond(m.outputs["n"].future()[0].value >= 3):
            s = select(n=m.outputs["n"])
        latest = Resolver(strategy="latest_artifact", examples=s.outputs["examples"]).with_id("latest")
        return Pipeline("resolved", root=str(tmp_path / "root"), components=[m, s, latest])

    first = LocalDagRunner(progress=False).run(build(5))
    (selected,) = first.results["select"].outputs["examples"]
    LocalDagRunner(progress=False).run(build(1))
    planned = {p.node_id: (p.action, p.why) for p in plan_run(build(1))}
    run = LocalDagRunner(progress=False).run(build(1))
    assert planned["select"][0] == "skip" and run.results["select"].state == "SKIPPED"
    assert planned["latest"] == ("resolve", f"resolves examples: {selected.id}")
    assert [a.id for a in run.results["latest"].outputs["examples"]] == [selected.id]


def test_interactive_context_reruns_a_skipped_node_once_its_condition_holds(tmp_path):
    ctx = InteractiveContext(pipeline_root=str(tmp_path / "root"))
    low = measure(rows=1)
    ctx.run(low)
    with Cond(low.outputs["n"].future()[0].value >= 3):
        first_try = select(n=low.outputs["n"])
    assert ctx.run(first_try).state == "SKIPPED"
    high = measure(rows=4)
    ctx.run(high)
    with Cond(high.outputs["n"].future()[0].value >= 3):
        second_try = select(n=high.outputs["n"])
    assert ctx.run(second_try).state == "COMPLETE"
    # the same session (one run id): the newest outcome of select counts, not the earlier skip
    consumer = total(examples=second_try.outputs["examples"])
    result = ctx.run(consumer)
    assert result.state == "COMPLETE"
    assert _read(result.outputs["sum_"][0]) == "6.0"  # 0+1+2+3
