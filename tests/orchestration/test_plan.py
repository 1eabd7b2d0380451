"""A dry run plans what a run would do; the run that follows does exactly that, for the same reasons."""

from __future__ import annotations

import os
import shutil

import pytest

from mlpipe import InputArtifact, OutputArtifact, Parameter, Pipeline, Resolver, component
from mlpipe.cli import main
from mlpipe.metadata.config import sqlite
from mlpipe.metadata.queries import run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.orchestration.plan import plan_run
from mlpipe.types import Examples
from tests.orchestration import four_nodes

NODES = ["ingest", "scale", "apply_module", "summarize"]
AS_RUN = {"reuse": "CACHED", "execute": "COMPLETE", "resolve": "COMPLETE"}


@pytest.fixture
def module_file(tmp_path):
    path = tmp_path / "user_module.py"
    path.write_text("def transform(v):\n    return v + 1\n")
    return path


def _pipeline(tmp_path, module_file, metadata_config, factor=2.0):
    return four_nodes.create_pipeline(
        str(tmp_path / "root"), str(module_file), metadata_config, factor=factor
    )


def _recorded(metadata_config) -> tuple[int, int, list[int]]:
    store = MetadataStore(metadata_config)
    try:
        mlmd = store.db.mlmd
        return len(mlmd.get_executions()), len(mlmd.get_contexts()), [a.state for a in mlmd.get_artifacts()]
    finally:
        store.close()


def _plan_then_run(pipeline, metadata_config, **kw):
    before = _recorded(metadata_config)
    plan = plan_run(pipeline, **kw)
    assert _recorded(metadata_config) == before  # planning records nothing, marks nothing
    result = LocalDagRunner(progress=False).run(pipeline, **kw)
    assert {s.node_id: AS_RUN[s.action] for s in plan} == {n: r.state for n, r in result.results.items()}
    store = MetadataStore(metadata_config)
    reused = {e.node_id: e.cached_from for e in run_executions(store, result.run_id)}
    store.close()
    for step in plan:  # the same reasons, and the same executions reused
        if step.action == "execute" and "will be new" not in step.why:
            assert step.why == result.results[step.node_id].cache_miss
        if step.action == "reuse":
            assert step.why == f"reuses execution {reused[step.node_id]}"
    return {s.node_id: (s.action, s.why) for s in plan}, result


def test_plan_matches_the_run_for_edits_parameters_deleted_outputs_and_no_cache(
    tmp_path, module_file, metadata_config
):
    pipeline = _pipeline(tmp_path, module_file, metadata_config)
    plan, first = _plan_then_run(pipeline, metadata_config)
    assert {n: a for n, (a, _) in plan.items()} == dict.fromkeys(NODES, "execute")
    assert plan["ingest"][1] == "no earlier successful execution of this node"
    assert plan["scale"][1] == "input 'examples' will be new (ingest executes)"

    plan, _ = _plan_then_run(pipeline, metadata_config)
    assert plan == {n: ("reuse", f"reuses execution {first.results[n].execution_id}") for n in NODES}

    module_file.write_text("def transform(v):\n    return v + 2\n")
    plan, _ = _plan_then_run(pipeline, metadata_config)
    assert [plan[n][0] for n in NODES] == ["reuse", "reuse", "execute", "execute"]
    assert plan["apply_module"][1].endswith("the module file of 'module_file' changed")
    assert plan["summarize"][1] == "input 'examples' will be new (apply_module executes)"

    changed = _pipeline(tmp_path, module_file, metadata_config, factor=3.0)
    plan, third = _plan_then_run(changed, metadata_config)
    assert plan["scale"][0] == "execute" and plan["scale"][1].endswith(
        "parameter 'factor' changed: 2.0 -> 3.0"
    )

    shutil.rmtree(third.results["ingest"].outputs["rows"][0].uri)  # a cached node's files are gone
    plan, _ = _plan_then_run(changed, metadata_config)
    assert plan["ingest"] == (
        "execute",
        f"the outputs of execution {first.results['ingest'].execution_id}, which had the same cache key, "
        "are gone from disk",
    )

    plan, _ = _plan_then_run(changed, metadata_config, only=["summarize"], enable_cache=False)
    assert plan == {"summarize": ("execute", "caching is off")}


def test_plan_names_an_input_a_partial_run_cannot_find_and_what_then_does_not_run(tmp_path, module_file):
    db = tmp_path / "metadata.sqlite"
    pipeline = four_nodes.create_pipeline(str(tmp_path / "root"), str(module_file), sqlite(db))
    plan = plan_run(pipeline, only=["apply_module", "summarize"])
    assert [(s.node_id, s.action) for s in plan] == [("apply_module", "fail"), ("summarize", "not run")]
    assert plan[0].why.startswith("input 'examples' needs outputs['scaled'] of node 'scale'")
    assert plan[1].why == "not run: apply_module does not complete"
    assert not db.exists()  # planning a pipeline that never ran creates no store


@component
def make(rows: OutputArtifact[Examples], n: Parameter[int] = 1):
    open(os.path.join(rows.uri, "n"), "w").write(str(n))


@component
def use(examples: InputArtifact[Examples], hint: InputArtifact[Examples], rows: OutputArtifact[Examples]):
    open(os.path.join(rows.uri, "n"), "w").write(open(os.path.join(examples.uri, "n")).read())


class UseIgnoringHint(use):
    """As Transform does with its analyzer cache: an input that cannot change the result."""

    @classmethod
    def inputs_for_cache(cls, inputs):
        return {k: v for k, v in inputs.items() if k != "hint"}


def test_plan_follows_resolvers_fed_by_the_run_and_inputs_left_out_of_the_cache_key(
    tmp_path, metadata_config
):
    def pipeline(n: int) -> Pipeline:
        fixed, varying = make(n=7).with_id("fixed"), make(n=n).with_id("varying")
        latest = Resolver(strategy="latest_artifact", examples=varying.outputs["rows"]).with_id("latest")
        from_resolver = use(examples=latest.outputs["examples"], hint=fixed.outputs["rows"]).with_id("reads")
        ignoring = UseIgnoringHint(examples=fixed.outputs["rows"], hint=varying.outputs["rows"]).with_id(
            "ignores"
        )
        nodes = [fixed, varying, latest, from_resolver, ignoring]
        return Pipeline("plans", str(tmp_path / "root"), nodes, metadata=metadata_config)

    _plan_then_run(pipeline(1), metadata_config)
    plan, _ = _plan_then_run(pipeline(2), metadata_config)
    assert plan["varying"][0] == "execute"
    assert plan["latest"] == ("resolve", "resolves after varying executes")
    assert plan["reads"] == ("execute", "input 'examples' will be new (latest executes)")
    assert plan["ignores"][0] == "reuse"  # its new 'hint' is not part of its cache key
    # back to n=1: 'varying' reuses its first execution, not its newest; the resolver then finds that
    plan, _ = _plan_then_run(pipeline(1), metadata_config)
    assert [plan[n][0] for n in ("varying", "reads", "ignores")] == ["reuse", "reuse", "reuse"]


def test_dry_run_command_prints_the_plan_and_runs_nothing(tmp_path, module_file, monkeypatch, capsys):
    monkeypatch.setenv("FOUR_NODES_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("FOUR_NODES_MODULE", str(module_file))
    monkeypatch.delenv("MLPIPE_METADATA", raising=False)
    assert main(["run", four_nodes.__file__]) == 0
    module_file.write_text("def transform(v):\n    return v * 10\n")
    capsys.readouterr()
    assert main(["run", four_nodes.__file__, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NODE", "PLAN", "WHY"]
    assert [line.split()[:2] for line in lines[1:5]] == [
        ["ingest", "reuse"], ["scale", "reuse"], ["apply_module", "execute"], ["summarize", "execute"],
    ]  # fmt: skip
    assert lines[3].endswith("the module file of 'module_file' changed")
    assert lines[5] == "dry run, nothing was run: 2 execute, 2 reuse"
    assert main(["run", four_nodes.__file__]) == 0  # the real run does what the plan said
    assert "2 cached, 2 complete" in capsys.readouterr().err
