"""Evaluator, Pusher, InfraValidator and BulkInferrer on tiny models and synthetic examples.

The models are TFX-shaped: a SavedModel under ``<uri>/Format-Serving`` whose ``serving_default``
takes serialized tf.Examples (``examples``) and returns ``outputs`` [n, 1] probabilities. They are
logistic regressions on two features (a ``tf.Module``: saving one takes a second, a Keras model
tens of seconds), "trained" with a few numpy gradient steps; zero steps gives the constant 0.5.
Pusher tests need no TensorFlow: a directory with a ``saved_model.pb`` is enough to publish.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlpipe import InputArtifact, OutputArtifact, Parameter, Pipeline, component
from mlpipe.components.bulk_inferrer import BulkInferrer
from mlpipe.components.evaluator import Evaluator, eval_config_to_dict
from mlpipe.components.infra_validator import InfraValidator
from mlpipe.components.pusher import Pusher
from mlpipe.dsl import Resolver
from mlpipe.dsl.context import ExecutionContext
from mlpipe.errors import DefinitionError
from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.types import Examples, InferenceResult, InfraBlessing, Model, ModelBlessing, PushedModel, Schema
from tests.support.oracles import majority_class_rate

# TFMA converts arrays to scalars once per example and metric; NumPy warns each time.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EVAL_ROWS = 200
# The labels are balanced (about half positive), so a constant model scores accuracy ≈ 0.5 and AUC
# 0.5: both bounds sit well above that, and far below the good model's (> 0.9).
EVAL_CONFIG = {
    "model_specs": [{"label_key": "label"}],
    "slicing_specs": [{}, {"feature_keys": ["group"]}],
    "metrics_specs": [
        {
            "metrics": [
                {"class_name": "ExampleCount"},
                {
                    "class_name": "BinaryAccuracy",
                    "threshold": {
                        "value_threshold": {"lower_bound": 0.75},
                        "change_threshold": {"direction": "HIGHER_IS_BETTER", "absolute": -1e-10},
                    },
                },
                {"class_name": "AUC", "threshold": {"value_threshold": {"lower_bound": 0.75}}},
            ]
        }
    ],
}


# --- tiny data and models (TensorFlow imported on first use) ---------------------------------------


def labels_of(rows: int, seed: int):
    """The labels ``write_examples`` draws, recomputed with numpy alone (the tests' oracle)."""
    import numpy as np

    x = np.random.default_rng(seed).normal(size=(rows, 2))
    return (x[:, 0] + x[:, 1] > 0).astype(int)


def write_examples(examples_uri: str, split: str, rows: int, seed: int) -> None:
    """``rows`` tf.Examples: floats x1, x2, a ``group`` slice, and label = x1 + x2 > 0."""
    import numpy as np
    import tensorflow as tf

    from mlpipe.io.examples import write_examples as write_split

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    records = []
    for i, (x1, x2) in enumerate(x):
        feature = {
            "x1": tf.train.Feature(float_list=tf.train.FloatList(value=[x1])),
            "x2": tf.train.Feature(float_list=tf.train.FloatList(value=[x2])),
            "group": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"ab"[i % 2 : i % 2 + 1]])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(x1 + x2 > 0)])),
        }
        records.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    write_split(os.path.join(examples_uri, f"Split-{split}"), records)


def save_model(model_uri: str, train_steps: int, seed: int = 0) -> None:
    """A logistic regression on (x1, x2) after ``train_steps`` gradient steps, as a TFX serving model."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(500, 2))
    y = (x.sum(axis=1) > 0).astype(float)
    w, b = np.zeros(2), 0.0
    for _ in range(train_steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w, b = w - x.T @ (p - y) / len(y), b - float(np.mean(p - y))

    class Logistic(tf.Module):
        def __init__(self) -> None:
            self.w = tf.Variable(w.reshape(2, 1), dtype=tf.float32)
            self.b = tf.Variable(b, dtype=tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            spec = {name: tf.io.FixedLenFeature([1], tf.float32) for name in ("x1", "x2")}
            features = tf.io.parse_example(examples, spec)
            logits = tf.concat([features["x1"], features["x2"]], axis=1) @ self.w + self.b
            return {"outputs": tf.sigmoid(logits)}

    module = Logistic()
    tf.saved_model.save(
        module, os.path.join(model_uri, "Format-Serving"), signatures={"serving_default": module.serve}
    )


@component
def synthetic_examples(examples: OutputArtifact[Examples], rows: Parameter[int] = EVAL_ROWS):
    write_examples(examples.uri, "eval", rows, seed=1)
    examples.split_names = ["eval"]


@component
def tiny_trainer(
    examples: InputArtifact[Examples], model: OutputArtifact[Model], train_steps: Parameter[int] = 20
):
    save_model(model.uri, train_steps)


@component
def tiny_schema(schema: OutputArtifact[Schema]):
    """The examples' schema, so the Evaluator reads them through it (as a pipeline with SchemaGen does)."""
    features = [("x1", "FLOAT"), ("x2", "FLOAT"), ("group", "BYTES"), ("label", "INT")]
    text = "".join(
        f'feature {{ name: "{name}" type: {kind} presence {{ min_fraction: 1.0 }} shape {{ dim {{ size: 1 }} }} }}\n'
        for name, kind in features
    )
    Path(schema.uri, "schema.pbtxt").write_text(text)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """URIs of Examples (``eval`` split) and of a good, a constant and a corrupt model."""
    root = tmp_path_factory.mktemp("models")
    write_examples(str(root / "examples"), "eval", EVAL_ROWS, seed=1)
    save_model(str(root / "good"), train_steps=20)
    corrupt = root / "corrupt" / "Format-Serving"
    corrupt.mkdir(parents=True)
    (corrupt / "saved_model.pb").write_bytes(b"not a SavedModel")
    return {name: str(root / name) for name in ("examples", "good", "corrupt")}


def context(tmp_path: Path, inputs: dict, outputs: dict, parameters: dict) -> ExecutionContext:
    """A hand-built execution: inputs as given, each output an empty directory under ``tmp_path``."""
    for key, artifact in outputs.items():
        artifact.uri = str(tmp_path / key)
        os.makedirs(artifact.uri)
    (tmp_path / "tmp").mkdir()
    return ExecutionContext(
        node_id="node", pipeline_name="test", run_id="run", execution_id=1,
        inputs={key: [value] for key, value in inputs.items() if value is not None},
        outputs=outputs, parameters=parameters, tmp_dir=str(tmp_path / "tmp"),
    )  # fmt: skip


def fake_saved_model(path: Path, big_file_bytes: int = 0) -> Path:
    """A directory Pusher accepts as a SavedModel; optionally with a large file to make copies slow."""
    serving = path / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(b"graph")
    (serving / "variables" / "variables.index").write_bytes(b"index")
    if big_file_bytes:
        with open(serving / "variables" / "variables.data-00000-of-00001", "wb") as f:
            f.truncate(big_file_bytes)
    return path


def blessing(tmp_path: Path, blessed: bool, cls: type = ModelBlessing, model_id: int | None = None):
    artifact = cls(uri=str(tmp_path), custom_properties={"blessed": int(blessed)})
    if model_id is not None:
        artifact.set_custom_property("current_model_id", model_id)
    return artifact


def push(tmp_path: Path, model: Model, base: Path, **blessings) -> PushedModel:
    ctx = context(
        tmp_path,
        {"model": model, **blessings},
        {"pushed_model": PushedModel()},
        {"push_destination": {"filesystem": {"base_directory": str(base)}}},
    )
    Pusher.execute(ctx)
    return ctx.outputs["pushed_model"]


# --- Pusher (no TensorFlow) ------------------------------------------------------------------------


def test_pusher_publishes_blessed_model_as_new_numeric_version(tmp_path):
    model = Model(uri=str(fake_saved_model(tmp_path / "model")), id=5)
    base = tmp_path / "serving"
    started = int(time.time())
    first = push(tmp_path / "p1", model, base, model_blessing=blessing(tmp_path, True, model_id=5))
    second = push(tmp_path / "p2", model, base)  # no blessing wired: pushed, as in TFX

    assert first.get_custom_property("pushed") == 1
    version = int(first.get_custom_property("pushed_version"))
    assert version >= started
    assert (base / str(version) / "saved_model.pb").read_bytes() == b"graph"
    assert first.get_custom_property("pushed_destination") == str(base / str(version))
    assert int(second.get_custom_property("pushed_version")) > version  # even within the same second
    assert sorted(os.listdir(base)) == sorted([str(version), second.get_custom_property("pushed_version")])


@pytest.mark.parametrize(
    "model_blessed, blessed_model_id, infra_blessed",
    [(False, 5, None), (True, 5, False), (True, 6, None)],
    ids=["not-blessed", "not-infra-blessed", "blessing-of-another-model"],
)
def test_pusher_pushes_nothing_without_every_blessing(
    tmp_path, model_blessed, blessed_model_id, infra_blessed
):
    model = Model(uri=str(fake_saved_model(tmp_path / "model")), id=5)
    base = tmp_path / "serving"
    push(tmp_path / "p1", model, base)
    before = sorted(os.listdir(base))
    wired = {"model_blessing": blessing(tmp_path / "b1", model_blessed, model_id=blessed_model_id)}
    if infra_blessed is not None:
        wired["infra_blessing"] = blessing(tmp_path / "b2", infra_blessed, cls=InfraBlessing)

    pushed = push(tmp_path / "p2", model, base, **wired)

    assert pushed.get_custom_property("pushed") == 0
    assert sorted(os.listdir(base)) == before


def test_pusher_rejects_malformed_destination():
    with pytest.raises(DefinitionError, match="base_directory"):
        Pusher(model=tiny_trainer(examples=synthetic_examples().outputs["examples"]).outputs["model"],
               push_destination={"filesystem": {}})  # fmt: skip


KILLED_PUSH = textwrap.dedent(
    """
    import logging, sys
    from mlpipe.components.pusher import Pusher
    from mlpipe.dsl.context import ExecutionContext
    from mlpipe.types import Model, PushedModel

    model_uri, base, out = sys.argv[1:]
    Pusher.execute(ExecutionContext(
        node_id="Pusher", pipeline_name="p", run_id="r", execution_id=1, inputs={"model": [Model(uri=model_uri)]},
        outputs={"pushed_model": PushedModel(uri=out)},
        parameters={"push_destination": {"filesystem": {"base_directory": base}}}, tmp_dir=out,
    ))
    """
)


def test_pusher_killed_mid_copy_never_exposes_a_partial_version(tmp_path):
    model = fake_saved_model(tmp_path / "model", big_file_bytes=512 * 1024 * 1024)
    base = tmp_path / "serving"
    base.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_PUSH, str(model), str(base), str(tmp_path / "out")]
    )
    deadline = time.monotonic() + 60
    try:
        while not any(name.startswith(".tmp-") for name in os.listdir(base)):
            assert child.poll() is None, "the push finished before it could be killed"
            assert time.monotonic() < deadline, "the push never started copying"
            time.sleep(0.001)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()

    left = os.listdir(base)
    assert [name for name in left if name.isdigit()] == []
    assert len(left) == 1 and left[0].startswith(".tmp-")

    pushed = push(tmp_path / "later", Model(uri=str(fake_saved_model(tmp_path / "small"))), base)
    version = pushed.get_custom_property("pushed_version")
    assert os.listdir(base) == [version]  # the dead push's staging copy is gone
    assert (base / version / "saved_model.pb").is_file()


# --- Evaluator + Pusher in a pipeline, with the latest blessed model as baseline -----------------


def evaluation_pipeline(root: Path, serving: Path, train_steps: int, eval_config=EVAL_CONFIG) -> Pipeline:
    examples = synthetic_examples()
    schema = tiny_schema()
    trainer = tiny_trainer(examples=examples.outputs["examples"], train_steps=train_steps)
    baseline = Resolver(strategy="latest_blessed_model", model=Model, model_blessing=ModelBlessing)
    evaluator = Evaluator(
        examples=examples.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        schema=schema.outputs["schema"],
        eval_config=eval_config,
    )
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination={"filesystem": {"base_directory": str(serving)}},
    )
    return Pipeline(
        "evaluation", str(root / "pipeline"), [examples, schema, trainer, baseline, evaluator, pusher],
        metadata=sqlite(root / "metadata.sqlite"),
    )  # fmt: skip


def summary_rows(evaluation_uri: str) -> dict[tuple[str, str], list[str]]:
    """The Evaluator's ``summary.txt`` as (metric, slice) -> [value, trivial, margin, threshold..., result]."""
    lines = Path(evaluation_uri, "summary.txt").read_text().splitlines()
    return {tuple(line.split()[:2]): line.split()[2:] for line in lines[1:] if "(vs baseline)" not in line}


@pytest.mark.e2e
def test_evaluator_rejects_useless_model_blesses_good_one_then_rejects_worse_one_against_it(tmp_path):
    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format

    serving = tmp_path / "serving"
    runner = LocalDagRunner(progress=False)
    labels = labels_of(EVAL_ROWS, seed=1)
    majority = majority_class_rate(labels)

    # zero gradient steps: the model scores every example 0.5, i.e. learned nothing
    useless = runner.run(evaluation_pipeline(tmp_path, serving, train_steps=0))
    blessing0 = useless.results["Evaluator"].outputs["blessing"][0]
    evaluation0 = useless.results["Evaluator"].outputs["evaluation"][0]
    assert blessing0.get_custom_property("blessed") == 0
    assert os.listdir(blessing0.uri) == ["NOT_BLESSED"]
    assert evaluation0.get_custom_property("majority_class_rate") == pytest.approx(majority)
    rows = summary_rows(evaluation0.uri)
    assert rows[("auc", "Overall")] == ["0.5000", "0.5000", "+0.0000", ">=", "0.75", "FAIL"]
    accuracy, trivial, margin, *verdict = rows[("binary_accuracy", "Overall")]
    assert float(trivial) == pytest.approx(majority, abs=1e-4) and verdict == [">=", "0.75", "FAIL"]
    assert float(accuracy) <= majority + 1e-4 and float(margin) <= 0
    assert useless.results["Pusher"].outputs["pushed_model"][0].get_custom_property("pushed") == 0
    assert not serving.exists()

    first = runner.run(evaluation_pipeline(tmp_path, serving, train_steps=20))
    blessing1 = first.results["Evaluator"].outputs["blessing"][0]
    evaluation = first.results["Evaluator"].outputs["evaluation"][0]
    assert blessing1.get_custom_property("blessed") == 1
    assert os.path.exists(os.path.join(blessing1.uri, "BLESSED"))
    assert "baseline_model_id" not in blessing1.custom_properties  # first run: change thresholds skipped
    result = tfma.load_eval_result(evaluation.uri)
    overall = dict(result.slicing_metrics)[()][""][""]
    assert overall["example_count"]["doubleValue"] == EVAL_ROWS
    assert overall["binary_accuracy"]["doubleValue"] > majority + 0.3
    rows = summary_rows(evaluation.uri)
    accuracy, trivial, margin, *verdict = rows[("binary_accuracy", "Overall")]
    assert float(accuracy) == pytest.approx(overall["binary_accuracy"]["doubleValue"], abs=1e-4)
    assert float(trivial) == pytest.approx(majority, abs=1e-4)
    assert float(margin) == pytest.approx(float(accuracy) - majority, abs=2e-4)
    assert verdict == [">=", "0.75", "pass"] and rows[("auc", "Overall")][-1] == "pass"
    # per slice, the trivial accuracy is that slice's own majority-class rate (groups alternate a, b)
    for group, group_labels in (("a", labels[0::2]), ("b", labels[1::2])):
        slice_majority = majority_class_rate(group_labels)
        assert float(rows[("binary_accuracy", f"group:{group}")][1]) == pytest.approx(
            slice_majority, abs=1e-4
        )
    pushed1 = first.results["Pusher"].outputs["pushed_model"][0]
    assert pushed1.get_custom_property("pushed") == 1
    version = pushed1.get_custom_property("pushed_version")
    assert (serving / version / "saved_model.pb").is_file()

    as_proto = json_format.ParseDict(EVAL_CONFIG, tfma.EvalConfig())  # a proto works as well as its dict
    second = runner.run(evaluation_pipeline(tmp_path, serving, train_steps=0, eval_config=as_proto))
    blessing2 = second.results["Evaluator"].outputs["blessing"][0]
    first_model = first.results["tiny_trainer"].outputs["model"][0]
    assert blessing2.get_custom_property("blessed") == 0
    assert os.path.exists(os.path.join(blessing2.uri, "NOT_BLESSED"))
    assert blessing2.get_custom_property("baseline_model_id") == first_model.id
    summary2 = Path(second.results["Evaluator"].outputs["evaluation"][0].uri, "summary.txt").read_text()
    (diff,) = [
        line.split()
        for line in summary2.splitlines()
        if line.startswith("binary_accuracy (vs baseline)  Overall")
    ]
    assert float(diff[4]) < -0.3 and diff[-1] == "FAIL"  # worse than the baseline
    assert second.results["Pusher"].outputs["pushed_model"][0].get_custom_property("pushed") == 0
    assert os.listdir(serving) == [version]


def test_eval_config_must_be_a_proto_or_dict():
    assert eval_config_to_dict(EVAL_CONFIG) is EVAL_CONFIG
    with pytest.raises(DefinitionError, match="tfma.EvalConfig"):
        eval_config_to_dict("metrics: auc")


def test_evaluator_loads_each_model_once_per_thread_within_a_run():
    """TFMA's Keras metrics combiners reload the model in every setup(); the Evaluator's loader reuses it."""
    import threading

    import tensorflow_model_analysis as tfma

    from mlpipe.components import evaluator

    loads = []

    class FakeModel:  # Beam's Shared handle keeps a weak reference: object() has none
        pass

    def construct():
        loads.append(threading.get_ident())
        return FakeModel()

    shared = tfma.types.EvalSharedModel(model_path="m", model_loader=tfma.types.ModelLoader(construct))
    loader = evaluator._reuse_models(shared, "run-1").model_loader
    try:
        first = loader.load()
        assert loader.construct_fn() is first  # what a Keras combiner's setup() calls
        assert loader._construct_fn_with_load_time(lambda seconds: None)() is first
        other = []
        thread = threading.Thread(target=lambda: other.append(loader.construct_fn()))
        thread.start()
        thread.join()
        assert other[0] is not first and len(loads) == 2  # threads never share a model
    finally:
        evaluator._release_models("run-1")
    assert not evaluator._LOADED_MODELS
    assert loader.construct_fn() is not first and len(loads) == 3  # a released run loads afresh
    evaluator._release_models("run-1")


# --- InfraValidator --------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("model_name, blessed", [("good", True), ("corrupt", False)])
def test_infra_validator_serves_model_in_a_separate_process(tmp_path, models, model_name, blessed, caplog):
    ctx = context(
        tmp_path,
        {"model": Model(uri=models[model_name]), "examples": Examples(uri=models["examples"])},
        {"blessing": InfraBlessing()},
        {"request_spec": {"num_examples": 3, "split": "eval"}, "max_loading_seconds": 180.0},
    )
    with caplog.at_level("INFO", logger="mlpipe"):
        InfraValidator.execute(ctx)

    out = ctx.outputs["blessing"]
    assert out.get_custom_property("blessed") == int(blessed)
    assert os.listdir(out.uri) == ["INFRA_BLESSED" if blessed else "INFRA_NOT_BLESSED"]
    expected = "answered predict on 3 example" if blessed else "corrupt SavedModel|failed to load"
    assert any(re.search(expected, r.getMessage()) for r in caplog.records)


# --- BulkInferrer ----------------------------------------------------------------------------------


def read_examples_of(examples_uri: str) -> list[bytes]:
    from mlpipe.io.examples import read_examples

    return read_examples(os.path.join(examples_uri, "Split-eval"))


def read_prediction_logs(uri: str) -> list:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    files = tf.io.gfile.glob(os.path.join(uri, "prediction_logs-*.gz"))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [prediction_log_pb2.PredictionLog.FromString(r) for r in dataset.as_numpy_iterator()]


@pytest.mark.e2e
def test_bulk_inferrer_writes_one_prediction_log_per_example(tmp_path, models):
    examples = Examples(uri=models["examples"])
    examples.split_names = ["eval"]
    ctx = context(
        tmp_path,
        {
            "examples": examples,
            "model": Model(uri=models["good"]),
            "model_blessing": blessing(tmp_path, True),
        },
        {"inference_result": InferenceResult()},
        {"data_spec": {"example_splits": ["eval"]}},
    )
    BulkInferrer.execute(ctx)

    logs = read_prediction_logs(ctx.outputs["inference_result"].uri)
    assert len(logs) == EVAL_ROWS
    # each log pairs an example with the model's own score of it (the model called directly)
    import tensorflow as tf

    requests = [log.predict_log.request.inputs["examples"].string_val[0] for log in logs]
    logged = [log.predict_log.response.outputs["outputs"].float_val[0] for log in logs]
    model = tf.saved_model.load(os.path.join(models["good"], "Format-Serving"))
    direct = model.signatures["serving_default"](examples=tf.constant(requests))["outputs"].numpy()[:, 0]
    assert logged == pytest.approx(direct.tolist(), abs=1e-6)
    expected = sorted(read_examples_of(models["examples"]))
    assert sorted(requests) == expected  # every eval example scored once


def test_bulk_inferrer_infers_nothing_with_an_unblessed_model(tmp_path):
    ctx = context(
        tmp_path,
        {"examples": Examples(uri=str(tmp_path)), "model": Model(uri=str(tmp_path)),
         "model_blessing": blessing(tmp_path, False)},
        {"inference_result": InferenceResult()},
        {"data_spec": {}},
    )  # fmt: skip
    BulkInferrer.execute(ctx)
    assert os.listdir(ctx.outputs["inference_result"].uri) == []
