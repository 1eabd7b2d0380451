"""The ``tfx`` v1 surface on mlpipe, without TensorFlow: protos, components' TFX arguments,
``@component``, runners, the import hook (and that it stays away from a real ``tfx``), and the
loud errors for what is missing.

Expected values come from TFX's definitions written out by hand: the field numbers of its .proto
files (as wire bytes), its argument names and defaults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from google.protobuf import json_format, text_format

from mlpipe.compat.tfx import components, dsl, orchestration, proto, types
from mlpipe.compat.tfx.components.trainer.executor import GenericExecutor
from mlpipe.compat.tfx.dsl.components.base.executor_spec import ExecutorClassSpec
from mlpipe.compat.tfx.unsupported import UnsupportedTfxFeature
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.loader import load_pipeline
from mlpipe.metadata.config import MetadataConfig
from mlpipe.types import Float, Integer, ModelBlessing, String

REPO = Path(__file__).parents[2]
sa = types.standard_artifacts


# --- tfx.proto ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "message, wire",
    [
        (proto.TrainArgs(num_steps=100), b"\x10\x64"),  # trainer.proto: num_steps = 2
        (proto.EvalArgs(splits=["eval"], num_steps=5), b"\n\x04eval\x10\x05"),
        (proto.TuneArgs(num_parallel_trials=1), b"\x08\x01"),
        (proto.SplitsConfig(analyze=["train"], transform=["eval"]), b"\n\x05train\x12\x04eval"),
        (proto.Input(splits=[proto.Input.Split(name="a", pattern="*.csv")]), b"\n\x0a\n\x01a\x12\x05*.csv"),
        (proto.Output(split_config=proto.SplitConfig(splits=[proto.SplitConfig.Split(name="t", hash_buckets=2)])),
         b"\x1a\x07\n\x05\n\x01t\x10\x02"),  # Output.split_config = 3
        (proto.SplitConfig(partition_feature_name="id"), b"\x12\x02id"),
        (proto.RangeConfig(rolling_range=proto.RollingRange(num_spans=1)), b"\x12\x02\x10\x01"),
        (proto.RangeConfig(static_range=proto.StaticRange(start_span_number=1, end_span_number=2)),
         b"\n\x04\x08\x01\x10\x02"),
        (proto.PushDestination(filesystem=proto.PushDestination.Filesystem(base_directory="/m")),
         b"\x1a\x04\n\x02/m"),  # PushDestination.filesystem = 3
        (proto.PushDestination.Filesystem(versioning=proto.Versioning.UNIX_TIMESTAMP), b"\x30\x01"),
        (proto.ServingSpec(tensorflow_serving=proto.TensorFlowServing(tags=["latest"]),
                           local_docker=proto.LocalDockerConfig(), model_name="m"),
         b"\n\x08\n\x06latest\x12\x00\x22\x01m"),
        (proto.KubernetesConfig(service_account_name="sa", active_deadline_seconds=5), b"\n\x02sa\x10\x05"),
        (proto.ValidationSpec(max_loading_time_seconds=60, num_tries=3), b"\x08\x3c\x10\x03"),
        (proto.RequestSpec(tensorflow_serving=proto.TensorFlowServingRequestSpec(signature_names=["s"]),
                           split_name="eval", num_examples=3),
         b"\n\x03\x12\x01s\x12\x04eval\x18\x03"),
        (proto.DataSpec(example_splits=["eval"]), b"\x12\x04eval"),
        (proto.ModelSpec(model_signature_name=["serving_default"]), b"\x12\x0fserving_default"),
    ],
)  # fmt: skip
def test_proto_messages_have_tfx_field_numbers(message, wire):
    assert message.SerializeToString() == wire
    assert type(message).FromString(wire) == message


def test_proto_json_and_text_forms_are_tfxs_and_round_trip():
    output = proto.Output(
        split_config=proto.SplitConfig(
            splits=[
                proto.SplitConfig.Split(name="train", hash_buckets=2),
                proto.SplitConfig.Split(name="eval", hash_buckets=1),
            ]
        )
    )
    as_json = json_format.MessageToJson(output)
    assert json.loads(as_json) == {
        "splitConfig": {"splits": [{"name": "train", "hashBuckets": 2}, {"name": "eval", "hashBuckets": 1}]}
    }
    assert json_format.Parse(as_json, proto.Output()) == output
    text = 'split_config { splits { name: "train" hash_buckets: 2 } splits { name: "eval" hash_buckets: 1 } }'
    assert text_format.Parse(text, proto.Output()) == output
    assert proto.PayloadFormat.FORMAT_TF_EXAMPLE == 6 and proto.PayloadFormat.FORMAT_PARQUET == 15
    assert proto.Filesystem is proto.PushDestination.Filesystem
    assert proto.to_dict(proto.TrainArgs(num_steps=7)) == {"num_steps": 7}


# --- tfx.components: TFX's arguments -> mlpipe's parameters -------------------------------------------
def _gen():
    return components.CsvExampleGen(input_base="/data")


def test_example_gens_take_tfx_protos():
    gen = components.CsvExampleGen(
        input_base="/data",
        input_config=proto.Input(splits=[proto.Input.Split(name="single", pattern="span-{SPAN}/*")]),
        output_config=proto.Output(
            split_config=proto.SplitConfig(splits=[proto.SplitConfig.Split(name="train", hash_buckets=3),
                                                   proto.SplitConfig.Split(name="eval", hash_buckets=1)])
        ),
        range_config=proto.RangeConfig(static_range=proto.StaticRange(start_span_number=2, end_span_number=2)),
    )  # fmt: skip
    assert gen.id == "CsvExampleGen" and isinstance(gen, components.CsvExampleGen)
    assert gen.parameters["input_config"] == {"splits": [{"name": "single", "pattern": "span-{SPAN}/*"}]}
    assert gen.parameters["output_config"] == {
        "split_config": {
            "splits": [{"name": "train", "hash_buckets": 3}, {"name": "eval", "hash_buckets": 1}]
        }
    }
    assert gen.parameters["range_config"] == {"static_range": {"start_span_number": 2, "end_span_number": 2}}
    imported = components.ImportExampleGen(
        input_base="/tfrecords", payload_format=proto.PayloadFormat.FORMAT_TF_EXAMPLE
    )
    assert imported.parameters["input_base"] == "/tfrecords"


def test_data_components_take_tfx_arguments():
    gen = _gen()
    stats = components.StatisticsGen(examples=gen.outputs["examples"])
    schema = components.SchemaGen(statistics=stats.outputs["statistics"], infer_feature_shape=False)
    assert schema.parameters["infer_feature_shape"] is False
    imported = components.ImportSchemaGen(schema_file="/s/schema.pbtxt")
    assert imported.parameters == {"schema_file": "/s/schema.pbtxt"}
    validator = components.ExampleValidator(
        statistics=stats.outputs["statistics"], schema=schema.outputs["schema"]
    )
    assert validator.parameters["fail_on_anomalies"] is False  # TFX records anomalies, never fails the run
    transform = components.Transform(
        examples=gen.outputs["examples"], schema=schema.outputs["schema"], module_file="/m.py",
        splits_config=proto.SplitsConfig(analyze=["train"], transform=["train", "eval"]),
    )  # fmt: skip
    assert transform.parameters["splits_config"] == {"analyze": ["train"], "transform": ["train", "eval"]}
    assert set(transform.outputs) >= {"transform_graph", "transformed_examples", "updated_analyzer_cache"}


def test_training_components_take_tfx_arguments():
    gen = _gen()
    tuner = components.Tuner(
        examples=gen.outputs["examples"], module_file="/m.py", train_args=proto.TrainArgs(num_steps=20),
        eval_args=proto.EvalArgs(num_steps=5), tune_args=proto.TuneArgs(num_parallel_trials=1),
        custom_config={"a": 1},
    )  # fmt: skip
    assert (tuner.parameters["train_args"], tuner.parameters["tune_args"]) == (
        {"num_steps": 20}, {"num_parallel_trials": 1},
    )  # fmt: skip
    trainer = components.Trainer(
        module_file="/m.py", transformed_examples=gen.outputs["examples"],
        hyperparameters=tuner.outputs["best_hyperparameters"], train_args=proto.TrainArgs(num_steps=100),
        eval_args=proto.EvalArgs(num_steps=10), custom_executor_spec=ExecutorClassSpec(GenericExecutor),
    )  # fmt: skip
    assert trainer.inputs["examples"] is gen.outputs["examples"]  # TFX's older name of the input
    assert trainer.parameters["train_args"] == {"num_steps": 100}
    assert trainer.parameters["eval_args"] == {"num_steps": 10}
    assert set(trainer.outputs) == {"model", "model_run"}


def test_evaluation_and_push_components_take_tfx_arguments():
    gen = _gen()
    trainer = components.Trainer(examples=gen.outputs["examples"], run_fn="pkg.mod.run_fn")
    eval_config = {
        "model_specs": [{"label_key": "y"}],
        "metrics_specs": [{"metrics": [{"class_name": "ExampleCount"}]}],
    }
    evaluator = components.Evaluator(
        examples=gen.outputs["examples"], model=trainer.outputs["model"], eval_config=eval_config,
        example_splits=["eval"],
    )  # fmt: skip
    assert evaluator.parameters["eval_config"] == eval_config
    infra = components.InfraValidator(
        model=trainer.outputs["model"], examples=gen.outputs["examples"],
        serving_spec=proto.ServingSpec(tensorflow_serving=proto.TensorFlowServing(tags=["latest"]),
                                       local_docker=proto.LocalDockerConfig()),
        request_spec=proto.RequestSpec(tensorflow_serving=proto.TensorFlowServingRequestSpec(), num_examples=4,
                                       split_name="train"),
        validation_spec=proto.ValidationSpec(max_loading_time_seconds=30),
    )  # fmt: skip
    assert infra.parameters["request_spec"] == {"num_examples": 4, "split": "train"}
    assert infra.parameters["max_loading_seconds"] == 30.0
    pusher = components.Pusher(
        model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra.outputs["blessing"],
        push_destination=proto.PushDestination(filesystem=proto.PushDestination.Filesystem(base_directory="/srv/m")),
    )  # fmt: skip
    assert pusher.parameters["push_destination"] == {"filesystem": {"base_directory": "/srv/m"}}
    inferrer = components.BulkInferrer(
        examples=gen.outputs["examples"], model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"], data_spec=proto.DataSpec(example_splits=["eval"]),
    )  # fmt: skip
    assert inferrer.parameters["data_spec"] == {"example_splits": ["eval"]}
    assert set(inferrer.outputs) == {"inference_result"}


# --- tfx.dsl / tfx.orchestration ------------------------------------------------------------------------
def test_resolver_strategies_and_hand_made_channels():
    blessed = dsl.Resolver(
        strategy_class=dsl.experimental.LatestBlessedModelStrategy,
        model=dsl.Channel(type=sa.Model),
        model_blessing=types.Channel(type=sa.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    assert blessed.parameters["strategy"] == "latest_blessed_model"
    assert (
        set(blessed.outputs) == {"model", "model_blessing"} and blessed.id == "latest_blessed_model_resolver"
    )
    gen = _gen()
    latest = dsl.Resolver(
        strategy_class=dsl.experimental.LatestArtifactStrategy, examples=gen.outputs["examples"]
    )
    assert (
        latest.parameters["strategy"] == "latest_artifact"
        and latest.inputs["examples"] is gen.outputs["examples"]
    )


def test_pipeline_takes_tfx_arguments_and_defaults(tmp_path):
    gen = _gen()
    pipeline = dsl.Pipeline(
        pipeline_name="p",
        pipeline_root=str(tmp_path / "root"),
        components=[gen],
        metadata_connection_config=orchestration.metadata.sqlite_metadata_connection_config(
            str(tmp_path / "m.db")
        ),
        beam_pipeline_args=["--direct_num_workers=1"],
    )
    assert pipeline.enable_cache is False  # TFX's default
    assert (pipeline.pipeline_name, pipeline.pipeline_root) == ("p", str(tmp_path / "root"))
    assert pipeline.metadata == MetadataConfig("sqlite", {"path": str(tmp_path / "m.db")}) or (
        pipeline.metadata.to_dict()["path"] == str(tmp_path / "m.db")
    )
    assert pipeline.compile().beam_pipeline_args == ("--direct_num_workers=1",)
    mysql = orchestration.metadata.mysql_metadata_connection_config(
        host="db", port=3307, database="mlmd", username="u", password="pw"
    )
    assert mysql.to_dict()["port"] == 3307 and mysql.to_dict()["database"] == "mlmd"
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "x.db")
    other = dsl.Pipeline(pipeline_name="q", pipeline_root=str(tmp_path), components=[_gen()],
                         metadata_connection_config=config, enable_cache=True)  # fmt: skip
    assert other.enable_cache and other.metadata.to_dict()["path"] == str(tmp_path / "x.db")


def _context(tmp_path: Path, outputs: dict, parameters: dict, inputs: dict | None = None) -> ExecutionContext:
    for name, artifact in outputs.items():
        artifact.uri = str(tmp_path / name)
        os.makedirs(artifact.uri, exist_ok=True)
    return ExecutionContext("node", "p", "r", 1, inputs or {}, outputs, parameters, str(tmp_path))


def test_importer_copies_the_source_and_sets_properties(tmp_path):
    source = tmp_path / "schema_dir"
    source.mkdir()
    (source / "schema.pbtxt").write_text('feature { name: "x" }')
    importer = dsl.Importer(source_uri=str(source), artifact_type=sa.Schema, custom_properties={"curated": 1})
    assert importer.id == "Importer" and importer.outputs["result"].type is sa.Schema
    schema = sa.Schema()
    dsl.Importer.execute(_context(tmp_path, {"result": schema}, importer.parameters))
    assert (Path(schema.uri) / "schema.pbtxt").read_text() == 'feature { name: "x" }'
    assert schema.get_custom_property("curated") == 1


@dsl.components.component
def scaled(
    values: dsl.components.InputArtifact[String],
    report: dsl.components.OutputArtifact[ModelBlessing],
    factor: dsl.components.Parameter[int] = 2,
    offset: float = 0.5,
) -> dsl.components.OutputDict(total=float, count=int):
    numbers = [float(v) for v in values.read().split(",")]
    report.set_int_custom_property("blessed", 1)
    report.set_string_custom_property("note", f"{len(numbers)} numbers")
    return {"total": sum(n * factor for n in numbers) + offset, "count": len(numbers)}


def test_function_component_has_tfx_spec_and_writes_its_output_dict(tmp_path):
    spec = scaled.SPEC
    assert set(spec.inputs) == {"values"} and spec.inputs["values"].type is String
    assert spec.outputs == {"report": ModelBlessing, "total": Float, "count": Integer}
    assert (spec.parameters["factor"].type, spec.parameters["factor"].default) == (int, 2)
    assert (spec.parameters["offset"].type, spec.parameters["offset"].default) == (float, 0.5)
    values = String(uri=str(tmp_path / "values"))
    values.write("1,2,3.5")
    outputs = {"report": ModelBlessing(), "total": Float(), "count": Integer()}
    scaled.execute(_context(tmp_path, outputs, {"factor": 3, "offset": 0.5}, {"values": [values]}))
    assert float(outputs["total"].read()) == (1 + 2 + 3.5) * 3 + 0.5
    assert int(outputs["count"].read()) == 3
    assert outputs["report"].blessed and outputs["report"].get_custom_property("note") == "3 numbers"


TINY_PIPELINE = """
from __future__ import annotations  # string annotations, OutputDict(...) among them

import os
from tfx import v1 as tfx


@tfx.dsl.components.component
def count(n: tfx.dsl.components.Parameter[int] = 3) -> tfx.dsl.components.OutputDict(total=int):
    return {"total": sum(range(n))}


@tfx.dsl.components.component
def report(total: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Integer],
           out: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.String]):
    out.write(f"total={total.read()}")


def create(root):
    counter = count(n=5)
    with tfx.dsl.Cond(counter.outputs["total"].future()[0].value > 5):
        reporter = report(total=counter.outputs["total"])
    return tfx.dsl.Pipeline(pipeline_name="tiny", pipeline_root=root, components=[counter, reporter])


if __name__ == "__main__":
    RUNNER.run(create(os.environ["TINY_ROOT"]))
"""


def _tiny(tmp_path: Path, runner: str) -> Path:
    path = tmp_path / "tiny_pipeline.py"
    path.write_text(TINY_PIPELINE.replace("RUNNER", runner))
    return path


def _tiny_report(root: Path) -> str:
    (path,) = root.glob("report/out/*/value")
    return path.read_text()


def test_local_dag_runner_runs_a_tfx_file_as_a_script(tmp_path):
    path = _tiny(tmp_path, "tfx.orchestration.LocalDagRunner()")
    script = f"import mlpipe.compat.tfx_import, runpy; runpy.run_path({str(path)!r}, run_name='__main__')"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TINY_ROOT": str(tmp_path / "root")}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert _tiny_report(tmp_path / "root") == "total=10"  # 0+1+2+3+4, and the Cond held


@pytest.mark.parametrize(
    "runner",
    [
        "tfx.orchestration.LocalDagRunner()",
        "__import__('tfx.orchestration.beam.beam_dag_runner').orchestration.beam.beam_dag_runner.BeamDagRunner()",
        "tfx.orchestration.experimental.KubeflowV2DagRunner(output_dir=os.environ['TINY_ROOT'])",
        "__import__('tfx.orchestration.airflow.airflow_dag_runner').orchestration.airflow.airflow_dag_runner"
        ".AirflowDagRunner({'schedule_interval': None})",
    ],
)
def test_loader_takes_the_pipeline_a_files_main_block_hands_to_any_runner(tmp_path, monkeypatch, runner):
    monkeypatch.setenv("TINY_ROOT", str(tmp_path / "root"))
    pipeline = load_pipeline(_tiny(tmp_path, runner))
    assert pipeline.name == "tiny" and pipeline.node_ids == ["count", "report"]
    assert not (tmp_path / "root").exists()  # handed over, not run or written


def test_loader_never_runs_the_main_block_of_a_file_without_tfx(tmp_path):
    path = tmp_path / "plain.py"
    marker = tmp_path / "main_ran"
    path.write_text(f"if __name__ == '__main__':\n    open({str(marker)!r}, 'w').close()\n")
    from mlpipe.errors import DefinitionError

    with pytest.raises(DefinitionError, match="found 0"):
        load_pipeline(path)
    assert not marker.exists()


def test_beam_dag_runner_runs_the_tfx_pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("TINY_ROOT", str(tmp_path / "root"))
    from mlpipe.compat.tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    pipeline = load_pipeline(_tiny(tmp_path, "tfx.orchestration.LocalDagRunner()"))
    BeamDagRunner(beam_orchestrator_args=["--direct_running_mode=in_memory"]).run(pipeline)
    assert _tiny_report(tmp_path / "root") == "total=10"


def test_kubeflow_v2_runner_writes_a_pipeline_spec(tmp_path, monkeypatch):
    from kfp.pipeline_spec import pipeline_spec_pb2

    monkeypatch.setenv("TINY_ROOT", str(tmp_path / "root"))
    from mlpipe.compat.tfx.orchestration.experimental import KubeflowV2DagRunner, KubeflowV2DagRunnerConfig

    pipeline = load_pipeline(_tiny(tmp_path, "tfx.orchestration.LocalDagRunner()"))
    runner = KubeflowV2DagRunner(
        config=KubeflowV2DagRunnerConfig(default_image="registry.example/mlpipe:1"), output_dir=str(tmp_path)
    )
    runner.run(pipeline)
    with open(tmp_path / "pipeline.json") as f:
        as_json = json.load(f)
    spec = json_format.ParseDict(as_json, pipeline_spec_pb2.PipelineSpec())
    assert set(spec.root.dag.tasks) == {"count", "report"}
    images = {e["container"]["image"] for e in as_json["deploymentSpec"]["executors"].values()}
    assert images == {"registry.example/mlpipe:1"}


@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
def test_kfp_local_tasks_import_the_tfx_file_through_the_component_loaders_hook(tmp_path, monkeypatch):
    """Each kfp.local task is a fresh interpreter running mlpipe's node entry point; the node's
    component class lives in the TFX file, whose ``from tfx import v1`` only the hook answers."""
    from kfp import local

    from mlpipe.orchestration.kubeflow import KubeflowDagRunner

    monkeypatch.setenv("TINY_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pipeline = load_pipeline(_tiny(tmp_path, "tfx.orchestration.LocalDagRunner()"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-local"))
    KubeflowDagRunner().build(pipeline)()
    assert _tiny_report(tmp_path / "root") == "total=10"


def test_airflow_dag_runner_compiles_a_dag_file_and_refuses_to_be_a_dag(tmp_path, monkeypatch):
    monkeypatch.setenv("TINY_ROOT", str(tmp_path / "root"))
    from mlpipe.compat.tfx.orchestration.airflow.airflow_dag_runner import (
        AirflowDagRunner,
        AirflowPipelineConfig,
    )

    pipeline = load_pipeline(_tiny(tmp_path, "tfx.orchestration.LocalDagRunner()"))
    runner = AirflowDagRunner(
        AirflowPipelineConfig({"schedule_interval": "@daily", "start_date": "2026-01-01"})
    )
    assert runner.compile(pipeline, str(tmp_path / "dag.py")) == "tiny"
    assert "@daily" in (tmp_path / "dag.py").read_text()
    with pytest.raises(UnsupportedTfxFeature, match="mlpipe compile --target airflow"):
        runner.run(pipeline)


# --- errors for what is not there ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, symbol",
    [
        (lambda: components.ExampleDiff, "tfx.components.ExampleDiff"),
        (lambda: dsl.experimental.RuntimeParameter, "tfx.dsl.experimental.RuntimeParameter"),
        (lambda: dsl.experimental.SpanRangeStrategy, "tfx.dsl.experimental.SpanRangeStrategy"),
        (lambda: dsl.placeholders, "tfx.dsl.placeholders"),
        (lambda: components.Trainer(examples=_gen().outputs["examples"], trainer_fn="m.trainer_fn"),
         "tfx.components.Trainer(trainer_fn=...)"),
        (lambda: components.Trainer(examples=_gen().outputs["examples"], module_file="/m.py",
                                    custom_executor_spec=ExecutorClassSpec(object)),
         "tfx.components.Trainer(custom_executor_spec=...)"),
        (lambda: components.Pusher(model=components.Trainer(examples=_gen().outputs["examples"],
                                                            module_file="/m.py").outputs["model"],
                                   push_destination=proto.PushDestination(filesystem=proto.PushDestination.Filesystem(
                                       base_directory="/x", versioning=proto.Versioning.UNIX_TIMESTAMP))),
         "tfx.proto.PushDestination.Filesystem(versioning=UNIX_TIMESTAMP)"),
        (lambda: components.StatisticsGen(examples=_gen().outputs["examples"], exclude_splits=["eval"]),
         "tfx.components.StatisticsGen(exclude_splits=...)"),
        (lambda: dsl.components.component(use_beam=True), "tfx.dsl.components.component(use_beam=True)"),
        (lambda: dsl.Resolver(strategy_class=object, model=dsl.Channel(type=sa.Model)), "tfx.dsl.Resolver"),
        (lambda: dsl.Pipeline(pipeline_name="p", pipeline_root="/r", components=[_gen()], platform_config=1),
         "tfx.dsl.Pipeline(platform_config=...)"),
        (lambda: orchestration.LocalDagRunner().run(None, run_options=1),
         "tfx.orchestration.LocalDagRunner().run(run_options=...)"),
    ],
)  # fmt: skip
def test_unsupported_tfx_features_fail_naming_the_symbol_and_the_mlpipe_way(make, symbol):
    with pytest.raises(UnsupportedTfxFeature) as caught:
        make()
    message = str(caught.value)
    assert message.startswith(symbol) and "not supported by mlpipe" in message
    assert isinstance(caught.value, ImportError)  # TFX-style `except ImportError` fallbacks still work


# --- the import hook ----------------------------------------------------------------------------------------
def _python(code: str, *path: Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, path), str(REPO)])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_hook_is_opt_in_cheap_and_resolves_tfxs_import_paths():
    result = _python(
        """
        import importlib.util, sys
        import mlpipe
        assert importlib.util.find_spec("tfx") is None, "a real tfx is importable here"
        assert "mlpipe.compat.tfx" not in sys.modules and not any("TfxAlias" in repr(f) for f in sys.meta_path)
        import mlpipe.compat.tfx_import
        from tfx import v1 as tfx
        import tfx as top
        from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
        from tfx.components.trainer.executor import TrainerFnArgs
        from tfx.components.tuner.component import TunerFnResult
        from tfx.dsl.components.base import executor_spec
        from tfx.dsl.component.experimental.decorators import component
        from tfx.dsl.component.experimental.annotations import OutputDict, Parameter
        from tfx.dsl.experimental.conditionals.conditional import Cond
        from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
        from tfx.orchestration import pipeline, metadata
        from tfx.orchestration.local.local_dag_runner import LocalDagRunner
        from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2
        from tfx.types import standard_artifacts
        from tfx.utils import io_utils
        import mlpipe.compat.tfx.components as compat_components
        from mlpipe.components.fn_args import FnArgs as MlpipeFnArgs
        assert tfx.components is compat_components and top.v1 is tfx
        assert FnArgs is MlpipeFnArgs is TrainerFnArgs is tfx.components.FnArgs
        assert TunerFnResult is tfx.components.TunerFnResult and DataAccessor is tfx.components.DataAccessor
        assert trainer_pb2.TrainArgs is tfx.proto.TrainArgs and pipeline.Pipeline is tfx.dsl.Pipeline
        assert standard_artifacts.Model.TYPE_NAME == "Model" and Cond is tfx.dsl.Cond
        heavy = [m for m in ("tensorflow", "apache_beam", "tensorflow_model_analysis") if m in sys.modules]
        assert not heavy, heavy
        try:
            import tfx.extensions.google_cloud_ai_platform.trainer
        except ImportError as e:
            print(e)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tfx.extensions.google_cloud_ai_platform is not supported")
    assert "Vertex AI" in result.stdout


def test_a_real_tfx_on_the_path_is_used_and_nothing_is_hooked(tmp_path):
    stand_in = tmp_path / "site"
    (stand_in / "tfx").mkdir(parents=True)
    (stand_in / "tfx" / "__init__.py").write_text("STAND_IN = True\n")
    module = tmp_path / "user_module.py"
    module.write_text("import tfx\nWHICH = tfx.__file__\n")
    pipeline_file = tmp_path / "tfx_stand_in_pipeline.py"
    pipeline_file.write_text(
        "import tfx\nassert tfx.STAND_IN\n"
        "from mlpipe.dsl.component import component\nfrom mlpipe import Pipeline\n"
        "@component\ndef nothing():\n    pass\n"
        f"PIPELINE = Pipeline('standin', {str(tmp_path / 'root')!r}, [nothing()])\n"
    )
    result = _python(
        f"""
        import sys
        from mlpipe.compat import hook
        from mlpipe.components.module_loader import load_module_file
        from mlpipe.dsl.loader import load_pipeline
        import mlpipe.compat.tfx_import
        assert not hook.installed() and hook.install() is False
        assert load_module_file({str(module)!r}).WHICH == {str(stand_in / "tfx" / "__init__.py")!r}
        assert load_pipeline({str(pipeline_file)!r}).name == "standin"
        assert not hook.installed() and sys.modules["tfx"].STAND_IN
        """,
        stand_in,
    )
    assert result.returncode == 0, result.stderr


def test_component_annotation_and_artifact_base_are_accepted():
    @dsl.components.component(component_annotation=dsl.standard_annotations.Train)
    def train_marker(examples: dsl.components.InputArtifact[sa.Examples]) -> None:
        pass

    assert set(train_marker.SPEC.inputs) == {"examples"} and issubclass(sa.Examples, dsl.Artifact)
    assert issubclass(train_marker, types.BaseComponent)


def test_fileio_and_io_utils_read_and_write_files(tmp_path):
    from google.protobuf import descriptor_pb2

    from mlpipe.compat.tfx.dsl.io import fileio
    from mlpipe.compat.tfx.utils import io_utils

    folder = str(tmp_path / "a" / "b")
    fileio.makedirs(folder)
    io_utils.write_string_file(os.path.join(folder, "x.txt"), "hello")
    assert fileio.exists(os.path.join(folder, "x.txt")) and fileio.isdir(folder)
    assert io_utils.read_string_file(os.path.join(folder, "x.txt")) == "hello"
    io_utils.copy_file(os.path.join(folder, "x.txt"), str(tmp_path / "y.txt"))
    assert (tmp_path / "y.txt").read_text() == "hello"
    assert fileio.glob(str(tmp_path / "*.txt")) == [str(tmp_path / "y.txt")]
    assert io_utils.get_only_uri_in_dir(folder) == os.path.join(folder, "x.txt")
    message = descriptor_pb2.FileDescriptorProto(name="n.proto", package="p")
    io_utils.write_pbtxt_file(str(tmp_path / "m.pbtxt"), message)
    assert (tmp_path / "m.pbtxt").read_text() == 'name: "n.proto"\npackage: "p"\n'
    assert (
        io_utils.parse_pbtxt_file(str(tmp_path / "m.pbtxt"), descriptor_pb2.FileDescriptorProto()) == message
    )
    fileio.remove(str(tmp_path / "y.txt"))
    fileio.rmtree(str(tmp_path / "a"))
    assert fileio.listdir(str(tmp_path)) == ["m.pbtxt"]
