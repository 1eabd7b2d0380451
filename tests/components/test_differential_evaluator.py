"""The Evaluator against TFMA's own run on the same models and data.

mlpipe's Evaluator runs TFMA's ``ExtractEvaluateAndWriteResults`` itself; what it adds is its own:
the eval config it builds (one candidate named "", ``serving_default`` by default, the baseline
spec TFMA derives, rubber stamp without a baseline), the model type it sets so TFMA need not load
the model to find out, models shared between a run's combiners (``_reuse_models``), and the
blessing it writes from TFMA's validation result. The oracle is ``tfma.run_model_analysis`` as a
TFMA user calls it, with the candidate and baseline named in the config (on Beam's in-process
FnApiRunner: Beam >= 2.68's DirectRunner would try to download Prism). Compared: every metric,
overall and per slice, of the candidate and of its diff against the baseline (float tolerance),
each threshold's pass or fail, and the blessing against ``validation_ok``.
"""

from __future__ import annotations

import pytest

from mlpipe.components.evaluator import Evaluator
from mlpipe.types import Examples, Model, ModelBlessing, ModelEvaluation, Schema
from tests.components.test_evaluation_and_push import context, save_model, write_examples

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROWS = 300
METRICS = [
    {"class_name": "ExampleCount"},
    {"class_name": "BinaryAccuracy", "threshold": {"value_threshold": {"lower_bound": 0.6}}},
    {"class_name": "AUC", "threshold": {"value_threshold": {"lower_bound": 0.7}}},
    {"class_name": "Precision"},
    {"class_name": "Recall"},
    {"class_name": "MeanLabel"},
    {"class_name": "MeanPrediction"},
    {"class_name": "Calibration"},
]
CHANGE = {"change_threshold": {"direction": "HIGHER_IS_BETTER", "absolute": -1e-10}}
SLICES = [{}, {"feature_keys": ["group"]}]


def _config(with_change: bool, baseline_spec: bool) -> dict:
    metrics = [dict(m) for m in METRICS]
    if with_change:
        metrics[1] = {
            "class_name": "BinaryAccuracy",
            "threshold": {"value_threshold": {"lower_bound": 0.6}, **CHANGE},
        }
    specs = [{"name": "candidate", "label_key": "label", "signature_name": "serving_default"}]
    if baseline_spec:
        specs.append({**specs[0], "name": "baseline", "is_baseline": True})
    return {"model_specs": specs, "slicing_specs": SLICES, "metrics_specs": [{"metrics": metrics}]}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Examples (eval split) and their schema, a trained model and a constant one (0.5)."""
    root = tmp_path_factory.mktemp("differential_evaluator")
    write_examples(str(root / "examples"), "eval", ROWS, seed=3)
    (root / "schema").mkdir()
    (root / "schema" / "schema.pbtxt").write_text(_schema_text())
    save_model(str(root / "good"), train_steps=20)
    save_model(str(root / "constant"), train_steps=0)
    return root


def _schema_text() -> str:
    features = [("x1", "FLOAT"), ("x2", "FLOAT"), ("group", "BYTES"), ("label", "INT")]
    return "".join(
        f'feature {{ name: "{name}" type: {kind} presence {{ min_fraction: 1.0 }} shape {{ dim {{ size: 1 }} }} }}\n'
        for name, kind in features
    )


def run_mlpipe(tmp_path, root, model: str, baseline: str | None, config: dict):
    """The Evaluator's executor, as a pipeline runs it; its evaluation dir and blessing."""
    examples = Examples(uri=str(root / "examples"))
    examples.split_names = ["eval"]
    inputs = {
        "examples": examples,
        "model": Model(uri=str(root / model)),
        "baseline_model": Model(uri=str(root / baseline)) if baseline else None,
        "schema": Schema(uri=str(root / "schema")),
    }
    outputs = {"evaluation": ModelEvaluation(), "blessing": ModelBlessing()}
    ctx = context(tmp_path, inputs, outputs, {"eval_config": config, "example_splits": ["eval"]})
    Evaluator.execute(ctx)
    return outputs["evaluation"].uri, outputs["blessing"].get_custom_property("blessed")


def run_tfma(tmp_path, root, model: str, baseline: str | None, config: dict):
    """``tfma.run_model_analysis`` as its documentation shows it, on the same files."""
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions
    from google.protobuf import json_format, text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    eval_config = json_format.ParseDict(config, tfma.EvalConfig())
    models = [
        tfma.default_eval_shared_model(
            str(root / name / "Format-Serving"), eval_config=eval_config, model_name=role
        )
        for role, name in (("candidate", model), ("baseline", baseline))
        if name
    ]
    output = str(tmp_path / "tfma")
    tfma.run_model_analysis(
        eval_shared_model=models if len(models) > 1 else models[0],
        eval_config=eval_config,
        data_location=str(root / "examples" / "Split-eval" / "*.gz"),
        output_path=output,
        pipeline_options=PipelineOptions(["--runner=FnApiRunner"]),
        schema=text_format.Parse(_schema_text(), schema_pb2.Schema()),
    )
    return output


def metrics(output_path: str) -> dict[tuple, float]:
    """(slice, role, metric, is diff) -> value; the role (candidate/baseline) instead of the model
    name, which mlpipe leaves empty for the candidate."""
    import tensorflow_model_analysis as tfma

    found = {}
    for per_slice in tfma.load_metrics(output_path):
        slice_name = tfma.slicer.stringify_slice_key(tfma.slicer.deserialize_slice_key(per_slice.slice_key))
        for item in per_slice.metric_keys_and_values:
            key = tfma.metrics.MetricKey.from_proto(item.key)
            if item.value.HasField("double_value"):
                role = "baseline" if key.model_name == tfma.BASELINE_KEY else "candidate"
                found[(slice_name, role, key.name, key.is_diff)] = item.value.double_value.value
    return found


def validation(output_path: str) -> tuple[bool, set[tuple]]:
    """validation_ok and the failed (slice, metric, is diff) thresholds."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(output_path)
    failed = set()
    for per_slice in result.metric_validations_per_slice:
        slice_name = tfma.slicer.stringify_slice_key(tfma.slicer.deserialize_slice_key(per_slice.slice_key))
        for failure in per_slice.failures:
            key = tfma.metrics.MetricKey.from_proto(failure.metric_key)
            failed.add((slice_name, key.name, key.is_diff))
    return result.validation_ok, failed


@pytest.mark.parametrize(
    "model, baseline, expect_blessed",
    [("good", None, True), ("good", "constant", True), ("constant", "good", False)],
    ids=["value-thresholds", "better-than-baseline", "worse-than-baseline"],
)
def test_evaluator_metrics_thresholds_and_blessing_equal_tfmas_run(
    root, tmp_path, model, baseline, expect_blessed
):
    has_baseline = baseline is not None
    ours, blessed = run_mlpipe(tmp_path / "mlpipe", root, model, baseline, _config(has_baseline, False))
    theirs = run_tfma(tmp_path, root, model, baseline, _config(has_baseline, has_baseline))

    got, want = metrics(ours), metrics(theirs)
    assert set(got) == set(want)
    assert {key[0] for key in want} == {"Overall", "group:a", "group:b"}
    assert want[("Overall", "candidate", "example_count", False)] == ROWS
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), key
    ok, failed = validation(theirs)
    assert validation(ours) == (ok, failed)
    assert blessed == int(ok) == int(expect_blessed)
    if model == "constant":  # value and change thresholds fail, on every slice
        for slice_name in ("Overall", "group:a", "group:b"):
            assert {(slice_name, "binary_accuracy", False), (slice_name, "binary_accuracy", True)} <= failed
