"""TFLite: the pushed ``.tflite`` predicts what the SavedModel predicts, within a stated tolerance.

The oracle runs the pushed file itself with ``tf.lite.Interpreter`` on the eval split's transformed
features (from the SavedModel's ``transform_features`` signature) and compares its scores with the
SavedModel's ``serving_default`` scores on the same raw examples; tolerances: 1e-5 for float32 (the
same function on other kernels), 0.05 with dynamic-range quantization (int8 weights).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "pipelines"))

from taxi import create_pipeline  # noqa: E402

from mlpipe import Pipeline  # noqa: E402
from mlpipe.components.pusher import Pusher  # noqa: E402
from mlpipe.components.tflite import TFLiteConverter  # noqa: E402
from mlpipe.orchestration.local import LocalDagRunner  # noqa: E402

TOLERANCE = {"none": 1e-5, "dynamic_range": 0.05}


def _scores(tflite_file: Path, serving_dir: str, examples_uri: str) -> tuple[np.ndarray, np.ndarray]:
    """(SavedModel scores, TFLite scores) on every eval example."""
    import tensorflow as tf

    from mlpipe.io.examples import read_examples

    raw = tf.constant(read_examples(os.path.join(examples_uri, "Split-eval")))
    served = tf.saved_model.load(serving_dir)
    features = served.signatures["transform_features"](examples=raw)
    expected = served.signatures["serving_default"](examples=raw)["outputs"].numpy().reshape(-1)
    runner = tf.lite.Interpreter(model_path=str(tflite_file)).get_signature_runner()
    inputs = {
        name: features[name].numpy().reshape(-1, 1).astype(detail["dtype"])
        for name, detail in runner.get_input_details().items()
    }
    (got,) = runner(**inputs).values()
    return expected, got.reshape(-1)


@pytest.mark.e2e
def test_pushed_tflite_files_predict_what_the_saved_model_predicts(small_data, tmp_path):
    tflite_dir = tmp_path / "tflite"
    demo = create_pipeline(
        pipeline_root=str(tmp_path / "root"),
        serving_model_dir=str(tmp_path / "serving"),
        data_root=str(small_data),
        train_steps=100,
        eval_steps=10,
        tflite_dir=str(tflite_dir / "float32"),
    )
    nodes = {node.id: node for node in demo.components}
    quantized = TFLiteConverter(
        model=nodes["Trainer"].outputs["model"],
        examples=nodes["CsvExampleGen"].outputs["examples"],
        model_blessing=nodes["Evaluator"].outputs["blessing"],
        quantization="dynamic_range",
        label_key="big_tipper",
    ).with_id("quantized_converter")
    quantized_pusher = Pusher(
        model=quantized.outputs["tflite_model"],
        model_blessing=quantized.outputs["blessing"],
        push_destination={"filesystem": {"base_directory": str(tflite_dir / "int8")}},
    ).with_id("quantized_pusher")
    pipeline = Pipeline(
        demo.name, demo.root, [*demo.components, quantized, quantized_pusher], metadata=demo.metadata
    )
    result = LocalDagRunner(progress=False).run(pipeline)

    trainer_model = result.results["Trainer"].outputs["model"][0]
    serving_dir = os.path.join(trainer_model.uri, "Format-Serving")
    examples = result.results["CsvExampleGen"].outputs["examples"][0].uri
    evaluator_auc = _tfma_overall_auc(result.results["Evaluator"].outputs["evaluation"][0].uri)
    sizes = {}
    for quantization, converter, pusher in (
        ("none", "TFLiteConverter", "tflite_pusher"),
        ("dynamic_range", "quantized_converter", "quantized_pusher"),
    ):
        pushed = result.results[pusher].outputs["pushed_model"][0]
        assert pushed.get_custom_property("pushed") == 1
        version_dir = Path(pushed.get_custom_property("pushed_destination"))
        assert version_dir.name.isdigit() and os.listdir(version_dir) == ["model.tflite"]
        expected, got = _scores(version_dir / "model.tflite", serving_dir, examples)
        difference = float(np.max(np.abs(expected - got)))
        assert len(got) > 900 and difference <= TOLERANCE[quantization], (quantization, difference)

        lite = result.results[converter].outputs["tflite_model"][0]
        assert lite.type_name == "TFLiteModel"  # never a latest_blessed_model baseline
        assert lite.get_custom_property("max_abs_difference") == pytest.approx(difference, abs=1e-6)
        assert lite.get_custom_property("saved_model_size_bytes") > 0
        sizes[quantization] = (version_dir / "model.tflite").stat().st_size
        assert lite.get_custom_property("tflite_size_bytes") == sizes[quantization]
        # the converter's own AUC of the SavedModel agrees with TFMA's on the same split
        assert lite.get_custom_property("saved_model_auc") == pytest.approx(evaluator_auc, abs=2e-3)
        log = Path(result.results[converter].log_path).read_text()
        assert "SavedModel" in log and "TFLite" in log and "size (bytes)" in log
    assert sizes["dynamic_range"] < sizes["none"]  # int8 weights


def _tfma_overall_auc(evaluation_uri: str) -> float:
    import tensorflow_model_analysis as tfma

    for metrics in tfma.load_metrics(evaluation_uri):
        if not tfma.slicer.deserialize_slice_key(metrics.slice_key):
            for item in metrics.metric_keys_and_values:
                if item.key.name == "auc" and not item.key.is_diff:
                    return item.value.double_value.value
    raise AssertionError("no overall AUC in the evaluation")
