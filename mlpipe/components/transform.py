"""Transform: analyze the data with the user's TFT ``preprocessing_fn`` and apply it to every split.

Outputs the TFT output directory (``transform_fn/`` + ``transformed_metadata/``, loadable with
``tft.TFTransformOutput(uri)``) and the transformed examples in the Examples layout, so the
Trainer reads the same features the serving model computes from raw examples.

**What runs where, and why.** On data of a few thousand rows, TFT's Beam pipeline costs more to
build, translate to the runner API and set up than the analysis and the transform cost to run.
On large data, Beam's in-process runner is one Python process with Beam's per-element costs, so
it never wins on one machine. So with no runner named in ``beam_pipeline_args`` both steps run in
this process, whatever the size, streaming the split's files (either Examples layout: one file or
``*-0000k-of-0000N.gz`` shards) a record batch at a time, so memory holds one batch and the
analyzers' accumulators, not the split:

- the analysis is TFT's own analysis graph evaluated without Beam
  (:mod:`mlpipe.components.tft_analysis`): the same trace, combiners (each batch added to one
  accumulator, as a Beam combiner adds a bundle's), vocabulary steps and SavedModels, the same
  analyzer cache format and entry keys, so a cache written one way is read the other way; each
  analysis phase reads the analyzed splits once more;
- the transform feeds the resulting SavedModel a record batch at a time, converts its outputs
  with TFT's tensor->Arrow converter and writes them in shards of ``_SHARD_ROWS`` rows
  (``transformed_examples-0000k-of-0000N.gz``).

``beam_threshold_rows`` (default None: no threshold) is still accepted: set, a split larger than
it goes to Beam's in-process runner as before (0 sends every non-empty split there); to scale out,
name a runner in ``beam_pipeline_args`` instead.

Taxi sample (10k rows analyzed, 15k transformed): the Transform node took 13.6 s analyzing in
Beam, 4.9 s analyzing here (medians of 3, ``bench/transform_trainer.py``); of the in-process
analysis's ~3.5 s, 2.5 s is TFT writing its two SavedModels. The analysis goes to TFT's Beam
pipeline, the small splits still being transformed here, when the ``preprocessing_fn`` uses an
analyzer the in-process analysis does not claim (``tft_analysis._CLAIMED_COMBINERS`` and its
vocabulary steps; a new TFT analyzer goes to Beam by default): vocabularies ordered by mutual
information or labels, vocabulary coverage, ``tft.experimental.ptransform_analyzer``, and the two
analyzers whose result depends on how the data is batched, ``scale_to_gaussian`` / ``tukey_*``
and ``tft.experimental.approximate_vocabulary`` (Beam sizes its batches by timing, so no fixed
batching here could give Beam's answer); also under ``force_tf_compat_v1``, or when a split to
analyze is larger than a set ``beam_threshold_rows``. With such a split to transform, or a named
runner, analysis and transform run in one Beam pipeline, each split read once for both. The first
line of the log says where each step runs and why.

Both ways compute the same graph: the same vocabulary files and quantile boundaries, the other
analyzer results equal up to float rounding (``tests/components/test_differential_transform.py``;
``docs/contracts.md`` lists where mlpipe differs from TFX).

One limit of Beam's in-process runner (FnApiRunner, Beam 2.72): TFT's Beam graph of a
``preprocessing_fn`` with three or more analysis phases (an analyzer reading the output of an
analyzer that reads another's) fails there with "watermark-pending bundles did not execute". The
in-process analysis runs such functions; to run them on Beam name another runner in
``beam_pipeline_args``.

**Analyzer cache** (TFX's ``analyzer_cache`` input and ``updated_analyzer_cache`` output). TFT
analyzers reduce each dataset to accumulators (counts, sums, sketches) and merge them; the cache
keeps each analyzed split's accumulators, so a later run analyzes only the splits it has not
analyzed before (a split to transform is still read to transform it). Two keys make a cached
accumulator valid:

- the *dataset key* says which data it summarizes: a digest of the bytes the split is read from
  (ExampleGen's typed columnar copy, or the tf.Examples where there is none) and of the schema
  that decodes them, plus the split name. Equal keys mean the analyzers saw equal inputs,
  whichever Examples artifact holds them: a re-ingested identical split hits, a changed one (a
  re-delivered span, types re-inferred over more data, another schema) misses. The artifact URI
  (TFX's key) would miss whenever ExampleGen re-ran, and a span number cannot tell a re-delivery;
- TFT's *cache-entry key* says which analyzer produced it: a hash of the analyzer and of the graph
  computing its input. An edited ``preprocessing_fn`` reuses the analyzers it kept, recomputes the
  ones it changed, and can never pick up another function's accumulators.

A split is the unit of reuse. ExampleGen's ``range_config`` writes the spans of a range into one
file per split, so to analyze a growing window span by span give each span its own split
(``input_config`` with one split pattern per span) and list them in ``splits_config["analyze"]``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mlpipe.components.module_loader import check_function_source, user_function
from mlpipe.dsl.annotations import FunctionPath, ModuleFile
from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.errors import DataError, DefinitionError
from mlpipe.io.schema_file import SCHEMA_FILE, read_schema
from mlpipe.types.artifact import Artifact
from mlpipe.types.standard import Examples, Schema, TransformCache, TransformGraph

TRANSFORMED_EXAMPLES_PREFIX = "transformed_examples"
_METRICS = "mlpipe.Transform"
# TFT traces a preprocessing_fn with process-wide state (the tracker of the objects it creates,
# asserted empty when tracing starts), and the local and Beam runners run independent nodes in
# threads of one process: two Transform nodes analyzing at once fail. So they take turns.
_TFT_TRACING = threading.Lock()


class Transform(Component):
    """``Transform(examples, schema, module_file=... | preprocessing_fn='pkg.mod.fn', splits_config=...,
    analyzer_cache=...)``.

    ``splits_config`` is ``{"analyze": ["train"], "transform": ["train", "eval"]}`` as in TFX; by
    default the analyzers see ``train`` and every split is transformed.

    ``beam_threshold_rows`` (default None): with no runner named, every split is analyzed and
    transformed in this process, streamed in bounded memory (see the module docstring); set, a
    split of more rows goes to Beam's in-process runner instead, and 0 sends every non-empty
    split there.

    ``force_tf_compat_v1`` (TFX's parameter, default False) traces ``preprocessing_fn`` in a
    ``tf.compat.v1`` graph and writes the transform graph as a TF1 SavedModel. It is for
    ``preprocessing_fn``s written for TF1. Its analysis always runs in Beam (the in-process
    analysis traces TF2 only): within Beam a TF1 graph traces and saves faster, without TF2's
    function and object-graph machinery (taxi sample: about 2 s of the node's 11-14 s), but on
    small data the in-process TF2 analysis is faster still (taxi sample: 4.9 s against 9 s).
    ``tft.TFTransformOutput`` and its ``transform_features_layer`` read either kind, so Trainer
    module code does not change; TF2-only code (``tf.function``, TF2 control flow) in
    ``preprocessing_fn`` may not trace in this mode.

    ``analyzer_cache`` (optional) is a previous run's ``updated_analyzer_cache``, found in ML
    Metadata by a resolver::

        latest = Resolver(strategy="latest_artifact", analyzer_cache=TransformCache).with_id("LatestAnalyzerCache")
        transform = Transform(..., analyzer_cache=latest.outputs["analyzer_cache"])

    The resolver names the type, not this node's channel (that would be a cycle); on the first run
    it finds nothing and the analysis reads everything.

    ``updated_analyzer_cache`` is always produced, as TFX does while analyzer caching is enabled
    (its default): the first run has no cache to read but must leave one for the next, and an
    output cannot depend on whether a resolver found something at run time. It costs a few small
    files of accumulators per analyzed split and a pass hashing the analyzed records (~10 us a
    record), and the transform graph is that of a cacheless run (up to float rounding where
    accumulators of several splits merge). It holds the accumulators of
    this run's analyzed splits for this ``preprocessing_fn`` only (carried over from the input or
    computed now), so it does not grow with history. Its custom properties say what the run took
    from the cache: ``analyzed_splits`` (read for analysis), ``cached_splits`` (not read for
    analysis: every accumulator came from the cache), ``cache_entries_decoded`` and
    ``cache_entries_encoded`` (TFT's counters).
    """

    SPEC = ComponentSpec(
        inputs={
            "examples": InputSpec(Examples),
            "schema": InputSpec(Schema),
            "analyzer_cache": InputSpec(TransformCache, optional=True),
        },
        outputs={
            "transform_graph": TransformGraph,
            "transformed_examples": Examples,
            "updated_analyzer_cache": TransformCache,
        },
        parameters={
            "module_file": ParameterSpec(ModuleFile, default=None, optional=True),
            "preprocessing_fn": ParameterSpec(FunctionPath, default=None, optional=True),
            "splits_config": ParameterSpec(dict, default=None, optional=True),
            "beam_threshold_rows": ParameterSpec(int, default=None, optional=True),
            "force_tf_compat_v1": ParameterSpec(bool, default=False),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        check_function_source(self.id, self.parameters, "preprocessing_fn", "preprocessing_fn")
        splits_config = self.parameters["splits_config"]
        if splits_config is not None:
            _check_splits_config(self.id, splits_config)

    @classmethod
    def inputs_for_cache(cls, inputs: Mapping[str, list[Artifact]]) -> Mapping[str, list[Artifact]]:
        """The analyzer cache only saves work, it never changes the transform graph; keying the node's
        cache on it would re-run every Transform, as each run is handed the previous run's cache."""
        return {key: artifacts for key, artifacts in inputs.items() if key != "analyzer_cache"}

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        examples = ctx.input("examples")
        schema_artifact = ctx.input("schema")
        assert isinstance(examples, Examples) and schema_artifact is not None
        previous_cache = ctx.input("analyzer_cache")
        preprocessing_fn = user_function(ctx.node_id, ctx.parameters, "preprocessing_fn", "preprocessing_fn")
        analyze, transform = _splits(ctx.node_id, examples, ctx.parameters.get("splits_config"))
        graph = ctx.outputs["transform_graph"]
        transformed = ctx.outputs["transformed_examples"]
        assert isinstance(transformed, Examples)
        cache = ctx.outputs["updated_analyzer_cache"]
        with _TFT_TRACING:
            result = _analyze_and_transform(
                ctx,
                preprocessing_fn,
                examples,
                analyze,
                transform,
                read_schema(os.path.join(schema_artifact.uri, SCHEMA_FILE)),
                graph.uri,
                transformed,
                previous_cache.uri if previous_cache else None,
                cache.uri,
            )
        transformed.split_names = transform
        for name in ("span", "version"):
            if examples.get_property(name) is not None:
                transformed.set_property(name, examples.get_property(name))
        for split, count in result.rows.items():
            transformed.set_custom_property(f"num_rows_{split}", count)
        cache.set_custom_property("analyzed_splits", result.analyzed_splits)
        cache.set_custom_property("cached_splits", result.cached_splits)
        cache.set_custom_property("cache_entries_decoded", result.cache_entries_decoded)
        cache.set_custom_property("cache_entries_encoded", result.cache_entries_encoded)
        ctx.log.info(
            "transformed rows per split: %s; analysis read %s, took %s wholly from the cache "
            "(cache entries: %d decoded, %d encoded)",
            result.rows,
            result.analyzed_splits,
            result.cached_splits,
            result.cache_entries_decoded,
            result.cache_entries_encoded,
        )


def _small_enough(ctx: ExecutionContext, examples: Examples, splits: list[str]) -> bool:
    """Whether these splits go through this process rather than Beam: no runner was asked for,
    and ``beam_threshold_rows``, if set, bounds each split (by ExampleGen's row counts)."""
    from mlpipe.io.beam import names_runner

    if names_runner(ctx.beam_pipeline_args):
        return False
    threshold = ctx.parameters["beam_threshold_rows"]
    if threshold is None:
        return True
    rows = [examples.get_custom_property(f"num_rows_{split}") for split in splits]
    return all(count is not None and count <= threshold for count in rows)


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


@dataclass(frozen=True)
class _PipelineResult:
    rows: dict[str, int]  # transformed rows written per split
    analyzed_splits: list[str]  # read for analysis
    cached_splits: list[str]  # analyzed from cached accumulators alone
    cache_entries_decoded: int
    cache_entries_encoded: int


def _analyze_and_transform(
    ctx: ExecutionContext, preprocessing_fn: Any, examples: Examples, analyze: list[str], transform: list[str],
    schema: Any, graph_dir: str, transformed: Examples, cache_in: str | None, cache_out: str,
) -> _PipelineResult:  # fmt: skip
    """Analyze (with the cache in ``cache_in``, if any), write the transform graph, the updated
    cache and the transformed splits, each step in this process or in Beam (see the module
    docstring), and log which."""
    import tensorflow as tf
    import tensorflow_transform.beam as tft_beam
    from tfx_bsl.public import tfxio

    tf_compat_v1 = ctx.parameters["force_tf_compat_v1"]
    split_dirs = {split: examples.split_uri(split) for split in [*analyze, *transform]}
    # Both in-process steps feed the graph eager tensors: a process that turned eager execution off
    # (tf.compat.v1.disable_v2_behavior() in a user's module) runs them in Beam, as TFT does.
    eager = tf.executing_eagerly()
    in_process = eager and _small_enough(ctx, examples, transform)
    analyze_here = in_process and _small_enough(ctx, examples, analyze)
    representations = (
        tfxio.TFExampleRecord(os.path.join(split_dirs[analyze[0]], "*.gz"), schema=schema)
        .TensorAdapterConfig()
        .tensor_representations
    )
    splits = _SplitData(schema, representations, examples.uri, split_dirs)
    # No deep-copy optimization: TFT 1.16's deep_copy builds AppliedPTransforms the way older Beam
    # did, and with Beam 2.72 every preprocessing_fn of two or more analysis phases failed in Beam
    # ("AppliedPTransform.__init__() missing ... 'environment_id'"). Without it the runner keeps
    # the read input for the later phases instead of reading it again per phase: more memory or
    # shuffle I/O on large data, where the optimization had never worked here.
    with tft_beam.Context(
        temp_dir=ctx.tmp_dir, use_deep_copy_optimization=False, force_tf_compat_v1=tf_compat_v1
    ):
        keys = {split: _dataset_key(split, splits, schema) for split in analyze}
        # TFT traces in a tf.compat.v1 graph when asked to and also when TF2 behaviour is off; the
        # in-process analysis traces TF2 only
        compat_v1 = tft_beam.Context.get_use_tf_compat_v1()
        analysis, why_beam = None, ""
        if not eager and _small_enough(ctx, examples, [*analyze, *transform]):
            why_beam = " (eager execution is disabled in this process)"
        elif analyze_here and compat_v1:
            why_beam = (
                " (force_tf_compat_v1)" if tf_compat_v1 else " (TF2 behaviour is disabled in this process)"
            )
        elif analyze_here:
            from mlpipe.components.tft_analysis import InProcessAnalysis

            analysis = InProcessAnalysis(
                preprocessing_fn, splits.tensor_adapter_config, list(keys.values()), cache_in
            )
            if analysis.unsupported:
                why_beam = f" (no in-process implementation of TFT's {analysis.unsupported})"
                analysis = None
        ctx.log.info(
            "analyzing %s %s, transforming %s %s%s",
            analyze,
            "in this process" if analysis else f"with Beam{why_beam}",
            transform,
            "in this process" if in_process else "with Beam",
            f", analyzer cache from {cache_in}" if cache_in else "",
        )
        if analysis:
            result = _analyze_in_process(analysis, keys, splits, analyze, graph_dir, cache_out)
        else:
            result = _run_pipeline(
                ctx, preprocessing_fn, split_dirs, keys, analyze, [] if in_process else transform, schema,
                graph_dir, transformed, cache_in, cache_out, compat_v1,
            )  # fmt: skip
    _write_raw_metadata(schema, graph_dir)
    if in_process:
        result = replace(result, rows=_apply_transform_graph(graph_dir, splits, transform, transformed))
    return result


_IN_PROCESS_BATCH_ROWS = 4096
# Transformed records per output shard (TFX names them transformed_examples-0000k-of-0000N.gz):
# a few tens of MB of gzipped taxi rows, so downstream readers can split the work by file.
_SHARD_ROWS = 1_000_000


class _SplitData:
    """The splits read in this process, streamed on every pass as record batches of
    ``_IN_PROCESS_BATCH_ROWS`` rows in the shape tfx_bsl's decoder gives them with the raw schema.
    A pass holds one batch, so memory does not grow with the split; each analysis phase and the
    transform read the split again.

    The batches come from the ExampleGen's typed columnar copy when there is one that fits the
    schema (:func:`mlpipe.io.example_batches.conform`, checked against the decoder), else from the
    TFRecords through tfx_bsl's decoder. On 1M taxi rows decoding took ~15 us a record (22 s of a
    45 s Transform, one core); the columnar copy gives the same batches in ~0.3 us.
    """

    def __init__(
        self, schema: Any, tensor_representations: Any, examples_uri: str, split_dirs: dict[str, str]
    ):
        from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder
        from tfx_bsl.tfxio.tensor_adapter import TensorAdapterConfig

        from mlpipe.io.example_batches import columnar_conforms, columnar_files

        self.examples_uri = examples_uri
        self.split_dirs = split_dirs
        self.decoder = ExamplesToRecordBatchDecoder(schema.SerializeToString())
        # the decoder's Arrow schema: the batches are its output
        self.arrow_schema = arrow_schema = self.decoder.ArrowSchema()
        self.tensor_adapter_config = TensorAdapterConfig(arrow_schema, tensor_representations)
        self.columnar = {}
        for split in split_dirs:
            files = columnar_files(examples_uri, split)
            self.columnar[split] = files if files and columnar_conforms(files, arrow_schema) else []

    def digest(self, split: str, digest: Any) -> None:
        """Feed ``digest`` the bytes the batches of ``split`` are made from: the columnar files,
        or the serialized records (in file order either way)."""
        from mlpipe.io.example_stream import iter_serialized_examples

        if self.columnar[split]:
            for path in self.columnar[split]:
                with open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
            return
        for batch in iter_serialized_examples(self.split_dirs[split], _IN_PROCESS_BATCH_ROWS):
            for record in batch:
                digest.update(len(record).to_bytes(8, "little"))
                digest.update(record)

    def batches(self, split: str) -> _RecordBatches:
        return _RecordBatches(self, split)


class _RecordBatches:
    """A split's record batches, read again on each iteration (an analysis phase reads its
    dataset once, the transform once more). ``nbytes`` is the decoded size seen by the last
    complete iteration (TFT's dataset size in the cache metadata)."""

    def __init__(self, data: _SplitData, split: str):
        self.data, self.split = data, split
        self.nbytes: int | None = None

    def __iter__(self) -> Iterator[Any]:
        nbytes = 0
        for batch in self._read():
            nbytes += batch.nbytes
            yield batch
        self.nbytes = nbytes

    def _read(self) -> Iterator[Any]:
        from mlpipe.io.example_batches import conform, iter_record_batches
        from mlpipe.io.example_stream import iter_serialized_examples

        data = self.data
        if data.columnar[self.split]:
            for batch in iter_record_batches(data.examples_uri, self.split, _IN_PROCESS_BATCH_ROWS):
                yield conform(batch, data.arrow_schema)
            return
        for records in iter_serialized_examples(data.split_dirs[self.split], _IN_PROCESS_BATCH_ROWS):
            yield data.decoder.DecodeBatch(records)


def _analyze_in_process(
    analysis: Any,
    keys: dict[str, Any],
    splits: _SplitData,
    analyze: list[str],
    graph_dir: str,
    cache_out: str,
) -> _PipelineResult:
    """Run TFT's analysis graph here (``tft_analysis``) on the splits it must read; write the
    transform graph and the updated cache. The result has no rows: nothing is transformed yet."""
    from mlpipe.components import tft_analysis

    read = [split for split in analyze if keys[split] in analysis.datasets_to_read]
    result = analysis.run(
        {keys[s]: tft_analysis.AnalysisInput(splits.split_dirs[s], splits.batches(s)) for s in read},
        graph_dir,
    )
    tft_analysis.write_analysis_cache(_updated_cache(result.cache_read, result.cache_computed), cache_out)
    return _PipelineResult(
        rows={},
        analyzed_splits=read,
        cached_splits=[split for split in analyze if split not in read],
        cache_entries_decoded=result.cache_entries_decoded,
        cache_entries_encoded=result.cache_entries_encoded,
    )


def _run_pipeline(
    ctx: ExecutionContext, preprocessing_fn: Any, split_dirs: dict[str, str], keys: dict[str, Any],
    analyze: list[str], beam_transform: list[str], schema: Any, graph_dir: str, transformed: Examples,
    cache_in: str | None, cache_out: str, tf_compat_v1: bool,
) -> _PipelineResult:  # fmt: skip
    """Analyze in TFT's Beam pipeline (with the cache in ``cache_in``, if any), write the transform
    graph and the updated cache, and transform the splits of ``beam_transform`` in the same
    pipeline, each split read once for both. Runs inside the caller's ``tft_beam.Context``."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from apache_beam.metrics.metric import Metrics, MetricsFilter
    from tensorflow_transform.beam import common as tft_common
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder
    from tfx_bsl.public import tfxio

    from mlpipe.io.beam import beam_pipeline_options

    sources = {
        split: tfxio.TFExampleRecord(
            os.path.join(split_dir, "*.gz"), schema=schema, telemetry_descriptors=["mlpipe", "Transform"]
        )
        for split, split_dir in split_dirs.items()
    }
    some_source = next(iter(sources.values()))
    adapter_config = some_source.TensorAdapterConfig()
    encoder = RecordBatchToExamplesEncoder()
    pipeline = beam.Pipeline(options=beam_pipeline_options(ctx.beam_pipeline_args))
    previous, to_read = _read_analyzer_cache(
        pipeline,
        cache_in,
        keys,
        preprocessing_fn,
        some_source.TensorAdapter().OriginalTypeSpecs(),
        tf_compat_v1,
    )
    data = {
        split: pipeline | f"Read[{split}]" >> sources[split].BeamSource()
        for split in sorted(set(beam_transform) | {s for s in analyze if keys[s] in to_read})
    }
    analysis_data = {keys[s]: data[s] if keys[s] in to_read else None for s in analyze}
    transform_fn, computed = (analysis_data, previous, adapter_config) | "Analyze" >> (
        tft_beam.AnalyzeDatasetWithCache(preprocessing_fn, pipeline=pipeline)
    )
    _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(graph_dir)
    updated = _updated_cache(previous, computed or {})
    if updated:
        _ = updated | "WriteCache" >> tft_beam.analyzer_cache.WriteAnalysisCacheToFS(
            pipeline, cache_out, dataset_keys=list(keys.values())
        )
    for split in beam_transform:
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
    metrics = result.metrics()
    counts = {split: 0 for split in beam_transform}
    for metric in metrics.query(MetricsFilter().with_namespace(_METRICS))["counters"]:
        counts[metric.key.metric.name.removeprefix("rows_")] += metric.committed
    tft_counters = {name: 0 for name in ("cache_entries_decoded", "cache_entries_encoded")}
    for metric in metrics.query(MetricsFilter().with_namespace(tft_common.METRICS_NAMESPACE))["counters"]:
        if metric.key.metric.name in tft_counters:
            tft_counters[metric.key.metric.name] += metric.committed
    return _PipelineResult(
        rows=counts,
        analyzed_splits=[s for s in analyze if keys[s] in to_read],
        cached_splits=[s for s in analyze if keys[s] not in to_read],
        **tft_counters,
    )


def _apply_transform_graph(
    graph_dir: str, splits: _SplitData, transform: list[str], transformed: Examples
) -> dict[str, int]:
    """Transform each split in this process, a batch at a time; the rows written per split.

    The steps of TFT's ``TransformDataset`` without Beam: feed each record batch's tensors to the
    transform SavedModel, convert the outputs to Arrow with TFT's converter for the transformed
    schema, encode them as tf.Examples; written in shards of ``_SHARD_ROWS`` rows named as Beam's
    sink names them.
    """
    import tensorflow as tf
    import tensorflow_transform as tft
    from tensorflow_transform import impl_helper
    from tensorflow_transform.saved import saved_transform_io_v2
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder
    from tfx_bsl.tfxio.tensor_adapter import TensorAdapter

    from mlpipe.io.read_ahead import read_ahead

    output = tft.TFTransformOutput(graph_dir)
    adapter = TensorAdapter(splits.tensor_adapter_config)
    graph = saved_transform_io_v2.SavedModelLoader(output.transform_savedmodel_dir)
    if not graph.load_v2_in_compat:  # a TF2 graph, pruned to the fed inputs; a TF1 one runs as loaded
        graph.finalize(
            set(splits.tensor_adapter_config.tensor_representations), set(graph.structured_outputs)
        )
    converter = impl_helper.make_tensor_to_arrow_converter(output.transformed_metadata.schema)
    encoder = RecordBatchToExamplesEncoder()

    def converted(split: str) -> Iterator[tuple[int, Any]]:
        """Each batch's transformed outputs in Arrow, with the rows read so far."""
        start = 0
        for batch in splits.batches(split):
            try:
                outputs = graph.apply_transform_model(
                    adapter.ToBatchTensors(batch, produce_eager_tensors=True)
                )
            except tf.errors.OpError as e:  # the graph failed on these records: say where
                raise DataError(
                    f"{splits.split_dirs[split]}: preprocessing_fn failed on records "
                    f"{start}..{start + batch.num_rows - 1}: {e}"
                ) from e
            start += batch.num_rows
            yield start, converter.convert(outputs)

    def transformed_records(split: str, counted: list[int]) -> Iterator[bytes]:
        # the next batch is read and run through the graph in a second thread while this one's
        # outputs are encoded (tfx_bsl's encoder holds the GIL; TensorFlow and Arrow release it)
        for start, outputs in read_ahead(converted(split), f"transform-{split}"):
            counted[0] = start
            yield from encoder.encode(outputs)

    rows = {}
    for split in transform:
        counted = [0]
        write_shards(
            transformed.split_uri(split), transformed_records(split, counted), TRANSFORMED_EXAMPLES_PREFIX
        )
        rows[split] = counted[0]
    return rows


def write_shards(split_dir: str, records: Iterable[bytes], prefix: str, shard_rows: int = _SHARD_ROWS) -> int:
    """Write ``records`` as gzipped TFRecord shards of at most ``shard_rows`` records, named
    ``<prefix>-0000k-of-0000N.gz`` as Beam's sink names them (at least one shard, maybe empty);
    the number of shards. The total is known only at the end, so shards are written under
    temporary names (not ``*.gz``: no reader takes them for data) and renamed."""
    import itertools

    from mlpipe.io import examples as io

    iterator = iter(records)
    written: list[str] = []
    while True:
        first = next(iterator, None)
        if first is None and written:
            break
        shard = (
            itertools.chain([first], itertools.islice(iterator, shard_rows - 1)) if first is not None else []
        )
        written.append(io.write_examples(split_dir, shard, f"{prefix}-{len(written):05d}.partial"))
        if first is None:
            break
    for index, path in enumerate(written):
        os.replace(path, os.path.join(split_dir, f"{prefix}-{index:05d}-of-{len(written):05d}.gz"))
    return len(written)


def _dataset_key(split: str, splits: _SplitData, schema: Any) -> Any:
    """The analyzer cache's name for the data one split feeds the analyzers: a digest of the
    bytes its batches are read from (:meth:`_SplitData.digest`) and of the schema decoding them
    (see the module docstring). ExampleGen writes both its records and its columnar copy
    deterministically, so a re-ingested identical split hits; the same rows written by another
    writer (other bytes, or another protobuf map order) miss once, which only costs a re-analysis.
    """
    import hashlib

    from tensorflow_transform.beam.analyzer_cache import DatasetKey

    digest = hashlib.sha256(split.encode() + b"\0")
    digest.update(schema.SerializeToString(deterministic=True))
    digest.update(b"columnar\0" if splits.columnar[split] else b"records\0")
    splits.digest(split, digest)
    return DatasetKey(f"{re.sub(r'[^A-Za-z0-9._-]', '_', split)}-{digest.hexdigest()[:32]}")


def _read_analyzer_cache(
    pipeline: Any, cache_dir: str | None, keys: dict[str, Any], preprocessing_fn: Any, typespecs: Any,
    tf_compat_v1: bool,
) -> tuple[dict[Any, Any], set[Any]]:  # fmt: skip
    """The cached accumulators of ``cache_dir`` that this ``preprocessing_fn`` can use on these
    datasets (as PCollections), and the dataset keys whose data must still be read for analysis.

    Without a cache every dataset is read; the empty cache still makes TFT encode accumulators
    per dataset, for the updated cache.
    """
    import tensorflow_transform.beam as tft_beam

    if cache_dir is None:
        return {}, set(keys.values())
    builder = tft_beam.analysis_graph_builder
    # traced as the analysis traces it: entry keys hash the traced graph
    wanted = builder.get_analysis_cache_entry_keys(
        preprocessing_fn, typespecs, list(keys.values()), tf_compat_v1
    )
    previous = pipeline | "ReadCache" >> tft_beam.analyzer_cache.ReadAnalysisCacheFromFS(
        cache_dir, list(keys.values()), cache_entry_keys=wanted
    )
    to_read = builder.get_analysis_dataset_keys(
        preprocessing_fn, typespecs, list(keys.values()), previous, tf_compat_v1
    )
    return previous, set(to_read)


def _updated_cache(previous: dict[Any, Any], computed: dict[Any, Any]) -> dict[Any, Any]:
    """Per dataset, the accumulators taken from the previous cache plus those computed now.

    Entries the previous cache held for other analyzers or other data are dropped: they were not
    read (see ``_read_analyzer_cache``), so the cache stays the size of one run's analysis.
    """
    from tensorflow_transform.beam.analyzer_cache import DatasetCache

    updated = {}
    for key in previous.keys() | computed.keys():
        old, new = previous.get(key), computed.get(key)
        entries = {**(old.cache_dict if old else {}), **(new.cache_dict if new else {})}
        source = new if new else old
        if entries:
            assert source is not None  # the entries came from one of them
            updated[key] = DatasetCache(entries, source.metadata)
    return updated


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
