"""The demo taxi pipeline as an Airflow 3 DAG, run by a real Airflow (``airflow dags test``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mlpipe.metadata.queries import list_runs, run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.airflow import AirflowDagRunner
from tests.support.airflow_env import migrated_airflow_home

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "pipelines"))

from taxi import create_pipeline  # noqa: E402

NODES = {
    "CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Transform", "Trainer",
    "latest_blessed_model_resolver", "Evaluator", "Pusher",
}  # fmt: skip


@pytest.mark.e2e
def test_taxi_dag_completes_with_one_mlmd_run_of_every_node_and_a_pushed_model(small_data, tmp_path):
    home = migrated_airflow_home(tmp_path / "airflow_home")
    serving = tmp_path / "serving" / "taxi"
    pipeline = create_pipeline(
        pipeline_root=str(tmp_path / "root"),
        serving_model_dir=str(serving),
        data_root=str(small_data),
        train_steps=200,
        eval_steps=20,
        name="taxi_airflow",
    )
    dag_id = AirflowDagRunner(schedule="@daily", start_date="2026-01-01").compile(
        pipeline, home.dags / "taxi.py"
    )

    result = home.dags_test(dag_id, "2026-01-01")
    assert result.returncode == 0 and "state=success" in result.stdout, result.stdout[-5000:]

    store = MetadataStore(pipeline.metadata)
    try:
        (run,) = list_runs(store, pipeline.name)
        executions = run_executions(store, run.run_id)
        assert {e.node_id: e.state for e in executions} == {node: "COMPLETE" for node in NODES}
        by_node = {e.node_id: e for e in executions}
        (blessing,) = by_node["Evaluator"].outputs["blessing"]
        (pushed,) = by_node["Pusher"].outputs["pushed_model"]
    finally:
        store.close()
    assert blessing.blessed
    assert pushed.get_custom_property("pushed") == 1
    assert os.listdir(serving) == [str(pushed.get_custom_property("pushed_version"))]
    assert os.path.isfile(serving / os.listdir(serving)[0] / "saved_model.pb")
