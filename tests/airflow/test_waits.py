"""The approval wait outside the node (no Airflow needed): ``--check-wait`` and the compiled sensor.

The scheduler tests (test_scheduler.py) run the same under Airflow; these pin the contract the sensor
relies on: exit 100 while undecided, with the request recorded so ``mlpipe approve`` finds it before
the node's execution exists; exit 0 once decided; the node then completes without waiting.
"""

from __future__ import annotations

import ast
import time

import pytest

from mlpipe.errors import DefinitionError, MlpipeError
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.airflow import AirflowDagRunner
from mlpipe.orchestration.approvals import approve, pending_approvals
from mlpipe.orchestration.entrypoint import main as entrypoint
from mlpipe.orchestration.launcher import launch_node
from tests.airflow.pipelines import approval_pipeline, flaky_pipeline


def test_check_wait_exits_100_until_mlpipe_approve_answers_then_the_node_completes_at_once(tmp_path):
    pipeline = approval_pipeline("wait_check", str(tmp_path / "root"), str(tmp_path / "serving"))
    ir = pipeline.compile()
    ir.save(tmp_path / "ir.json")
    check = ["--ir", str(tmp_path / "ir.json"), "--node", "approval", "--run-id", "r1", "--check-wait"]
    store = MetadataStore(pipeline.metadata)
    try:
        launch_node(ir, "make_model", "r1", store)
        assert entrypoint(check) == 100
        assert entrypoint([*check, "--waiting-exit-code", "7"]) == 7
        # the dashboard lists it, though no execution of the node exists yet
        assert [
            (p.request.run_id, p.request.node_id, p.request.approvers) for p in pending_approvals(store)
        ] == [("r1", "approval", ["ana"])]
        with pytest.raises(MlpipeError, match="'bo' may not answer"):
            approve(store, "r1", "approval", user="bo")
        decision = approve(store, "r1", "approval", user="ana", comment="fine")  # before any execution of it
        assert (decision.outcome, decision.user) == ("approved", "ana")
        assert entrypoint(check) == 0
        assert pending_approvals(store) == []

        started = time.monotonic()
        result = launch_node(ir, "approval", "r1", store)
        assert time.monotonic() - started < 30  # Approval's own poll would wait up to its 600 s timeout
        (blessing,) = result.outputs["blessing"]
        assert blessing.get_custom_property("approved_by") == "ana"
        assert blessing.get_custom_property("comment") == "fine"
    finally:
        store.close()


def _dag_constants(path):
    tree = ast.parse(path.read_text())
    return {n.targets[0].id: n.value for n in tree.body if isinstance(n, ast.Assign)}, tree


def test_a_waiting_node_gets_a_reschedule_sensor_and_other_nodes_none(tmp_path):
    pipeline = approval_pipeline("sensor", str(tmp_path / "root"), str(tmp_path / "serving"))
    AirflowDagRunner(retries=1, wait_poke_seconds=30).compile(pipeline, tmp_path / "sensor.py")
    constants, tree = _dag_constants(tmp_path / "sensor.py")
    # Approval's timeout_seconds (1800) plus an hour; retries at least 3 (Airflow's reschedule race)
    assert ast.literal_eval(constants["WAITS"]) == {
        "approval": {"poke_interval": 30.0, "timeout": 5400.0, "retries": 3}
    }
    source = (tmp_path / "sensor.py").read_text()
    assert 'mode="reschedule"' in source and "retry_exit_code=WAITING_EXIT_CODE" in source

    flaky = flaky_pipeline("flaky", str(tmp_path / "flaky_root"), str(tmp_path / "marker"))
    AirflowDagRunner(retries=2, retry_delay_seconds=5, on_failure_callback="alerts.pager:page").compile(
        flaky, tmp_path / "flaky.py"
    )
    constants, tree = _dag_constants(tmp_path / "flaky.py")
    assert ast.literal_eval(constants["WAITS"]) == {}
    (callback,) = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "alerts.pager"]
    assert [(a.name, a.asname) for a in callback.names] == [("page", "on_failure_callback")]
    (dag_function,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.decorator_list]
    options = {k.arg: k.value for k in dag_function.decorator_list[0].keywords}
    assert ast.unparse(options["default_args"]) == (
        "{'retries': 2, 'retry_delay': timedelta(seconds=5), 'on_failure_callback': on_failure_callback}"
    )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"on_failure_callback": "alerts.page"}, "must be 'module:function'"),
        ({"on_failure_callback": "alerts:page; import os"}, "must be 'module:function'"),
        ({"max_active_runs": 0}, "max_active_runs must be 1 or more"),
        ({"start_date": "2026-01-02", "end_date": "2026-01-01"}, "is before start_date"),
        ({"wait_poke_seconds": 0}, "wait_poke_seconds must be > 0"),
    ],
)
def test_bad_runner_options_are_definition_errors(options, message):
    with pytest.raises(DefinitionError, match=message):
        AirflowDagRunner(**options)
