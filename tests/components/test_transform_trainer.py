"""Transform, Trainer and Tuner on the taxi demo module, run as real pipelines on LocalDagRunner.

The examples and schema come from a small test component (the head of the taxi CSV, split 2:1 by
row hash, schema typed like SchemaGen's: features present in every row are dense, others sparse),
so these tests do not depend on TFDV. One pipeline (data -> Transform -> Trainer, plus a probe
Trainer and a Tuner) runs once per module; the tests read its artifacts and rerun it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlpipe import OutputArtifact, Parameter, Pipeline, component
from mlpipe.components.trainer import Trainer
from mlpipe.components.transform import Transform
from mlpipe.components.tuner import Tuner
from mlpipe.errors import DefinitionError
from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.orchestration.run_result import RunError
from mlpipe.types import Examples, Schema
from tests.support.oracles import majority_class_rate, roc_auc

REPO = Path(__file__).parents[2]
TAXI_CSV = REPO / "examples" / "data" / "chicago_taxi.csv"
TAXI_MODULE = REPO / "components" / "taxi_module.py"
HEAD_ROWS = 3000
TRAIN_STEPS = 300

PROBE_MODULE = """
import json, os
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

def run_fn(fn_args):
    output = tft.TFTransformOutput(fn_args.transform_output)
    options = tfxio.TensorFlowDatasetOptions(batch_size=4, label_key="big_tipper")
    features, label = next(iter(fn_args.data_accessor.tf_dataset_factory(
        fn_args.train_files, options, output.transformed_metadata.schema)))
    fields = {k: getattr(fn_args, k) for k in (
        "train_files", "eval_files", "train_steps", "eval_steps", "schema_path", "schema_file",
        "transform_output", "transform_graph_path", "serving_model_dir", "model_run_dir",
        "base_model", "hyperparameters", "custom_config")}
    fields["batch"] = {"label_shape": label.shape.as_list(), "fare_shape": features["fare"].shape.as_list()}
    os.makedirs(fn_args.serving_model_dir)
    with open(fn_args.custom_config["out"], "w") as f:
        json.dump(fields, f)
"""

TUNER_MODULE = """
import keras_tuner
import tensorflow as tf
from tfx_bsl.public import tfxio
import tensorflow_transform as tft
from mlpipe.components.tuner import TunerFnResult

def tuner_fn(fn_args):
    schema = tft.TFTransformOutput(fn_args.transform_graph_path).transformed_metadata.schema
    options = tfxio.TensorFlowDatasetOptions(batch_size=32, label_key="big_tipper")

    def data(files):
        dataset = fn_args.data_accessor.tf_dataset_factory(files, options, schema)
        return dataset.map(lambda x, y: (tf.reshape(x["fare"], [-1, 1]), y)).repeat()

    def build(hp):
        model = tf.keras.Sequential([tf.keras.layers.Dense(hp.Int("units", 2, 8, step=2), activation="relu"),
                                     tf.keras.layers.Dense(1, activation="sigmoid")])
        model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
        return model

    tuner = keras_tuner.RandomSearch(build, objective="val_accuracy", max_trials=2,
                                     directory=fn_args.working_dir, project_name="tiny")
    return TunerFnResult(tuner, {"x": data(fn_args.train_files), "validation_data": data(fn_args.eval_files),
                                 "steps_per_epoch": fn_args.train_steps, "validation_steps": fn_args.eval_steps,
                                 "epochs": 1, "verbose": 0})
"""


@component
def taxi_examples(
    examples: OutputArtifact[Examples], schema: OutputArtifact[Schema], rows: Parameter[int] = 3000
):
    """The first ``rows`` taxi trips as Examples (train:eval = 2:1 by row hash) and their Schema."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from mlpipe.io import examples as io

    table = io.type_csv_columns(io.read_csv_strings([str(TAXI_CSV)]).slice(0, rows))  # as CsvExampleGen
    in_eval = io.row_fingerprints(table) % 3 == 0
    for split, mask in (("train", ~in_eval), ("eval", in_eval)):
        part = table.filter(mask)
        io.write_examples(examples.split_uri(split), io.encode_examples(part))
        examples.set_custom_property(f"num_rows_{split}", part.num_rows)
    examples.split_names = ["train", "eval"]
    examples.set_property("span", 0)
    examples.set_property("version", 0)
    # a column without a value in these rows has no type (pickup_census_tract): INT, as in the whole file
    kinds = {
        "int64": schema_pb2.INT,
        "double": schema_pb2.FLOAT,
        "binary": schema_pb2.BYTES,
        "null": schema_pb2.INT,
    }
    proto = schema_pb2.Schema()
    for field, column in zip(table.schema, table.columns, strict=True):
        feature = proto.feature.add(name=field.name, type=kinds[str(field.type)])
        if column.null_count == 0:
            feature.presence.min_fraction = 1.0
            feature.presence.min_count = 1
            feature.shape.dim.add(size=1)
        else:
            feature.value_count.min = 1
            feature.value_count.max = 1
    with open(os.path.join(schema.uri, "schema.pbtxt"), "w") as f:
        f.write(text_format.MessageToString(proto))


def _pipeline(root: Path, probe_module: Path, probe_out: Path) -> Pipeline:
    data = taxi_examples(rows=HEAD_ROWS)
    transform = Transform(
        examples=data.outputs["examples"], schema=data.outputs["schema"], module_file=str(TAXI_MODULE)
    )
    trainer = Trainer(
        examples=transform.outputs["transformed_examples"],
        schema=data.outputs["schema"],
        transform_graph=transform.outputs["transform_graph"],
        module_file=str(TAXI_MODULE),
        train_args={"num_steps": TRAIN_STEPS},
        eval_args={"num_steps": 10},
        custom_config={"epochs": 2, "first_dnn_layer_size": 32},
    )
    tuner = Tuner(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        module_file=str(root / "tuner_module.py"),
        train_args={"num_steps": 5},
        eval_args={"num_steps": 2},
    )
    probe = Trainer(
        examples=transform.outputs["transformed_examples"],
        schema=data.outputs["schema"],
        transform_graph=transform.outputs["transform_graph"],
        hyperparameters=tuner.outputs["best_hyperparameters"],
        module_file=str(probe_module),
        train_args={"num_steps": 7},
        eval_args={"num_steps": 3},
        custom_config={"out": str(probe_out)},
    ).with_id("ProbeTrainer")
    components = [data, transform, trainer, tuner, probe]
    return Pipeline("taxi_tt", root / "root", components, metadata=sqlite(root / "metadata.sqlite"))


@pytest.fixture(scope="module")
def taxi_run(tmp_path_factory):
    """The pipeline's first run; returns (its RunResult, the work dir)."""
    work = tmp_path_factory.mktemp("taxi_tt")
    (work / "probe_module.py").write_text(PROBE_MODULE)
    (work / "tuner_module.py").write_text(TUNER_MODULE)
    result = LocalDagRunner(progress=False).run(
        _pipeline(work, work / "probe_module.py", work / "fn_args.json")
    )
    return result, work


def _output(result, node: str, key: str):
    return result.results[node].outputs[key][0]


@pytest.mark.e2e
def test_transformed_examples_per_split(taxi_run):
    import tensorflow as tf

    result, _ = taxi_run
    raw = _output(result, "taxi_examples", "examples")
    transformed = _output(result, "Transform", "transformed_examples")
    assert transformed.split_names == ["train", "eval"]
    for split in ("train", "eval"):
        files = tf.io.gfile.glob(os.path.join(transformed.split_uri(split), "*.gz"))
        rows = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
        assert rows == raw.get_custom_property(f"num_rows_{split}") > 0
        assert transformed.get_custom_property(f"num_rows_{split}") == rows
    assert raw.get_custom_property("num_rows_train") + raw.get_custom_property("num_rows_eval") == HEAD_ROWS


@pytest.mark.e2e
def test_transform_graph_loads_with_tft(taxi_run):
    import tensorflow_transform as tft

    result, _ = taxi_run
    output = tft.TFTransformOutput(_output(result, "Transform", "transform_graph").uri)
    assert "big_tipper" in output.transformed_feature_spec()
    assert "tips" in output.raw_feature_spec()
    assert output.vocabulary_size_by_name("payment_type") >= 3


def _raw_eval_records(result, limit: int) -> list[bytes]:
    import tensorflow as tf

    raw = _output(result, "taxi_examples", "examples")
    files = tf.io.gfile.glob(os.path.join(raw.split_uri("eval"), "*.gz"))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit)]


def _big_tipper(record: bytes) -> int:
    import numpy as np
    import tensorflow as tf

    features = tf.train.Example.FromString(record).features.feature
    tips = features["tips"].float_list.value[0] if features["tips"].float_list.value else 0.0
    fare = features["fare"].float_list.value[0] if features["fare"].float_list.value else 0.0
    return int(np.float32(tips) > np.float32(0.2) * np.float32(fare))  # float32, as the label is computed


@pytest.mark.e2e
def test_serving_model_scores_raw_examples(taxi_run):
    import numpy as np
    import tensorflow as tf

    result, _ = taxi_run
    model_dir = os.path.join(_output(result, "Trainer", "model").uri, "Format-Serving")
    loaded = tf.saved_model.load(model_dir)
    assert {"serving_default", "transform_features"} <= set(loaded.signatures)
    records = _raw_eval_records(result, 1000)
    scores = loaded.signatures["serving_default"](examples=tf.constant(records))["outputs"].numpy()
    assert scores.shape == (len(records), 1)
    labels = np.array([_big_tipper(r) for r in records])
    # better than the trivial model: a constant score has AUC 0.5, always "no" the majority's accuracy
    majority = majority_class_rate(labels)
    accuracy = float(((scores[:, 0] > 0.5) == labels).mean())
    assert roc_auc(scores[:, 0], labels) >= 0.75 and accuracy >= majority + 0.05, (accuracy, majority)
    transformed = loaded.signatures["transform_features"](examples=tf.constant(records[:5]))
    assert transformed["big_tipper"].numpy().tolist() == labels[:5].tolist()
    assert os.listdir(_output(result, "Trainer", "model_run").uri)  # TensorBoard logs


@pytest.mark.e2e
def test_fn_args_fields_use_tfx_names(taxi_run):
    result, work = taxi_run
    fields = json.loads((work / "fn_args.json").read_text())
    transformed = _output(result, "Transform", "transformed_examples")
    graph = _output(result, "Transform", "transform_graph").uri
    assert fields["train_files"] == [os.path.join(transformed.split_uri("train"), "*.gz")]
    assert fields["eval_files"] == [os.path.join(transformed.split_uri("eval"), "*.gz")]
    assert (fields["train_steps"], fields["eval_steps"]) == (7, 3)
    schema_path = os.path.join(_output(result, "taxi_examples", "schema").uri, "schema.pbtxt")
    assert fields["schema_path"] == fields["schema_file"] == schema_path
    assert fields["transform_output"] == fields["transform_graph_path"] == graph
    # the executor writes into staging dirs that become the published artifacts
    assert fields["serving_model_dir"].endswith(os.path.join("model", "Format-Serving"))
    assert fields["model_run_dir"].endswith("model_run")
    assert fields["base_model"] is None
    assert fields["custom_config"] == {"out": str(work / "fn_args.json")}
    assert fields["batch"] == {"label_shape": [4], "fare_shape": [4]}


@pytest.mark.e2e
def test_tuner_best_hyperparameters_reach_trainer(taxi_run):
    result, work = taxi_run
    uri = _output(result, "Tuner", "best_hyperparameters").uri
    with open(os.path.join(uri, "best_hyperparameters.txt")) as f:
        best = json.load(f)
    assert best["values"]["units"] in (2, 4, 6, 8)
    fields = json.loads((work / "fn_args.json").read_text())
    assert fields["hyperparameters"] == best
    results = _output(result, "Tuner", "tuner_results")
    with open(os.path.join(results.uri, "tuner_results.json")) as f:
        trials = json.load(f)
    assert len(trials) == 2 == results.get_custom_property("num_trials")
    assert trials[0]["hyperparameters"] == best["values"]  # best first
    assert trials[0]["score"] == results.get_custom_property("best_score") >= trials[1]["score"]
    assert set(trials[0]["metrics"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}


@pytest.mark.e2e
def test_rerun_is_cached_and_module_edit_reruns_trainer(taxi_run):
    _, work = taxi_run
    pipeline = _pipeline(work, work / "probe_module.py", work / "fn_args.json")
    again = LocalDagRunner(progress=False).run(pipeline)
    assert {r.state for r in again.results.values()} == {"CACHED"}
    (work / "probe_module.py").write_text(PROBE_MODULE + "\n# edited\n")
    edited = LocalDagRunner(progress=False).run(pipeline)
    states = {node: r.state for node, r in edited.results.items()}
    assert states.pop("ProbeTrainer") == "COMPLETE"
    assert set(states.values()) == {"CACHED"}


@pytest.mark.e2e
def test_module_without_run_fn_names_the_file(taxi_run, tmp_path):
    _, work = taxi_run
    broken = tmp_path / "no_run_fn.py"
    broken.write_text("def something_else(fn_args):\n    pass\n")
    pipeline = _pipeline(work, broken, tmp_path / "unused.json")
    with pytest.raises(RunError, match=r"no_run_fn\.py defines no function 'run_fn'"):
        LocalDagRunner(progress=False).run(pipeline)


def test_trainer_needs_exactly_one_of_module_file_and_run_fn():
    data = taxi_examples()
    with pytest.raises(DefinitionError, match="exactly one of module_file"):
        Trainer(examples=data.outputs["examples"])
    with pytest.raises(DefinitionError, match="exactly one of module_file"):
        Transform(
            examples=data.outputs["examples"], schema=data.outputs["schema"],
            module_file=str(TAXI_MODULE), preprocessing_fn="a.b.preprocessing_fn",
        )  # fmt: skip


def test_module_file_is_loaded_fresh_after_an_edit(tmp_path):
    from mlpipe.components.module_loader import load_function

    module = tmp_path / "user_module.py"
    module.write_text("def run_fn(fn_args):\n    return 1\n")
    assert load_function(str(module), "run_fn")(None) == 1
    module.write_text("def run_fn(fn_args):\n    return 2\n")
    assert load_function(str(module), "run_fn")(None) == 2
    with pytest.raises(DefinitionError, match=r"user_module\.py defines no function 'tuner_fn'"):
        load_function(str(module), "tuner_fn")
