"""AirflowDagRunner: compiled DAG files, run by a real Airflow 3 with ``airflow dags test``.

Airflow runs from its own virtualenv (tests/support/airflow_env.py builds it once); its tasks run
the nodes in this interpreter, against the pipeline's SQLite MLMD, which the tests then read.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mlpipe.ir import PipelineIR
from mlpipe.metadata.config import mysql
from mlpipe.metadata.queries import list_runs, run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.airflow import AirflowDagRunner, compile_for_airflow
from tests.orchestration import four_nodes, gated
from tests.support.airflow_env import AirflowHome, ensure_airflow_venv, migrated_airflow_home

NODES = ["ingest", "scale", "apply_module", "summarize"]
FOUR_NODES_FILE = Path(four_nodes.__file__)


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    return ensure_airflow_venv()


@pytest.fixture(scope="module")
def airflow_home(airflow_venv, tmp_path_factory) -> AirflowHome:
    return migrated_airflow_home(tmp_path_factory.mktemp("airflow_home"), airflow_venv)


def _pipeline(tmp_path: Path, name: str, transform_body: str):
    module = tmp_path / "user_module.py"
    module.write_text(f"def transform(v):\n    {transform_body}\n")
    return four_nodes.create_pipeline(str(tmp_path / "root"), str(module), name=name)


def _airflow_run_id(output: str) -> str:
    match = re.search(r"DagRun Finished: .*?run_id=([^,\s]+)", output)
    assert match, output[-3000:]
    return match.group(1)


@pytest.mark.e2e
def test_dag_runs_each_node_once_then_serves_the_next_dag_run_from_the_cache(airflow_home, tmp_path):
    pipeline = _pipeline(tmp_path, "four_nodes_ok", "return v + 1")
    runner = AirflowDagRunner(schedule="@daily", start_date="2026-01-01")
    dag_id = runner.compile(pipeline, airflow_home.dags / "four_nodes_ok.py")
    calls = tmp_path / "calls.log"

    first = airflow_home.dags_test(dag_id, "2026-01-01", MLPIPE_TEST_CALLS_LOG=str(calls))
    assert first.returncode == 0 and "state=success" in first.stdout, first.stdout[-3000:]
    store = MetadataStore(pipeline.metadata)
    try:
        (run,) = list_runs(store, pipeline.name)
        assert run.run_id == re.sub(r"[^A-Za-z0-9_.-]", "-", f"{dag_id}__{_airflow_run_id(first.stdout)}")
        executions = run_executions(store, run.run_id)
        assert [(e.node_id, e.state) for e in executions] == [(n, "COMPLETE") for n in NODES]
        (total,) = executions[-1].outputs["total"]
        assert (Path(total.uri) / "value").read_text() == "25.0"
    finally:
        store.close()

    second = airflow_home.dags_test(dag_id, "2026-01-02", MLPIPE_TEST_CALLS_LOG=str(calls))
    assert second.returncode == 0 and "state=success" in second.stdout, second.stdout[-3000:]
    store = MetadataStore(pipeline.metadata)
    try:
        newest, oldest = list_runs(store, pipeline.name)
        assert oldest.run_id == run.run_id
        assert newest.states == {"CACHED": len(NODES)}
    finally:
        store.close()
    assert calls.read_text().split() == NODES  # every executor ran once, in the first DAG run only


@pytest.mark.e2e
def test_failing_node_fails_its_task_with_the_error_in_the_task_log(airflow_home, tmp_path):
    pipeline = _pipeline(tmp_path, "four_nodes_boom", "raise RuntimeError('boom')")
    dag_id = AirflowDagRunner().compile(pipeline, airflow_home.dags / "four_nodes_boom.py")

    result = airflow_home.dags_test(dag_id, "2026-01-01")
    assert result.returncode != 0 and "state=failed" in result.stdout, result.stdout[-3000:]
    error_lines = [
        line
        for line in result.stdout.splitlines()
        if "node 'apply_module' failed: RuntimeError: boom" in line
    ]
    assert error_lines and all("SubprocessHook" in line for line in error_lines), result.stdout[-3000:]
    store = MetadataStore(pipeline.metadata)
    try:
        (run,) = list_runs(store, pipeline.name)
        executions = run_executions(store, run.run_id)
    finally:
        store.close()
    assert [(e.node_id, e.state) for e in executions] == [
        ("ingest", "COMPLETE"),
        ("scale", "COMPLETE"),
        ("apply_module", "FAILED"),
    ]


@pytest.mark.e2e
def test_nodes_mlpipe_skips_are_skipped_tasks_and_an_optional_consumer_still_runs(airflow_home, tmp_path):
    # measure writes n=1: select's Cond (n >= 3) is false, total needs select's examples,
    # report reads them only optionally
    pipeline = gated.create_pipeline(str(tmp_path / "root"), rows=1, name="gated_airflow")
    dag_id = AirflowDagRunner().compile(pipeline, airflow_home.dags / "gated_airflow.py")
    calls = tmp_path / "calls.log"

    result = airflow_home.dags_test(dag_id, "2026-01-01", MLPIPE_TEST_CALLS_LOG=str(calls))
    assert result.returncode == 0 and "state=success" in result.stdout, result.stdout[-3000:]
    run_id = _airflow_run_id(result.stdout)
    assert airflow_home.task_states(dag_id, run_id) == {
        "measure": "success", "select": "skipped", "total": "skipped", "report": "success"
    }  # fmt: skip
    assert calls.read_text().split() == ["measure", "report"]
    for node in ("select", "total"):  # total is in select's Cond block too
        skipped = rf"mlpipe: node {node} SKIPPED \(execution \d+; condition measure\.outputs\['n'\]"
        assert re.search(skipped, result.stdout), result.stdout[-3000:]
    store = MetadataStore(pipeline.metadata)
    try:
        executions = run_executions(store, re.sub(r"[^A-Za-z0-9_.-]", "-", f"{dag_id}__{run_id}"))
    finally:
        store.close()
    assert {e.node_id: e.state for e in executions} == {
        "measure": "COMPLETE", "select": "SKIPPED", "total": "SKIPPED", "report": "COMPLETE"
    }  # fmt: skip
    (summary,) = next(e for e in executions if e.node_id == "report").outputs["summary"]
    assert (Path(summary.uri) / "value").read_text() == "1 rows, none selected"


def test_dag_file_needs_only_airflow_and_carries_the_runner_options(tmp_path, monkeypatch):
    monkeypatch.setenv("FOUR_NODES_ROOT", str(tmp_path / "root"))
    (tmp_path / "user_module.py").write_text("def transform(v):\n    return v\n")
    monkeypatch.setenv("FOUR_NODES_MODULE", str(tmp_path / "user_module.py"))
    dag_file = tmp_path / "dags" / "nightly.py"
    dag_file.parent.mkdir()
    dag_id = compile_for_airflow(
        FOUR_NODES_FILE,
        dag_file,
        schedule="0 3 * * *",
        start_date="2026-02-03T04:05:00+01:00",
        catchup=True,
        retries=2,
        python="/opt/mlpipe/bin/python",
    )
    assert dag_id == "four_nodes"
    assert PipelineIR.load(tmp_path / "dags" / "nightly.ir.json").name == "four_nodes"

    source = dag_file.read_text()
    compile(source, str(dag_file), "exec")
    tree = ast.parse(source)
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names
    }
    assert "airflow.sdk" in imported
    assert not [m for m in imported if m and m.split(".")[0] == "mlpipe"]

    constants = {
        n.targets[0].id: n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
    }
    assert ast.literal_eval(constants["MLPIPE_PYTHON"]) == "/opt/mlpipe/bin/python"
    assert ast.unparse(constants["PIPELINE_IR"]) == "Path(__file__).with_name('nightly.ir.json')"
    assert ast.literal_eval(constants["UPSTREAM"]) == {
        "ingest": [],
        "scale": ["ingest"],
        "apply_module": ["scale"],
        "summarize": ["apply_module"],
    }
    (dag_function,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.decorator_list]
    options = {k.arg: k.value for k in dag_function.decorator_list[0].keywords}
    assert (
        ast.unparse(options["dag_id"]) == "DAG_ID" and ast.literal_eval(constants["DAG_ID"]) == "four_nodes"
    )
    assert ast.literal_eval(options["schedule"]) == "0 3 * * *"
    assert ast.unparse(options["start_date"]) == "datetime(2026, 2, 3, 3, 5, tzinfo=timezone.utc)"
    assert ast.literal_eval(options["catchup"]) is True
    assert ast.unparse(options["default_args"]) == "{'retries': 2, 'retry_delay': timedelta(seconds=300)}"
    assert "end_date" in options and ast.literal_eval(options["end_date"]) is None
    assert "max_active_runs" not in options  # Airflow's own default applies
    assert ast.literal_eval(constants["WAITS"]) == {}  # no node waits on the outside world


def test_mysql_password_stays_out_of_the_ir_next_to_the_dag(tmp_path, caplog):
    (tmp_path / "user_module.py").write_text("def transform(v):\n    return v\n")
    metadata = mysql("db.example.com", "mlmd", "mlpipe", "s3cret")
    pipeline = four_nodes.create_pipeline(str(tmp_path / "root"), str(tmp_path / "user_module.py"), metadata)
    AirflowDagRunner().compile(pipeline, tmp_path / "dag.py")
    stored = PipelineIR.load(tmp_path / "dag.ir.json").metadata
    assert stored == {k: v for k, v in metadata.to_dict().items() if k != "password"}
    assert "s3cret" not in (tmp_path / "dag.ir.json").read_text()
    assert "MLPIPE_MYSQL_PASSWORD" in caplog.text
