"""Transform: analyze the data with the user's TFT ``preprocessing_fn`` and apply it to every split.

Outputs the TFT output directory (``transform_fn/`` + ``transformed_metadata/``, loadable with
``tft.TFTransformOutput(uri)``) and the transformed examples in the Examples layout, so the
Trainer reads the same features the serving model computes from raw examples.

Everything runs in one Beam pipeline in this process unless ``beam_pipeline_args`` name a runner:
each split is read once and feeds both the analysis and the transformation.
"""

from __future__ import annotations

import os
from typing import Any

from mlpipe.components.module_loader import user_function
from mlpipe.dsl.annotations import FunctionPath, ModuleFile
from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.errors import DefinitionError
from mlpipe.types.standard import Examples, Schema, TransformGraph

TRANSFORMED_EXAMPLES_PREFIX = "transformed_examples"
_METRICS = "mlpipe.Transform"


class Transform(Component):
    """``Transform(examples, schema, module_file=... | preprocessing_fn='pkg.mod.fn', splits_config=...)``.

    ``splits_config`` is ``{"analyze": ["train"], "transform": ["train", "eval"]}`` as in TFX; by
    default the analyzers see ``train`` and every split is transformed.
    """

    SPEC = ComponentSpec(
        inputs={"examples": InputSpec(Examples), "schema": InputSpec(Schema)},
        outputs={"transform_graph": TransformGraph, "transformed_examples": Examples},
        parameters={
            "module_file": ParameterSpec(ModuleFile, default=None, optional=True),
            "preprocessing_fn": ParameterSpec(FunctionPath, default=None, optional=True),
            "splits_config": ParameterSpec(dict, default=None, optional=True),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if bool(self.parameters["module_file"]) == bool(self.parameters["preprocessing_fn"]):
            raise DefinitionError(
                f"{self.id}: pass exactly one of module_file=<file defining preprocessing_fn> or "
                f"preprocessing_fn='package.module.preprocessing_fn'"
            )
        splits_config = self.parameters["splits_config"]
        if splits_config is not None:
            _check_splits_config(self.id, splits_config)

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        examples = ctx.input("examples")
        schema_artifact = ctx.input("schema")
        assert examples is not None and schema_artifact is not None
        preprocessing_fn = user_function(ctx.node_id, ctx.parameters, "preprocessing_fn", "preprocessing_fn")
        analyze, transform = _splits(ctx.node_id, examples, ctx.parameters.get("splits_config"))
        graph = ctx.outputs["transform_graph"]
        transformed = ctx.outputs["transformed_examples"]
        ctx.log.info("analyzing %s, transforming %s", analyze, transform)
        counts = _run_pipeline(
            ctx,
            preprocessing_fn,
            {
                split: os.path.join(examples.split_uri(split), "*.gz")
                for split in set(analyze) | set(transform)
            },
            analyze,
            transform,
            read_schema(os.path.join(schema_artifact.uri, "schema.pbtxt")),
            graph.uri,
            transformed,
        )
        transformed.split_names = transform
        for name in ("span", "version"):
            if examples.get_property(name) is not None:
                transformed.set_property(name, examples.get_property(name))
        for split, count in counts.items():
            transformed.set_custom_property(f"num_rows_{split}", count)
        ctx.log.info("transformed rows per split: %s", counts)


def _check_splits_config(owner: str, config: dict[str, Any]) -> None:
    unknown = set(config) - {"analyze", "transform"}
    if unknown or not all(isinstance(v, list) and v for v in config.values()):
        raise DefinitionError(
            f"{owner}: splits_config must look like {{'analyze': ['train'], 'transform': ['train', 'eval']}}, "
            f"got {config!r}"
        )


def _splits(node_id: str, examples: Examples, config: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    available = examples.split_names
    analyze = list((config or {}).get("analyze") or ["train"])
    transform = list((config or {}).get("transform") or available)
    missing = sorted(set(analyze + transform) - set(available))
    if missing:
        raise DefinitionError(
            f"{node_id}: splits {missing} are not in the input examples (it has {available}); "
            f"fix splits_config"
        )
    return analyze, transform


def read_schema(path: str) -> Any:
    """A tensorflow_metadata Schema from its text file (``schema.pbtxt``)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with open(path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def _run_pipeline(
    ctx: ExecutionContext, preprocessing_fn: Any, patterns: dict[str, str], analyze: list[str],
    transform: list[str], schema: Any, graph_dir: str, transformed: Examples,
) -> dict[str, int]:  # fmt: skip
    """Analyze, write the transform graph and the transformed splits; return rows written per split."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from apache_beam.metrics.metric import Metrics, MetricsFilter
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder
    from tfx_bsl.public import tfxio

    from mlpipe.io.beam import beam_pipeline_options

    sources = {
        split: tfxio.TFExampleRecord(pattern, schema=schema, telemetry_descriptors=["mlpipe", "Transform"])
        for split, pattern in patterns.items()
    }
    adapter_config = next(iter(sources.values())).TensorAdapterConfig()
    encoder = RecordBatchToExamplesEncoder()
    pipeline = beam.Pipeline(options=beam_pipeline_options(ctx.beam_pipeline_args))
    with tft_beam.Context(temp_dir=ctx.tmp_dir, use_deep_copy_optimization=True):
        data = {
            split: pipeline | f"Read[{split}]" >> source.BeamSource() for split, source in sources.items()
        }
        analysis_data = [data[split] for split in analyze] | "FlattenAnalyzed" >> beam.Flatten()
        transform_fn = (analysis_data, adapter_config) | "Analyze" >> tft_beam.AnalyzeDataset(
            preprocessing_fn
        )
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(graph_dir)
        for split in transform:
            output_prefix = os.path.join(transformed.split_uri(split), TRANSFORMED_EXAMPLES_PREFIX)
            batches, _ = ((data[split], adapter_config), transform_fn) | f"Transform[{split}]" >> (
                tft_beam.TransformDataset(output_record_batches=True)
            )
            _ = (
                batches
                | f"Encode[{split}]"
                >> beam.FlatMap(_encode_batch, encoder, Metrics.counter(_METRICS, f"rows_{split}"))
                | f"Write[{split}]"
                >> beam.io.WriteToTFRecord(output_prefix, file_name_suffix=".gz", num_shards=1)
            )
        result = pipeline.run()
        result.wait_until_finish()
    _write_raw_metadata(schema, graph_dir)
    counts = {split: 0 for split in transform}
    for metric in result.metrics().query(MetricsFilter().with_namespace(_METRICS))["counters"]:
        counts[metric.key.metric.name.removeprefix("rows_")] += metric.committed
    return counts


def _write_raw_metadata(schema: Any, graph_dir: str) -> None:
    """The input schema under ``metadata/``, where ``TFTransformOutput.raw_feature_spec()`` reads it.

    The serving signature parses raw tf.Examples with that spec.
    """
    import tensorflow_transform as tft
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

    metadata_io.write_metadata(
        dataset_metadata.DatasetMetadata(schema),
        os.path.join(graph_dir, tft.TFTransformOutput.RAW_METADATA_DIR),
    )


def _encode_batch(element: Any, encoder: Any, rows: Any) -> list[bytes]:
    """A transformed (record batch, passthrough) pair -> serialized tf.Examples, counting the rows."""
    record_batch, _ = element
    rows.inc(record_batch.num_rows)
    return encoder.encode(record_batch)
