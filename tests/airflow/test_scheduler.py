"""mlpipe's DAGs under Airflow 3's real scheduler: LocalExecutor on PostgreSQL, the api-server's
execution API and the dag-processor, all on 127.0.0.1 (tests/support/airflow_env.py).

One stack serves the module. Every DAG is compiled into its dags folder at the start, so the
scheduler runs the light DAGs (retries, approvals) while the taxi DAG trains; the tests then wait for
what they check. DAGs are scheduled ``@daily`` with catchup between a start and an end date, which
makes the scheduler create a known number of runs at once, whatever the time of day.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlpipe.metadata.queries import list_runs, run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.airflow import AirflowDagRunner
from tests.airflow import pipelines
from tests.support.airflow_env import AirflowStack, start_airflow_stack

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "pipelines"))

from taxi import create_pipeline  # noqa: E402

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
TAXI_NODES = {
    "CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Transform", "Trainer",
    "latest_blessed_model_resolver", "Evaluator", "Pusher",
}  # fmt: skip
SPAN_PATTERN = {"splits": [{"name": "all", "pattern": "span-{SPAN}/*.csv"}]}
SPAN_ROWS = {1: 1500, 2: 1000}  # taxi rows per span; span 2 arrives while the first run is going


def mlpipe_run_id(dag_id: str, airflow_run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{dag_id}__{airflow_run_id}")


def write_span(data: Path, span: int) -> None:
    """``span-N/data.csv``: the header and the next SPAN_ROWS[N] rows of the taxi data."""
    skip = sum(SPAN_ROWS[s] for s in SPAN_ROWS if s < span)
    (data / f"span-{span}").mkdir(parents=True)
    tmp = data / f".span-{span}.csv.tmp"
    with open(REPO / "examples" / "data" / "chicago_taxi.csv", newline="") as src, open(tmp, "w") as dst:
        rows = csv.reader(src)
        writer = csv.writer(dst)
        writer.writerow(next(rows))
        for i, row in enumerate(rows):
            if i >= skip + SPAN_ROWS[span]:
                break
            if i >= skip:
                writer.writerow(row)
    os.replace(tmp, data / f"span-{span}" / "data.csv")  # the ExampleGen never sees half a file


class SecondSpanFeeder(threading.Thread):
    """Writes span 2 as soon as the first taxi run's ExampleGen has read span 1.

    It runs beside the other checks from the moment the DAGs are compiled: the second run waits for
    the first (max_active_runs=1), and the first run's nodes after its ExampleGen take a minute, so
    span 2 is in place before the second run's ExampleGen looks. Waiting for the ExampleGen only
    when the schedule check's turn came was a race: on a fast scheduler the first run had ended and
    the second had already read span 1 again (all CACHED) while the approval checks ran."""

    def __init__(self, stack: AirflowStack, data: Path) -> None:
        super().__init__(daemon=True)
        self.stack, self.data = stack, data
        self.written = False
        self.error = ""

    def run(self) -> None:
        deadline = time.monotonic() + 600
        try:
            while time.monotonic() < deadline:
                runs = self.stack.dag_runs("taxi_scheduled")
                first = self.stack.task_states("taxi_scheduled", runs[0][0]) if runs else {}
                if first.get("CsvExampleGen", ("",))[0] == "success":
                    write_span(self.data, 2)
                    self.written = True
                    return
                time.sleep(0.5)
            self.error = f"no ExampleGen success in {runs}\n{self.stack.process_log('scheduler')}"
        except Exception as e:  # told by the check that joins this thread
            self.error = repr(e)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> AirflowStack:
    stack = start_airflow_stack(tmp_path_factory.mktemp("airflow_home"))
    shutil.copy(Path(__file__).with_name("failure_callback.py"), stack.dags)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def dags(stack, tmp_path_factory) -> dict[str, object]:
    """Compiles every DAG of the module (the scheduler starts them within seconds) and returns what
    the tests need to know about each."""
    work = tmp_path_factory.mktemp("scheduled")
    data = work / "taxi_data"
    write_span(data, 1)
    taxi = create_pipeline(
        pipeline_root=str(work / "taxi_root"),
        serving_model_dir=str(work / "taxi_serving"),
        data_root=str(data),
        train_steps=20,
        eval_steps=5,
        name="taxi_scheduled",
        input_config=SPAN_PATTERN,
    )
    AirflowDagRunner(
        schedule="@daily",
        start_date=TODAY - timedelta(days=1),
        end_date=TODAY,
        catchup=True,
        max_active_runs=1,
    ).compile(taxi, stack.dags / "taxi_scheduled.py")

    once = {"schedule": "@daily", "start_date": TODAY, "end_date": TODAY, "catchup": True}  # one run, today's
    flaky = pipelines.flaky_pipeline("flaky", str(work / "flaky_root"), str(work / "flaky_marker"))
    AirflowDagRunner(
        **once, retries=1, retry_delay_seconds=1, on_failure_callback="failure_callback:record"
    ).compile(flaky, stack.dags / "flaky.py")

    approvals = {}
    for name in ("approve_me", "reject_me"):
        serving = work / f"{name}_serving"
        pipeline = pipelines.approval_pipeline(name, str(work / f"{name}_root"), str(serving))
        AirflowDagRunner(**once, wait_poke_seconds=10).compile(pipeline, stack.dags / f"{name}.py")
        approvals[name] = (pipeline, serving)
    span_2 = SecondSpanFeeder(stack, data)
    span_2.start()
    return {"taxi": (taxi, data), "span_2": span_2, "flaky": flaky, "approvals": approvals}


def two_scheduled_runs_the_second_cached_where_nothing_changed_and_on_the_new_span(stack, dags):
    taxi, _ = dags["taxi"]
    dags["span_2"].join(timeout=600)
    assert dags["span_2"].written, f"span 2 was never written: {dags['span_2'].error}"

    runs = stack.wait_for_runs("taxi_scheduled", 2, timeout=600)
    assert [(run_type, state) for _, run_type, state in runs] == [("scheduled", "success")] * 2, runs
    first_id, second_id = (mlpipe_run_id("taxi_scheduled", run_id) for run_id, _, _ in runs)

    store = MetadataStore(taxi.metadata)
    try:
        assert {r.run_id for r in list_runs(store, taxi.name)} == {first_id, second_id}
        first = {e.node_id: e for e in run_executions(store, first_id)}
        second = {e.node_id: e for e in run_executions(store, second_id)}
    finally:
        store.close()
    assert {n: e.state for n, e in first.items()} == {n: "COMPLETE" for n in TAXI_NODES}
    changed = TAXI_NODES - {"ImportSchemaGen"}  # everything reading the examples sees the new span
    assert {n: e.state for n, e in second.items()} == {
        **{n: "COMPLETE" for n in changed},
        "ImportSchemaGen": "CACHED",
    }
    assert second["ImportSchemaGen"].cached_from == first["ImportSchemaGen"].id
    for run, span in ((first, 1), (second, 2)):
        (examples,) = run["CsvExampleGen"].outputs["examples"]
        assert examples.properties["span"] == span
        rows = sum(examples.get_custom_property(f"num_rows_{split}") for split in examples.split_names)
        assert rows == SPAN_ROWS[span]  # counted from the CSV this test wrote
    assert "external input span: 2 (was 1)" in second["CsvExampleGen"].cache_miss

    # what the Airflow UI shows for a task: mlpipe's verdict and WHY line, and the node's progress
    example_gen_log = stack.task_log("taxi_scheduled", runs[1][0], "CsvExampleGen")
    assert f"mlpipe: node CsvExampleGen COMPLETE (execution {second['CsvExampleGen'].id}" in example_gen_log
    assert "external input span: 2 (was 1)" in example_gen_log
    trainer_log = stack.task_log("taxi_scheduled", runs[1][0], "Trainer")
    assert "mlpipe.executor.Trainer:step 20/20 (100%): binary_accuracy" in trainer_log  # the node's progress
    schema_log = stack.task_log("taxi_scheduled", runs[1][0], "ImportSchemaGen")
    assert f"mlpipe: node ImportSchemaGen CACHED (execution {second['ImportSchemaGen'].id}" in schema_log


def failed_task_is_retried_and_the_failure_callback_gets_the_task_that_failed_for_good(stack, dags):
    (run_id, run_type, state), *more = stack.wait_for_runs("flaky", 1, timeout=300)
    assert (run_type, state, more) == ("scheduled", "failed", [])
    tasks = stack.task_states("flaky", run_id)
    assert tasks == {"flaky": ("success", 2), "broken": ("failed", 2)}

    failures = [json.loads(line) for line in (stack.dags / "failures.jsonl").read_text().splitlines()]
    assert [(f["dag_id"], f["task_id"], f["run_id"], f["try_number"]) for f in failures] == [
        ("flaky", "broken", run_id, 2)
    ]
    assert failures[0]["exception"] == "Bash command failed. The command returned a non-zero exit code 1."

    store = MetadataStore(dags["flaky"].metadata)
    try:
        executions = run_executions(store, mlpipe_run_id("flaky", run_id))
    finally:
        store.close()
    states = [(e.node_id, e.state) for e in sorted(executions, key=lambda e: e.id)]
    assert states == [("flaky", "FAILED"), ("flaky", "COMPLETE"), ("broken", "FAILED"), ("broken", "FAILED")]
    assert "broken on purpose" in stack.task_log("flaky", run_id, "broken", 2)


def _wait_for_reschedule(stack: AirflowStack, dag_id: str) -> str:
    """The DAG run's id once its approval sensor is up_for_reschedule: waiting without a worker."""
    deadline = time.monotonic() + 300
    while True:
        runs = stack.dag_runs(dag_id)
        if runs:
            state = stack.task_states(dag_id, runs[0][0]).get("wait_for_approval", ("none", 0))[0]
            if state == "up_for_reschedule":
                return runs[0][0]
        assert time.monotonic() < deadline, f"{dag_id}: sensor never rescheduled: {runs}"
        time.sleep(0.5)


def _mlpipe_approve(pipeline, run_id: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("mlpipe")), "approve", run_id, "approval", "--user", "ana",
         "--metadata", pipeline.metadata.path, *flags],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def approval_waits_rescheduled_without_a_worker_until_mlpipe_approve_answers(stack, dags, decision):
    dag_id = f"{decision}_me"
    pipeline, serving = dags["approvals"][dag_id]
    airflow_run_id = _wait_for_reschedule(stack, dag_id)
    run_id = mlpipe_run_id(dag_id, airflow_run_id)
    # the sensor gave its slot back and was put back on the schedule, more than once before the answer
    time.sleep(3)
    reschedules = stack.query(
        f"SELECT count(*) FROM task_reschedule r JOIN task_instance t ON r.ti_id = t.id "
        f"WHERE t.dag_id = '{dag_id}' AND t.task_id = 'wait_for_approval'"
    )
    assert int(reschedules[0][0]) >= 1
    assert not serving.exists()  # nothing pushed before the decision

    answer = _mlpipe_approve(
        pipeline, run_id, *(["--reject"] if decision == "reject" else []), "--comment", "seen"
    )
    assert answer.returncode == 0, answer.stderr

    (_, _, state), *more = stack.wait_for_runs(dag_id, 1, timeout=300)
    assert (state, more) == ("success", [])
    tasks = stack.task_states(dag_id, airflow_run_id)
    assert {t: s for t, (s, _) in tasks.items()} == {
        "make_model": "success", "wait_for_approval": "success", "approval": "success", "Pusher": "success",
    }  # fmt: skip
    store = MetadataStore(pipeline.metadata)
    try:
        executions = {e.node_id: e for e in run_executions(store, run_id)}
    finally:
        store.close()
    assert {n: e.state for n, e in executions.items()} == {
        n: "COMPLETE" for n in ("make_model", "approval", "Pusher")
    }
    (blessing,) = executions["approval"].outputs["blessing"]
    (pushed,) = executions["Pusher"].outputs["pushed_model"]
    if decision == "approve":
        assert blessing.get_custom_property("approved_by") == "ana"
        assert blessing.get_custom_property("comment") == "seen"
        (version,) = os.listdir(serving)
        assert version == str(pushed.get_custom_property("pushed_version"))
        assert (serving / version / "saved_model.pb").read_bytes() == b"not a real graph"
    else:
        assert blessing.get_custom_property("approval") == "rejected"
        assert pushed.get_custom_property("pushed") == 0
        assert not serving.exists() or os.listdir(serving) == []


def test_scheduler_runs_the_taxi_schedule_retries_and_approval_waits(stack, dags):
    """One test for the module's one stack: under ``pytest -n 2`` separate tests could land on both
    workers and start two stacks. Approvals first (their clocks run from the first poke), the taxi
    DAG last (it trains while the others are checked); every check runs, and all failures are told."""
    checks = [
        ("approve", lambda: approval_waits_rescheduled_without_a_worker_until_mlpipe_approve_answers(stack, dags, "approve")),
        ("reject", lambda: approval_waits_rescheduled_without_a_worker_until_mlpipe_approve_answers(stack, dags, "reject")),
        ("retries", lambda: failed_task_is_retried_and_the_failure_callback_gets_the_task_that_failed_for_good(stack, dags)),
        ("schedule", lambda: two_scheduled_runs_the_second_cached_where_nothing_changed_and_on_the_new_span(stack, dags)),
    ]  # fmt: skip
    failures = []
    for name, check in checks:
        try:
            check()
        except AssertionError as e:
            failures.append(f"{name}: {e}")
    assert not failures, "\n\n".join(failures)
