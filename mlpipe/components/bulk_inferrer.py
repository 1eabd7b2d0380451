"""BulkInferrer: the model's predictions for every example of some splits, as TF Serving logs them.

The output is what TFX's BulkInferrer writes: ``prediction_logs-*.gz``, a gzipped TFRecord of
``tensorflow_serving.apis.prediction_log_pb2.PredictionLog`` (each holds the predict request with
the serialized example and the response with the model's outputs). Inference runs in a Beam
pipeline (tfx_bsl's RunInference, the model loaded once per worker), so large splits scale out
with the pipeline's ``beam_pipeline_args``.
"""

from __future__ import annotations

import os
from typing import Any

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.errors import DataError
from mlpipe.types.standard import Examples, InferenceResult, Model, ModelBlessing

SERVING_MODEL_DIR = "Format-Serving"
SIGNATURE = "serving_default"  # the TFX serving signature: serialized tf.Examples in
OUTPUT_PREFIX = "prediction_logs"


class BulkInferrer(Component):
    """Predict on ``data_spec['example_splits']`` (default: every split) with ``model``.

    With ``model_blessing`` wired, an unblessed model infers nothing: the result stays empty and the
    log says why (TFX behaves the same), so a batch job never scores with a rejected model.
    """

    SPEC = ComponentSpec(
        inputs={
            "examples": Examples,
            "model": Model,
            "model_blessing": InputSpec(ModelBlessing, optional=True),
        },
        outputs={"inference_result": InferenceResult},
        parameters={"data_spec": ParameterSpec(dict, default={})},
    )

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        model = ctx.input("model")
        examples = ctx.input("examples")
        blessing = ctx.input("model_blessing")
        assert model is not None and examples is not None  # required inputs
        assert blessing is None or isinstance(blessing, ModelBlessing)
        result = ctx.outputs["inference_result"]
        os.makedirs(result.uri, exist_ok=True)
        if blessing is not None and not blessing.blessed:
            ctx.log.info("not inferring: model %s is not blessed (%s)", model.uri, blessing.uri)
            return
        splits = ctx.parameters["data_spec"].get("example_splits") or examples.split_names
        patterns = [_split_pattern(examples, split) for split in splits]
        ctx.log.info("predicting on splits %s of %s with %s", splits, examples.uri, model.uri)
        run_inference(
            os.path.join(model.uri, SERVING_MODEL_DIR), patterns, result.uri, ctx.beam_pipeline_args
        )


def _split_pattern(examples: Any, split: str) -> str:
    if not os.path.isdir(examples.split_uri(split)):
        raise DataError(
            f"BulkInferrer: split '{split}' not found at {examples.split_uri(split)}; "
            f"the Examples have splits {examples.split_names}"
        )
    return os.path.join(examples.split_uri(split), "*.gz")


def run_inference(
    saved_model_dir: str, patterns: list[str], output_dir: str, beam_pipeline_args: list[str]
) -> None:
    """Read serialized examples, predict with ``serving_default``, write PredictionLogs (gzipped)."""
    import apache_beam as beam
    from tensorflow_serving.apis import prediction_log_pb2
    from tfx_bsl.public.beam import RunInference
    from tfx_bsl.public.proto import model_spec_pb2

    from mlpipe.io.beam import beam_pipeline_options

    spec = model_spec_pb2.InferenceSpecType(
        saved_model_spec=model_spec_pb2.SavedModelSpec(model_path=saved_model_dir, signature_name=[SIGNATURE])
    )
    with beam.Pipeline(options=beam_pipeline_options(beam_pipeline_args)) as pipeline:
        records = [
            pipeline | f"Read[{i}]" >> beam.io.ReadFromTFRecord(pattern, compression_type="gzip")
            for i, pattern in enumerate(patterns)
        ]
        _ = (
            records
            | "Flatten" >> beam.Flatten()
            | "Predict" >> RunInference(spec)
            | "Write"
            >> beam.io.WriteToTFRecord(
                os.path.join(output_dir, OUTPUT_PREFIX),
                file_name_suffix=".gz",
                coder=beam.coders.ProtoCoder(prediction_log_pb2.PredictionLog),
            )
        )
