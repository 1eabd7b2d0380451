"""TFX-style pipeline files, unchanged, on mlpipe: ``mlpipe run FILE`` to a blessed, pushed model
that ``mlpipe serve`` answers for; the same files on the Beam and Airflow runners and compiled for
Kubeflow.

Which combinations run (all of them in CI; about 6 min of one core here, 2-3 min of the suite's
wall time on 2 workers): the three files on the local runner (``mlpipe run``, each served); the
@component file on Beam and on Airflow — the runs whose node code imports the pipeline file, hence
``tfx``, again (Airflow: in each task's process, through the hook the component loader installs);
all three compiled for Kubeflow. Penguin and taxi on Beam/Airflow add only more of the same
standard components (covered by tests/orchestration and tests/pipelines).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format

from tests.compat.conftest import PENGUIN_MEANS
from tests.compat.support import PIPELINES, environment, latest_run, mlpipe, served

pytestmark = pytest.mark.e2e

PENGUIN_NODES = {
    "CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer",
    "latest_blessed_model_resolver", "Evaluator", "Pusher",
}  # fmt: skip
FEATURES = ["culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g"]


def _pushed_version(executions, serving: Path) -> Path:
    (pushed,) = executions["Pusher"].outputs["pushed_model"]
    assert pushed.get_custom_property("pushed") == 1
    version = serving / str(pushed.get_custom_property("pushed_version"))
    assert (version / "saved_model.pb").is_file()
    return version


def test_penguin_file_runs_blesses_pushes_and_serves_a_three_class_model(tmp_path, penguin_data):
    env = environment(tmp_path, penguin_data, TFX_COMPAT_TRAIN_STEPS="100")
    result = mlpipe("run", str(PIPELINES / "penguin_pipeline.py"), env=env)
    assert result.returncode == 0, result.stderr[-5000:]

    executions = latest_run(tmp_path, "penguin_compat")
    assert {n: e.state for n, e in executions.items()} == {n: "COMPLETE" for n in PENGUIN_NODES}
    (blessing,) = executions["Evaluator"].outputs["blessing"]
    assert blessing.blessed and os.path.isfile(os.path.join(blessing.uri, "BLESSED"))
    (evaluation,) = executions["Evaluator"].outputs["evaluation"]
    with open(os.path.join(evaluation.uri, "eval_config.json")) as f:
        metrics = {
            m["className"] for spec in json.load(f)["evalConfig"]["metricsSpecs"] for m in spec["metrics"]
        }
    assert {"SparseCategoricalAccuracy", "MultiClassConfusionMatrixPlot"} <= metrics
    assert os.path.getsize(os.path.join(evaluation.uri, "plots-00000-of-00001.tfrecord")) > 0
    # the split is TFX's proto: 3 of 4 hash buckets train
    (examples,) = executions["CsvExampleGen"].outputs["examples"]
    assert examples.split_names == ["train", "eval"]
    serving = tmp_path / "serving_model" / "penguin_compat"
    _pushed_version(executions, serving)

    # an animal at each species' mean measurements is that species (the data's own construction)
    with served("penguin", serving) as client:
        answer = client.predict_examples(
            [dict(zip(FEATURES, PENGUIN_MEANS[s], strict=True)) for s in range(3)]
        )
    assert [max(range(3), key=row.__getitem__) for row in answer] == [0, 1, 2]


def test_taxi_file_with_transform_tuner_and_keras_serves_what_the_pushed_model_computes(tmp_path, taxi_data):
    env = environment(tmp_path, taxi_data, TFX_COMPAT_TRAIN_STEPS="100")
    result = mlpipe("run", str(PIPELINES / "taxi_pipeline.py"), env=env)
    assert result.returncode == 0, result.stderr[-5000:]

    executions = latest_run(tmp_path, "taxi_compat")
    assert all(e.state == "COMPLETE" for e in executions.values()), executions
    (best,) = executions["Tuner"].outputs["best_hyperparameters"]
    with open(os.path.join(best.uri, "best_hyperparameters.txt")) as f:
        values = json.load(f)["values"]
    assert values["num_layers"] in (1, 2) and values["units"] in (8, 16)
    (blessing,) = executions["Evaluator"].outputs["blessing"]
    assert blessing.blessed
    version = _pushed_version(executions, tmp_path / "serving_model" / "taxi_compat")

    trip = {"trip_miles": 3.5, "fare": 12.0, "trip_seconds": 900, "pickup_latitude": 41.9,
            "pickup_longitude": -87.6, "payment_type": "Credit Card", "company": "Flash Cab",
            "trip_start_hour": 14}  # fmt: skip
    with served("taxi", version.parent) as client:
        (answer,) = client.predict_examples([trip])
    import tensorflow as tf

    from mlpipe.serving import serialize_example

    model = tf.saved_model.load(str(version))
    expected = model.signatures["serving_default"](examples=tf.constant([serialize_example(trip)]))["outputs"]
    assert answer == pytest.approx(expected.numpy()[0].tolist(), rel=1e-5)


def _function_component_env(tmp_path: Path, data: Path, schema: Path) -> dict[str, str]:
    return environment(tmp_path, data, TFX_COMPAT_SCHEMA=str(schema))


def _check_function_component_run(home: Path, data: Path) -> dict:
    executions = latest_run(home, "function_component_compat")
    assert {n: e.state for n, e in executions.items()} == {
        n: "COMPLETE" for n in ("schema_importer", "CsvExampleGen", "Trainer", "accuracy_gate", "Pusher")
    }
    gate = executions["accuracy_gate"].outputs
    (accuracy,) = gate["accuracy"]
    (scored,) = gate["examples_scored"]
    (examples,) = executions["CsvExampleGen"].outputs["examples"]
    from mlpipe.io.examples import read_examples

    assert int(scored.read()) == len(read_examples(examples.split_uri("eval")))  # every eval record scored
    assert float(accuracy.read()) >= 0.8
    (blessing,) = gate["blessing"]
    assert blessing.blessed and os.path.isfile(os.path.join(blessing.uri, "BLESSED"))
    (schema,) = executions["schema_importer"].outputs["result"]
    assert (Path(schema.uri) / "schema.pbtxt").read_text() == (data / "schema.pbtxt").read_text()
    return executions


def test_function_component_file_gates_the_push_and_serves(tmp_path, penguin_data, penguin_schema):
    env = _function_component_env(tmp_path, penguin_data, penguin_schema)
    result = mlpipe("run", str(PIPELINES / "function_component_pipeline.py"), env=env)
    assert result.returncode == 0, result.stderr[-5000:]
    executions = _check_function_component_run(tmp_path, penguin_schema)
    serving = tmp_path / "serving_model" / "function_component_compat"
    _pushed_version(executions, serving)
    with served("penguin", serving) as client:
        answer = client.predict_examples(
            [dict(zip(FEATURES, PENGUIN_MEANS[s], strict=True)) for s in range(3)]
        )
    assert [max(range(3), key=row.__getitem__) for row in answer] == [0, 1, 2]


def test_function_component_file_on_the_beam_runner(tmp_path, penguin_data, penguin_schema, monkeypatch):
    for key, value in _function_component_env(tmp_path, penguin_data, penguin_schema).items():
        monkeypatch.setenv(key, value)
    from mlpipe.dsl.loader import load_pipeline
    from mlpipe.orchestration.beam import BeamDagRunner

    pipeline = load_pipeline(PIPELINES / "function_component_pipeline.py")
    BeamDagRunner(["--direct_running_mode=in_memory", "--direct_num_workers=1"]).run(pipeline)
    _check_function_component_run(tmp_path, penguin_schema)


def test_function_component_file_as_an_airflow_dag(tmp_path, penguin_data, penguin_schema):
    from tests.support.airflow_env import migrated_airflow_home

    home = migrated_airflow_home(tmp_path / "airflow_home")
    env = _function_component_env(tmp_path, penguin_data, penguin_schema)
    dag_file = home.dags / "function_component.py"
    result = mlpipe("compile", "--target", "airflow", str(PIPELINES / "function_component_pipeline.py"),
                    "-o", str(dag_file), env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run = home.dags_test("function_component_compat", "2026-01-01")
    assert run.returncode == 0 and "state=success" in run.stdout, run.stdout[-5000:]
    executions = _check_function_component_run(tmp_path, penguin_schema)
    _pushed_version(executions, tmp_path / "serving_model" / "function_component_compat")


@pytest.mark.parametrize(
    "file, tasks",
    [
        ("penguin_pipeline.py", 9),
        ("taxi_pipeline.py", 10),
        ("function_component_pipeline.py", 5),
    ],
)
def test_file_compiles_for_kubeflow(tmp_path, penguin_data, file, tasks, monkeypatch):
    """In this process (``mlpipe compile`` is the same loader), so TensorFlow is imported once."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    from mlpipe.dsl.loader import load_pipeline
    from mlpipe.orchestration.kubeflow import KubeflowDagRunner

    for key, value in environment(tmp_path, penguin_data).items():
        monkeypatch.setenv(key, value)
    out = KubeflowDagRunner(image="registry.example/mlpipe:1").compile(
        load_pipeline(PIPELINES / file), tmp_path / "pipeline.yaml"
    )
    with open(out) as f:  # strict: an unknown field fails the parse
        spec = json_format.ParseDict(yaml.safe_load(f), pipeline_spec_pb2.PipelineSpec())
    assert len(spec.root.dag.tasks) == tasks
