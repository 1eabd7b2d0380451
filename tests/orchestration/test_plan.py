"""A dry run plans what a run would do; the run that follows does exactly that, for the same reasons."""

from __future__ import annotations

import shutil

import pytest

from mlpipe.cli import main
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.orchestration.plan import plan_run
from tests.orchestration import four_nodes

NODES = ["ingest", "scale", "apply_module", "summarize"]
AS_RUN = {"reuse": "CACHED", "execute": "COMPLETE"}


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
    for step in plan:  # a node that executes for a reason of its own gives the same reason when run
        if step.action == "execute" and "will be new" not in step.why:
            assert step.why == result.results[step.node_id].cache_miss
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


def test_plan_names_an_input_a_partial_run_cannot_find(tmp_path, module_file, metadata_config, capsys):
    pipeline = _pipeline(tmp_path, module_file, metadata_config)
    (step,) = plan_run(pipeline, only=["summarize"])
    assert step.action == "fail"
    assert step.why.startswith("input 'examples' needs outputs['transformed'] of node 'apply_module'")


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
