"""TFLiteConverter: the trained Keras model as a ``.tflite`` file, checked against the SavedModel.

TFX rewrites a model for TFLite inside its Trainer (``TFLiteRewriter``); here it is a step after
the Trainer (or the Evaluator's selected model), so the SavedModel is trained once and both are
kept: ``Format-Serving`` for TF Serving, ``Format-TFLite/model.tflite`` for devices.

What is converted is the Keras model over *transformed* features — not the ``serving_default``
signature over serialized tf.Examples. That signature parses examples (``ParseExampleV2``) and
runs the Transform graph, whose vocabularies are hash tables initialized from asset files: the
TFLite converter turns them into builtin ``HASHTABLE`` ops but drops their file initializers, so
the converted model fails with "hashtable need to be initialized before using" (TF 2.16). A device
applies the preprocessing (the Transform output's ``transform_features`` or its own code) and feeds
the model the transformed features, as TFX's TFLite examples do. The one-hot layers
(``CategoryEncoding`` → ``DenseBincount``) are not TFLite builtins, so the converter also allows
``SELECT_TF_OPS``: the runtime needs the Flex delegate (the ``tensorflow`` pip package has it).

TFMA's ``tf_lite`` model type cannot check this model either: its extractor feeds each TFLite
input from the *raw* parsed features of the same name (``tflite_predict_extractor.py``,
``element[FEATURES_KEY][input_name]``), not the transformed ones (tried on the taxi model: "Cannot
set tensor: Got value of type STRING but expected type INT64 for input 3, name:
serving_default_payment_type:0"). So this step evaluates both
models itself on the same rows of ``example_splits``: the transformed features and labels come
from the SavedModel's ``preprocessing_function_name`` signature (what TFMA's
``preprocessing_function_names`` use), the SavedModel's scores from its ``serving_default`` on the
raw examples, the TFLite scores from ``tf.lite.Interpreter``. The log and the output's custom
properties give both models' size, AUC, accuracy and log loss, and the largest difference between
their predictions; the ``blessing`` output says whether that difference is within ``tolerance``
(and the input ``model_blessing``, when wired, blessed the model), so a Pusher downstream pushes
only a ``.tflite`` that predicts what the blessed SavedModel predicts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlpipe.components.example_splits import check_splits
from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.errors import ComponentError, DataError, DefinitionError
from mlpipe.serving.layout import TFLITE_FILE, TFLITE_MODEL_DIR
from mlpipe.types.artifact import Artifact
from mlpipe.types.standard import Examples, Model, ModelBlessing

SERVING_MODEL_DIR = "Format-Serving"
# Largest |TFLite score - SavedModel score| accepted by default. Float32 TFLite computes the same
# function with other kernels (measured on the taxi model: 1.2e-7); quantized weights move scores
# by a few hundredths (measured on the taxi model: dynamic range 0.031, float16 2.3e-4).
DEFAULT_TOLERANCE = {"none": 1e-5, "float16": 0.01, "dynamic_range": 0.05}
BATCH_ROWS = 1024


class TFLiteModel(Model):
    """A Model artifact holding ``Format-TFLite/model.tflite``.

    Its own MLMD type, so a ``latest_blessed_model`` Resolver (which looks for ``Model``) never
    hands a TFLite file to an Evaluator as its baseline or to a Trainer to warm-start from; it is
    still a Model for the Pusher.
    """

    TYPE_NAME = "TFLiteModel"


class TFLiteConverter(Component):
    """``TFLiteConverter(model=, examples=, model_blessing=evaluator.outputs["blessing"],
    quantization="none" | "dynamic_range" | "float16", tolerance=None, label_key="big_tipper",
    preprocessing_function_name="transform_features", example_splits=["eval"])``.

    Outputs ``tflite_model`` (a TFLiteModel) and ``blessing``; feed both to a Pusher whose
    ``push_destination`` base directory then gets ``<version>/model.tflite``.
    """

    SPEC = ComponentSpec(
        inputs={
            "model": Model,
            "examples": Examples,
            "model_blessing": InputSpec(ModelBlessing, optional=True),
        },
        outputs={"tflite_model": TFLiteModel, "blessing": ModelBlessing},
        parameters={
            "quantization": ParameterSpec(str, default="none"),
            "tolerance": ParameterSpec(float, default=None, optional=True),
            "label_key": ParameterSpec(str),
            "preprocessing_function_name": ParameterSpec(str, default="transform_features"),
            "example_splits": ParameterSpec(list, default=["eval"]),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        quantization = self.parameters["quantization"]
        if quantization not in DEFAULT_TOLERANCE:
            raise DefinitionError(
                f"{self.id}: quantization must be one of {sorted(DEFAULT_TOLERANCE)}, got {quantization!r}"
            )
        tolerance = self.parameters["tolerance"]
        if tolerance is not None and not tolerance >= 0:
            raise DefinitionError(f"{self.id}: tolerance must be >= 0, got {tolerance!r}")

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        import tensorflow as tf

        from mlpipe.components.keras2 import skip_autograph_for_graph_safe_libraries

        skip_autograph_for_graph_safe_libraries()
        model, examples = ctx.input("model"), ctx.input("examples")
        assert model is not None and examples is not None  # required inputs
        evaluated = ctx.input("model_blessing")
        quantization = ctx.parameters["quantization"]
        tolerance = ctx.parameters["tolerance"]
        tolerance = DEFAULT_TOLERANCE[quantization] if tolerance is None else tolerance
        serving_dir = os.path.join(model.uri, SERVING_MODEL_DIR)
        if not os.path.isfile(os.path.join(serving_dir, "keras_metadata.pb")):
            raise ComponentError(
                ctx.node_id, f"{serving_dir} is not a Keras SavedModel; the converter converts Keras models"
            )
        keras_model = tf.keras.models.load_model(serving_dir, compile=False)
        content = convert(keras_model, quantization)
        output = ctx.outputs["tflite_model"]
        os.makedirs(os.path.join(output.uri, TFLITE_MODEL_DIR), exist_ok=True)
        with open(os.path.join(output.uri, TFLITE_MODEL_DIR, TFLITE_FILE), "wb") as f:
            f.write(content)

        comparison = compare(
            ctx.node_id,
            serving_dir,
            content,
            [
                examples.split_uri(s)
                for s in check_splits(ctx.node_id, examples, list(ctx.parameters["example_splits"]))
            ],
            label_key=ctx.parameters["label_key"],
            preprocessing_function_name=ctx.parameters["preprocessing_function_name"],
        )
        comparison.saved_model_bytes = _tree_size(serving_dir)
        comparison.tflite_bytes = len(content)
        within = comparison.max_abs_difference <= tolerance
        upstream_ok = not isinstance(evaluated, ModelBlessing) or evaluated.blessed
        blessed = within and upstream_ok
        table = comparison.table()
        reason = (
            ""
            if blessed
            else f"predictions differ by up to {comparison.max_abs_difference:.3g} > tolerance {tolerance:g}"
            if not within
            else f"the SavedModel is not blessed ({evaluated.uri if evaluated else ''})"
        )
        ctx.log.info(
            "TFLite (%s quantization) of %s on %d rows: max |difference| %.3g (tolerance %g): %s\n%s",
            quantization, model.uri, comparison.rows, comparison.max_abs_difference, tolerance,
            "BLESSED" if blessed else f"NOT BLESSED: {reason}", table,
        )  # fmt: skip
        with open(os.path.join(output.uri, "comparison.txt"), "w", encoding="utf-8") as f:
            f.write(table + "\n")
        for artifact in (output, ctx.outputs["blessing"]):
            comparison.record(artifact)
            artifact.set_custom_property("quantization", quantization)
            artifact.set_custom_property("tolerance", tolerance)
        output.set_custom_property("source_model_uri", model.uri)
        if model.id is not None:
            output.set_custom_property("source_model_id", model.id)
        _write_blessing(ctx.outputs["blessing"], blessed, output, reason)


def convert(keras_model: Any, quantization: str) -> bytes:
    """The Keras model as a TFLite flatbuffer (builtins plus select TF ops, see the module doc)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    if quantization in ("dynamic_range", "float16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return bytes(converter.convert())


@dataclass
class Comparison:
    """Both models' scores on the same rows, summarized."""

    rows: int
    max_abs_difference: float
    saved_model: dict[str, float]
    tflite: dict[str, float]
    saved_model_bytes: int = 0
    tflite_bytes: int = 0

    def table(self) -> str:
        rows = [("model", "size (bytes)", *self.saved_model)]
        for name, size, metrics in (
            ("SavedModel", self.saved_model_bytes, self.saved_model),
            ("TFLite", self.tflite_bytes, self.tflite),
        ):
            rows.append((name, str(size), *(f"{value:.4f}" for value in metrics.values())))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        )

    def record(self, artifact: Artifact) -> None:
        artifact.set_custom_property("rows_compared", self.rows)
        artifact.set_custom_property("max_abs_difference", self.max_abs_difference)
        artifact.set_custom_property("saved_model_size_bytes", self.saved_model_bytes)
        artifact.set_custom_property("tflite_size_bytes", self.tflite_bytes)
        for prefix, metrics in (("saved_model", self.saved_model), ("tflite", self.tflite)):
            for name, value in metrics.items():
                artifact.set_custom_property(f"{prefix}_{name}", value)


def compare(
    node_id: str,
    serving_dir: str,
    tflite_content: bytes,
    split_dirs: list[str],
    *,
    label_key: str,
    preprocessing_function_name: str,
) -> Comparison:
    """Scores of the SavedModel (``serving_default`` on raw examples) and of the TFLite model (on
    the transformed features of the same examples), with AUC, accuracy and log loss of each."""
    import numpy as np
    import tensorflow as tf

    served = tf.saved_model.load(serving_dir)
    for name in ("serving_default", preprocessing_function_name):
        if name not in served.signatures:
            raise ComponentError(
                node_id, f"{serving_dir} has no signature '{name}'; it has {sorted(served.signatures)}"
            )
    preprocess = served.signatures[preprocessing_function_name]
    serve = served.signatures["serving_default"]
    interpreter = tf.lite.Interpreter(model_content=tflite_content)
    runner = interpreter.get_signature_runner()
    dtypes = {
        name: np.dtype(detail["dtype"]) for name, detail in runner.get_input_details().items()
    }  # fmt: skip
    labels, saved_scores, tflite_scores = [], [], []
    for batch in _batches(split_dirs):
        features = preprocess(examples=tf.constant(batch))
        if label_key not in features:
            raise DataError(
                f"{node_id}: '{preprocessing_function_name}' of {serving_dir} returns no '{label_key}'; "
                f"it returns {sorted(features)}"
            )
        missing = sorted(set(dtypes) - set(features))
        if missing:
            raise DataError(f"{node_id}: the model's inputs {missing} are not among the transformed features")
        inputs = {name: features[name].numpy().reshape(-1, 1).astype(dtype) for name, dtype in dtypes.items()}
        outputs = serve(examples=tf.constant(batch))
        saved_scores.append(next(iter(outputs.values())).numpy().reshape(-1))
        tflite_scores.append(next(iter(runner(**inputs).values())).reshape(-1))
        labels.append(features[label_key].numpy().reshape(-1))
    if not labels:
        raise DataError(f"{node_id}: no examples in {split_dirs} to compare the models on")
    y = np.concatenate(labels).astype(np.float64)
    saved, lite = np.concatenate(saved_scores), np.concatenate(tflite_scores)
    return Comparison(
        rows=len(y),
        max_abs_difference=float(np.max(np.abs(saved.astype(np.float64) - lite.astype(np.float64)))),
        saved_model=_metrics(y, saved),
        tflite=_metrics(y, lite),
    )


def _metrics(labels: Any, scores: Any) -> dict[str, float]:
    """AUC (TFMA's 10,000-threshold estimate, via Keras), accuracy at 0.5, and log loss."""
    import numpy as np
    import tensorflow as tf

    auc = tf.keras.metrics.AUC(num_thresholds=10000)
    auc.update_state(labels, scores)
    p = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    return {
        "auc": float(auc.result().numpy()),
        "accuracy": float(np.mean((p > 0.5) == (labels > 0.5))),
        "log_loss": float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))),
    }


def _batches(split_dirs: list[str]) -> Iterator[list[bytes]]:
    """Each split's serialized examples, streamed ``BATCH_ROWS`` at a time (batches do not cross
    splits), so memory does not grow with the split."""
    from mlpipe.io.example_stream import iter_serialized_examples

    for split_dir in split_dirs:
        yield from iter_serialized_examples(split_dir, BATCH_ROWS)


def _tree_size(directory: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(directory) for name in names
    )


def _write_blessing(blessing: Any, blessed: bool, model: Any, reason: str) -> None:
    os.makedirs(blessing.uri, exist_ok=True)
    open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    blessing.set_custom_property("blessed", 1 if blessed else 0)
    if model.id is not None:
        blessing.set_custom_property("current_model_id", model.id)
    if reason:
        blessing.set_custom_property("reason", reason)
