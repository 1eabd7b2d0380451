"""BulkInferrer: the model's predictions for every example of some splits, as TF Serving logs them.

The output is what TFX's BulkInferrer writes: ``prediction_logs-*.gz``, a gzipped TFRecord of
``tensorflow_serving.apis.prediction_log_pb2.PredictionLog`` (each holds the predict request with
the serialized example and the response with the model's outputs).

Where it runs:

- **In process** (the pipeline's ``beam_pipeline_args`` name no runner): each split is streamed
  in batches of :data:`BATCH_RECORDS` serialized examples (:mod:`mlpipe.io.example_stream`), the
  SavedModel's ``serving_default`` (loaded once, in a TF1 session as tfx_bsl loads it) runs on each
  batch while the previous batch's logs are encoded (:mod:`mlpipe.io.prediction_logs`, the same
  records as tfx_bsl's, without protobuf per row), and earlier logs are framed and gzipped
  (65,536 at a time, :func:`mlpipe.io.examples.write_examples`, compression in a third thread).
  Memory is that of a few batches and one such chunk (~40 MB for taxi rows) whatever the split's
  size, and the cost per row is flat (1M taxi rows: 0.88 GB peak for the whole process, 13.6 CPU
  s in the executor, where RunInference on the FnApiRunner takes ~100).
  bench/bulk_inferrer.py measures it against the Beam path.
- **On Beam** (a runner is named): tfx_bsl's RunInference, the model loaded once per worker, so
  large splits scale out on Dataflow, Flink or Spark. A ``classify`` or ``regress`` signature
  (Estimator exports) also goes this way, as RunInference logs those as ClassifyLog/RegressLog.
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
# Examples per model call in process: large enough that the session's per-call cost (~1 ms) and
# numpy's per-batch work vanish, small enough that a batch and its logs are a few MB.
BATCH_RECORDS = 4096


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
        from mlpipe.io.beam import names_runner

        splits = ctx.parameters["data_spec"].get("example_splits") or examples.split_names
        split_dirs = [_split_dir(examples, split) for split in splits]
        saved_model_dir = os.path.join(model.uri, SERVING_MODEL_DIR)
        ctx.log.info("predicting on splits %s of %s with %s", splits, examples.uri, model.uri)
        if not names_runner(ctx.beam_pipeline_args):
            rows = infer_in_process(saved_model_dir, split_dirs, result.uri)
            if rows is not None:
                ctx.log.info("logged %d predictions in process", rows)
                return
            ctx.log.info("serving_default is not a predict signature: inferring with RunInference on Beam")
        patterns = [os.path.join(split_dir, "*.gz") for split_dir in split_dirs]
        run_inference(saved_model_dir, patterns, result.uri, ctx.beam_pipeline_args)


def _split_dir(examples: Any, split: str) -> str:
    if not os.path.isdir(examples.split_uri(split)):
        raise DataError(
            f"BulkInferrer: split '{split}' not found at {examples.split_uri(split)}; "
            f"the Examples have splits {examples.split_names}"
        )
    return str(examples.split_uri(split))


def infer_in_process(
    saved_model_dir: str, split_dirs: list[str], output_dir: str, batch_records: int = BATCH_RECORDS
) -> int | None:
    """Predict on the splits' examples in order, writing ``prediction_logs-00000-of-00001.gz``
    streamed; returns the number of logs, or None (nothing written) when ``serving_default`` is
    not a predict signature."""
    import itertools
    from collections.abc import Iterator

    import tensorflow as tf

    from mlpipe.io.example_stream import iter_serialized_examples
    from mlpipe.io.examples import write_examples
    from mlpipe.io.prediction_logs import PredictLogEncoder
    from mlpipe.io.read_ahead import read_ahead

    _register_addon_ops()
    session = tf.compat.v1.Session(graph=tf.compat.v1.Graph())
    with session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, [tf.saved_model.SERVING], saved_model_dir)
        if SIGNATURE not in meta_graph.signature_def:
            raise DataError(
                f"BulkInferrer: {saved_model_dir} has no '{SIGNATURE}' signature "
                f"(it has {sorted(meta_graph.signature_def)})"
            )
        signature = meta_graph.signature_def[SIGNATURE]
        if signature.method_name != tf.saved_model.PREDICT_METHOD_NAME:
            return None
        if (
            len(signature.inputs) != 1
            or next(iter(signature.inputs.values())).dtype != tf.string.as_datatype_enum
        ):
            raise DataError(
                f"BulkInferrer: '{SIGNATURE}' of {saved_model_dir} must take one string input "
                f"(serialized tf.Examples), it takes {dict(signature.inputs)}"
            )
        if not signature.outputs:
            raise DataError(f"BulkInferrer: '{SIGNATURE}' of {saved_model_dir} has no outputs")
        ((input_alias, input_info),) = signature.inputs.items()
        fetches = {alias: info.name for alias, info in signature.outputs.items()}
        encoder = PredictLogEncoder(input_alias, SIGNATURE)
        batches = itertools.chain.from_iterable(
            iter_serialized_examples(split_dir, batch_records) for split_dir in split_dirs
        )
        rows = 0

        def predicted() -> Iterator[tuple[list[bytes], Any]]:
            for batch in batches:
                yield batch, session.run(fetches, {input_info.name: batch})

        def logs() -> Iterator[bytes]:
            # the model runs on batch k + 1 (TF's threads, GIL released) while batch k is encoded
            nonlocal rows
            for examples, outputs in read_ahead(predicted(), "predict"):
                rows += len(examples)
                yield from encoder.encode(examples, outputs)

        # any records, not only tf.Examples: TFRecord framing, gzip in a second thread
        write_examples(output_dir, logs(), file_name=f"{OUTPUT_PREFIX}-00000-of-00001.gz")
        return rows


def _register_addon_ops() -> None:
    """Import the op libraries tfx_bsl imports before loading a model, where installed, so a
    model using their ops (tf.Text, decision forests, struct2tensor) loads here as there."""
    import importlib
    import importlib.util

    import tensorflow as tf

    for name in ("tensorflow_text", "tensorflow_decision_forests", "struct2tensor"):
        if importlib.util.find_spec(name) is None:
            continue
        try:
            importlib.import_module(name)
        except (ImportError, tf.errors.NotFoundError):  # built for another TF: tfx_bsl skips it too
            continue


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
