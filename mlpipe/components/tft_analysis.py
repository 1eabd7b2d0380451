"""TFT's analysis of a ``preprocessing_fn``, run in this process instead of as a Beam pipeline.

tf.Transform plans an analysis as a graph of operations (``tensorflow_transform.nodes``): per
phase, a SavedModel computing the analyzers' inputs, applied to each dataset; per analyzer,
accumulate (per dataset, cacheable), merge and extract steps, or the vocabulary's count, prune,
order and write; encoding and decoding the analyzer cache; the final SavedModel with the
analyzers' results bound in. ``tft_beam.AnalyzeDatasetWithCache`` turns every operation into a
Beam PTransform and runs the pipeline. On a few thousand rows, building, translating and setting
up that pipeline costs more than the analysis itself: on the taxi sample (10k rows) Transform
takes 13.6 s with Beam's analysis, 4.9 s with this one, whose ~3.5 s are tracing and planning
(0.5 s), TFT writing the phase's and the final SavedModel (2.5 s) and the pass over the data
(0.6 s).

:class:`InProcessAnalysis` builds the same graph with TFT's own ``analysis_graph_builder`` (same
trace, same cache, hence the same cache entry keys) and evaluates it with a ``nodes.Visitor`` on
Python values: a PCollection is a list of its elements (record batches, dicts of numpy arrays,
accumulators, encoded cache entries, file paths). Each operation calls TFT's code that runs
outside a pipeline: the CombineFns Beam would run (``_CombinerWrapper``, ``_PackedCombinerWrapper``), the
vocabulary's ordering, the cache coders, the SavedModel writer, the metadata reader. The cache is
read and written in TFT's on-disk layout, so either way reads a cache the other wrote.

Data is streamed as in Beam's fused stage: the operations reading one phase's SavedModel outputs
are fed together, one batch of tensors at a time, in a single pass over the dataset.

Operations without an implementation here (``PTransform`` analyzers, vocabularies ordered by
mutual information or by labels, vocabulary coverage) and combiners not listed in
``_CLAIMED_COMBINERS`` (a new TFT analyzer, or one whose result depends on Beam's batching) are named by
:attr:`InProcessAnalysis.unsupported` before anything runs; the caller then runs TFT's Beam
pipeline. Only TF2 tracing is implemented: a ``force_tf_compat_v1`` analysis stays on Beam.

TFT is pinned (1.16.0); the private TFT names used here are imported in this module only.
"""

from __future__ import annotations

import collections
import glob
import hashlib
import heapq
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import tensorflow as tf
from tensorflow_transform import (
    analyzer_nodes,
    analyzers,
    annotators,
    graph_tools,
    impl_helper,
    nodes,
    tf_utils,
)
from tensorflow_transform.analyzers import _VocabOrderingType
from tensorflow_transform.beam import analysis_graph_builder, analyzer_impls, beam_nodes
from tensorflow_transform.beam import impl as beam_impl
from tensorflow_transform.beam.analyzer_cache import (
    DatasetCache,
    DatasetCacheMetadata,
    DatasetKey,
    _ManifestFile,
    validate_dataset_keys,
)
from tensorflow_transform.beam.context import Context
from tensorflow_transform.beam.tft_beam_io.transform_fn_io import _copy_tree
from tensorflow_transform.output_wrapper import TFTransformOutput
from tensorflow_transform.saved import saved_transform_io_v2
from tensorflow_transform.tf_metadata import metadata_io
from tfx_bsl.tfxio.tensor_adapter import TensorAdapter, TensorAdapterConfig

from mlpipe.errors import DataError
from mlpipe.io.examples import read_tfrecords

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisInput:
    """One dataset to analyze: ``batches`` of its records in file order; ``source`` names it in
    errors (a split's directory). ``batches`` is iterated once per analysis phase reading the
    dataset: a list, or a re-iterable stream (Transform reads the files again each time, so
    memory holds a batch and the analyzers' accumulators, whatever the dataset's size)."""

    source: str
    batches: Iterable[pa.RecordBatch]


@dataclass(frozen=True)
class AnalysisResult:
    """What :meth:`InProcessAnalysis.run` leaves besides the written transform graph.

    ``cache_read`` holds the entries of the input cache the analysis used, ``cache_computed`` those
    it encoded, per dataset, as lists of encoded records; the counters are TFT's
    (``cache_entries_decoded`` / ``cache_entries_encoded``, counted as its Beam pipeline does).
    """

    cache_read: dict[DatasetKey, DatasetCache]
    cache_computed: dict[DatasetKey, DatasetCache]
    cache_entries_decoded: int
    cache_entries_encoded: int


class InProcessAnalysis:
    """TFT's analysis graph for ``preprocessing_fn`` over ``dataset_keys``, built with the cache
    in ``cache_dir`` (a previous ``WriteAnalysisCacheToFS`` output, or None), ready to run here.

    Construct it inside ``tft_beam.Context`` (temp dir, save options), as TFT's PTransforms are.
    Check :attr:`unsupported` before :meth:`run`; :attr:`datasets_to_read` are the datasets
    whose records the analysis needs (the others come wholly from the cache).
    """

    def __init__(
        self,
        preprocessing_fn: Callable[[dict[str, Any]], dict[str, Any]],
        tensor_adapter_config: TensorAdapterConfig,
        dataset_keys: Sequence[DatasetKey],
        cache_dir: str | None,
    ):
        validate_dataset_keys(dataset_keys)
        self.preprocessing_fn = preprocessing_fn
        self.tensor_adapter_config = tensor_adapter_config
        self.base_temp_dir = Context.create_base_temp_dir()
        self.save_options = Context.get_save_options()
        self.input_specs = TensorAdapter(tensor_adapter_config).OriginalTypeSpecs()
        # as tft_beam's _AnalyzeDatasetCommon.expand prepares the graph
        self.graph, structured_inputs, structured_outputs = impl_helper.trace_preprocessing_function(
            preprocessing_fn, self.input_specs, use_tf_compat_v1=False, base_temp_dir=self.base_temp_dir
        )
        if not isinstance(structured_outputs, dict) or not structured_outputs:
            raise ValueError(
                f"preprocessing_fn must return a non-empty dict of tensors, got {structured_outputs!r}"
            )
        if self.graph.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES):
            raise ValueError("preprocessing_fn must not create trainable variables")
        self.asset_map = annotators.get_asset_annotations(self.graph)
        annotators.clear_asset_annotations(self.graph)
        self.analyzers_fingerprint = graph_tools.get_analyzers_fingerprint(self.graph, structured_inputs)
        self.input_cache = _read_cache_index(cache_dir, dataset_keys)
        self._transform_fn, cache_nodes, self._side_effects = analysis_graph_builder.build(
            self.graph, structured_inputs, structured_outputs, dataset_keys, cache_dict=self.input_cache
        )
        self._cache_nodes = cache_nodes or {}
        self._plan = _plan(
            [self._transform_fn, *self._side_effects]
            + [node for entries in self._cache_nodes.values() for node in entries.values()]
        )
        if self._plan.reads_all_datasets:
            self.datasets_to_read = set(dataset_keys)
        else:
            self.datasets_to_read = self._plan.datasets & set(dataset_keys)

    @property
    def unsupported(self) -> str | None:
        """The operations of this graph that cannot run in this process (None if all can)."""
        return ", ".join(sorted(self._plan.unsupported)) or None

    def run(self, data: Mapping[DatasetKey, AnalysisInput], output_dir: str) -> AnalysisResult:
        """Analyze ``data`` (every key of :attr:`datasets_to_read`); write ``transform_fn/`` and
        ``transformed_metadata/`` into ``output_dir`` as ``tft_beam.WriteTransformFn`` does."""
        assert not self._plan.unsupported, self._plan.unsupported
        evaluator = _Evaluator(self, data, self._plan)
        traverser = nodes.Traverser(evaluator)
        (saved_model_dir,) = traverser.visit_value_node(self._transform_fn)
        for leaf in self._side_effects:
            traverser.visit_value_node(leaf)
        computed = {
            key: DatasetCache(
                {entry: traverser.visit_value_node(node) for entry, node in entries.items()},
                DatasetCacheMetadata(dataset_size=evaluator.dataset_size(key)),
            )
            for key, entries in self._cache_nodes.items()
        }
        _write_transform_fn(saved_model_dir, self.asset_map, output_dir)
        read = {
            key: DatasetCache(entries, self.input_cache[key].metadata)
            for key, entries in evaluator.cache_records.items()
        }
        return AnalysisResult(
            read, computed, evaluator.cache_entries_decoded, evaluator.cache_entries_encoded
        )


def write_analysis_cache(cache: Mapping[DatasetKey, DatasetCache], cache_dir: str) -> None:
    """Write ``cache`` (entries as lists of encoded records) into the empty ``cache_dir`` in the
    layout of ``tft_beam.analyzer_cache.WriteAnalysisCacheToFS``: per dataset key a directory
    with a pickled ``MANIFEST`` (entry key -> index), one gzipped TFRecord file per entry and the
    dataset's ``METADATA``."""
    for key, dataset_cache in cache.items():
        directory = os.path.join(cache_dir, key.key)
        tf.io.gfile.makedirs(directory)
        manifest = {}
        for index, (entry_key, records) in enumerate(dataset_cache.cache_dict.items()):
            _write_records(os.path.join(directory, f"{index}-00000-of-00001.gz"), records, "GZIP")
            manifest[entry_key] = index
        if dataset_cache.metadata is not None:
            _write_records(
                os.path.join(directory, "METADATA-00000-of-00001"), [dataset_cache.metadata.encode()]
            )
        with _ManifestFile(directory) as manifest_file:
            manifest_file.write(manifest)


def _read_cache_index(
    cache_dir: str | None, dataset_keys: Sequence[DatasetKey]
) -> dict[DatasetKey, DatasetCache]:
    """The entries of each dataset's cache in ``cache_dir`` (as file patterns, read when the
    analysis decodes them) and its metadata, as ``ReadAnalysisCacheFromFS`` finds them.

    An entry the manifest lists without a file is left out, so the analysis recomputes it: Beam's
    cache writer writes the manifest before the entries, so a write that stopped early leaves
    such a cache behind, and reading the entry as no records would be analyzing no data.
    """
    found: dict[DatasetKey, DatasetCache] = {}
    if cache_dir is None:
        return found
    for key in dataset_keys:
        directory = os.path.join(cache_dir, key.key)
        manifest = _ManifestFile(directory).read()
        entries = {}
        for entry, index in (manifest or {}).items():
            pattern = os.path.join(directory, f"{index}-*-of-*")
            if glob.glob(pattern):
                entries[entry] = pattern
            else:
                log.warning("analyzer cache %s: entry %d is in the manifest but has no file; recomputing it",
                            directory, index)  # fmt: skip
        if not entries:
            continue
        metadata = read_tfrecords(sorted(glob.glob(os.path.join(directory, "METADATA-*-of-*"))))
        found[key] = DatasetCache(entries, DatasetCacheMetadata.decode(metadata[0]) if metadata else None)
    return found


def _write_records(path: str, records: Sequence[bytes], compression: str = "") -> None:
    with tf.io.TFRecordWriter(path, options=compression) as writer:
        for record in records:
            writer.write(record)


def _write_transform_fn(saved_model_dir: str, asset_map: dict[str, str], output_dir: str) -> None:
    """The final SavedModel and its deferred metadata, as ``tft_beam.WriteTransformFn`` lays them out."""
    metadata = beam_impl._infer_metadata_from_saved_model(saved_model_dir, use_tf_compat_v1=False)
    _copy_tree(saved_model_dir, os.path.join(output_dir, TFTransformOutput.TRANSFORM_FN_DIR))
    metadata_dir = os.path.join(output_dir, TFTransformOutput.TRANSFORMED_METADATA_DIR)
    metadata_io.write_metadata(metadata, metadata_dir)
    if asset_map:
        with tf.io.gfile.GFile(os.path.join(metadata_dir, TFTransformOutput.ASSET_MAP), "w") as f:
            f.write(json.dumps(asset_map))


# ---------------------------------------------------------------------------------------------
# The graph, before running it: what is supported, what reads the data.

_COUNTED_ORDERINGS = (_VocabOrderingType.FREQUENCY, _VocabOrderingType.WEIGHTED_FREQUENCY)
_ORDERING_NAMES = {value: name for name, value in vars(_VocabOrderingType).items() if name.isupper()}

# The analyzers this module claims, by the TFT Combiner they run (exact type: a subclass is another
# analyzer). Each gives Beam's answer whatever the batches (sums, extremes, counts; a quantiles
# sketch adds values one at a time), up to float rounding; tests/components/
# test_differential_transform.py checks each against TFT on Beam. Any other combiner goes to Beam:
# a new TFT analyzer until it is added here with its test, and the two whose result depends on how
# the data is batched, which Beam's BatchElements sizes by timing (tfx_bsl's GetBatchElementsKwargs:
# 1 to 1,000 rows, tuned to a 1 s target), so no fixed in-process batching can reproduce it:
# _LMomentsCombiner (tukey_* / scale_to_gaussian: L-moments estimated within each batch, then
# averaged; two Beam runs on the same 6,000 taxi fares differ by up to 0.18) and tft.experimental's
# _VocabularyCombiner (approximate_vocabulary: a Misra-Gries sketch whose result depends on the
# order values and batches reach it). docs/contracts.md lists the differences that remain.
_CLAIMED_COMBINERS: dict[type, str] = {
    analyzers.NumPyCombiner: "min, max, sum, size, count_per_key, histogram, experimental.idf",
    analyzers.WeightedMeanAndVarCombiner: "mean, var, scale_to_z_score (also per key)",
    analyzers.QuantilesCombiner: "quantiles, bucketize (also per key)",
    analyzers.CovarianceCombiner: "covariance",
    analyzers.PCACombiner: "pca",
}


@dataclass
class _Plan:
    unsupported: set[str]
    # ApplySavedModel label -> the operations reading its outputs, with the ExtractFromDict keys
    # leading to each
    readers: dict[str, list[tuple[nodes.OperationDef, tuple[Any, ...]]]]
    datasets: set[DatasetKey]  # read by ExtractInputForSavedModel
    reads_all_datasets: bool  # some phase reads the flattened dataset


def _plan(roots: Sequence[nodes.ValueNode]) -> _Plan:
    """Walk the graph reachable from ``roots`` (what the Traverser will evaluate)."""
    plan = _Plan(set(), collections.defaultdict(list), set(), False)
    seen: set[int] = set()
    pending = [value.parent_operation for value in roots]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        pending.extend(value.parent_operation for value in node.inputs)
        op = node.operation_def
        reason = _unsupported(op)
        if reason:
            plan.unsupported.add(reason)
        if isinstance(op, beam_nodes.ExtractInputForSavedModel):
            if op.dataset_key.is_flattened_dataset_key():
                plan.reads_all_datasets = True
            else:
                plan.datasets.add(op.dataset_key)
        if isinstance(op, beam_nodes.ExtractFromDict) and _stream_of(node.inputs[0]):
            continue  # part of a reader's path
        streams = [stream for value in node.inputs if (stream := _stream_of(value))]
        if streams:
            if type(op) not in _READERS or len(node.inputs) != 1:
                plan.unsupported.add(f"{type(op).__name__} reading the data")
            else:
                source, keys = streams[0]
                plan.readers[source].append((op, keys))
    return plan


def _stream_of(value: nodes.ValueNode) -> tuple[str, tuple[Any, ...]] | None:
    """If ``value`` is a SavedModel's outputs (or values extracted from them): that ApplySavedModel's
    label and the ExtractFromDict keys on the way."""
    op = value.parent_operation.operation_def
    if isinstance(op, beam_nodes.ApplySavedModel):
        return op.label, ()
    if isinstance(op, beam_nodes.ExtractFromDict):
        upstream = _stream_of(value.parent_operation.inputs[0])
        if upstream:
            return upstream[0], (*upstream[1], op.keys)
    return None


def _unsupported(op: nodes.OperationDef) -> str | None:
    kind = type(op).__name__
    if type(op) not in _OPERATIONS:
        return kind
    ordering = getattr(op, "vocab_ordering_type", None)
    if ordering is not None and ordering not in _COUNTED_ORDERINGS:
        return f"{kind} ordered by {_ORDERING_NAMES.get(ordering, ordering)}"
    if isinstance(op, analyzer_nodes.VocabularyPrune) and op.key_fn is not None:
        return f"{kind} with coverage (key_fn)"
    combiners = [wrapper.combiner for wrapper in getattr(op, "combiners", ())]
    if getattr(op, "combiner", None) is not None:
        combiners.append(op.combiner)
    for combiner in combiners:
        if type(combiner) not in _CLAIMED_COMBINERS:
            return f"{kind} of {type(combiner).__name__}"
    return None


# ---------------------------------------------------------------------------------------------
# Running it.


@dataclass(frozen=True)
class _Stream:
    """The outputs of one ApplySavedModel: its SavedModel applied to a dataset, batch by batch.

    Never held: the first operation reading it runs the pass that feeds every reader of it.
    """

    label: str
    phase: int
    saved_model_dir: str
    batches: Iterable[_Batch]


@dataclass(frozen=True)
class _Batch:
    source: str
    first_record: int
    records: pa.RecordBatch


class _Evaluator(nodes.Visitor):
    """Evaluates each operation on lists (PCollections) with the function ``_OPERATIONS`` maps
    its type to; the readers of a SavedModel's outputs run in one pass per ApplySavedModel."""

    def __init__(self, analysis: InProcessAnalysis, data: Mapping[DatasetKey, AnalysisInput], plan: _Plan):
        self.analysis = analysis
        self.data = {key: _NumberedBatches(dataset) for key, dataset in data.items()}
        self.plan = plan
        self.passes: dict[str, dict[str, list[Any]]] = {}  # ApplySavedModel label -> reader label -> output
        self.cache_records: dict[DatasetKey, dict[bytes, list[bytes]]] = collections.defaultdict(dict)
        self.cache_entries_decoded = 0
        self.cache_entries_encoded = 0

    def dataset_size(self, key: DatasetKey) -> int:
        """The decoded bytes of a dataset, as seen by a pass over it (one more if none ran)."""
        batches = self.data[key]
        if batches.nbytes is None:
            for _ in batches:
                pass
        assert batches.nbytes is not None
        return batches.nbytes

    def visit(self, operation_def: nodes.OperationDef, input_values: tuple[Any, ...]) -> tuple[Any, ...]:
        if input_values and isinstance(input_values[0], _Stream) and type(operation_def) in _READERS:
            return (self.read_pass(input_values[0])[operation_def.label],)
        return _OPERATIONS[type(operation_def)](self, operation_def, input_values)

    def validate_value(self, value: Any) -> None:
        assert isinstance(value, (list, _Stream, _NumberedBatches, _Chain)), value

    def read_pass(self, stream: _Stream) -> dict[str, list[Any]]:
        """Apply the stream's SavedModel to each batch once, feeding every reader of it (as Beam's
        fused ParDo and combiners would)."""
        if stream.label in self.passes:
            return self.passes[stream.label]
        readers = [(op.label, _READERS[type(op)](op), keys) for op, keys in self.plan.readers[stream.label]]
        model = saved_transform_io_v2.SavedModelLoader(stream.saved_model_dir)
        model.finalize(
            set(self.analysis.tensor_adapter_config.tensor_representations), set(model.structured_outputs)
        )
        adapter = TensorAdapter(self.analysis.tensor_adapter_config)
        for batch in stream.batches:
            try:
                outputs = model.apply_transform_model(
                    adapter.ToBatchTensors(batch.records, produce_eager_tensors=True)
                )
            except tf.errors.OpError as e:  # the graph failed on these records: say where
                last = batch.first_record + batch.records.num_rows - 1
                raise DataError(
                    f"{batch.source}: preprocessing_fn's analysis (phase {stream.phase}) failed on records "
                    f"{batch.first_record}..{last}: {e}"
                ) from e
            values = {k: np.asarray(v) if isinstance(v, tf.Tensor) else v for k, v in outputs.items()}
            for _, reader, keys in readers:
                element: Any = values
                for key in keys:
                    element = _extract(element, key)
                reader.add(element)
        self.passes[stream.label] = {label: reader.result() for label, reader, _ in readers}
        return self.passes[stream.label]


class _NumberedBatches:
    """A dataset's batches, each with the number of its first record, on every iteration."""

    def __init__(self, dataset: AnalysisInput):
        self.dataset = dataset
        self.nbytes: int | None = None  # the decoded size, once a pass has seen every batch

    def __iter__(self) -> Iterator[_Batch]:
        first = nbytes = 0
        for records in self.dataset.batches:
            yield _Batch(self.dataset.source, first, records)
            first += records.num_rows
            nbytes += records.nbytes
        self.nbytes = nbytes


class _Chain:
    """Several datasets' batches one after the other, on every iteration (the flattened dataset)."""

    def __init__(self, parts: Sequence[Iterable[_Batch]]):
        self.parts = parts

    def __iter__(self) -> Iterator[_Batch]:
        for part in self.parts:
            yield from part


def _extract(element: Mapping[str, Any], keys: Any) -> Any:
    """ExtractFromDict on one element: a tuple of values for a tuple of keys, else one value."""
    return tuple(element[k] for k in keys) if isinstance(keys, tuple) else element[keys]


# Readers: the operations that consume a dataset (as Beam combiners do), one element at a time.


class _Combine:
    """Beam's CombineGlobally with one CombineFn (setup, accumulate, compact, merge, extract)."""

    def __init__(self, fn: Any):
        self.fn = fn
        fn.setup()
        self.accumulator = fn.create_accumulator()
        self.empty = True

    def add(self, element: Any) -> None:
        self.accumulator = self.fn.add_input(self.accumulator, element)
        self.empty = False

    def result(self) -> list[Any]:
        if self.empty:  # Beam's default for no input: the fresh accumulator, neither compacted nor merged
            output = self.fn.extract_output(self.accumulator)
        else:
            output = self.fn.extract_output(self.fn.merge_accumulators([self.fn.compact(self.accumulator)]))
        self.fn.teardown()
        return [output]


class _CombinePerKey:
    """Beam's CombinePerKey with one CombineFn over (key, value) elements; ``split`` first turns an
    element into such pairs (a batch of keys and values into one pair per instance)."""

    def __init__(self, fn: Any, split: Callable[[Any], Any] | None = None):
        self.fn = fn
        self.split = split or (lambda element: [element])
        fn.setup()
        self.accumulators: dict[Any, Any] = {}

    def add(self, element: Any) -> None:
        for key, value in self.split(element):
            if key not in self.accumulators:
                self.accumulators[key] = self.fn.create_accumulator()
            self.accumulators[key] = self.fn.add_input(self.accumulators[key], value)

    def result(self) -> list[Any]:
        fn = self.fn
        outputs = [
            (k, fn.extract_output(fn.merge_accumulators([fn.compact(a)])))
            for k, a in self.accumulators.items()
        ]
        fn.teardown()
        return outputs


class _VocabularyAccumulate:
    """``_VocabularyAccumulateImpl`` for frequency orderings: tokens -> (token, count or weight sum)."""

    def __init__(self, op: analyzer_nodes.VocabularyAccumulate):
        self.weighted = op.vocab_ordering_type == _VocabOrderingType.WEIGHTED_FREQUENCY
        self.totals: collections.Counter[Any] = collections.Counter()

    def add(self, element: tuple[np.ndarray, ...]) -> None:
        if self.weighted:
            for token, weight in analyzer_impls._flatten_value_and_weights_to_list_of_tuples(element):
                self.totals[token] += weight
        else:
            self.totals.update(analyzer_impls._flatten_value_to_list(element))

    def result(self) -> list[Any]:
        return list(self.totals.items())


_READERS: dict[type, Callable[[Any], Any]] = {
    analyzer_nodes.PackedCombineAccumulate: lambda op: _Combine(
        analyzer_impls._PackedCombinerWrapper(op.combiners, is_combining_accumulators=False)
    ),
    analyzer_nodes.CacheableCombineAccumulate: lambda op: _Combine(
        analyzer_impls._CombinerWrapper(op.combiner, is_combining_accumulators=False)
    ),
    analyzer_nodes.CacheableCombinePerKeyAccumulate: lambda op: _CombinePerKey(
        analyzer_impls._CombinerWrapper(op.combiner, is_combining_accumulators=False),
        analyzer_impls._split_inputs_by_key,
    ),
    analyzer_nodes.VocabularyAccumulate: _VocabularyAccumulate,
}


# The other operations: inputs (one list per input) -> outputs (one list per output).


def _extract_input_for_saved_model(
    ev: _Evaluator, op: beam_nodes.ExtractInputForSavedModel, inputs: tuple
) -> tuple:
    if op.dataset_key.is_flattened_dataset_key():
        return (_Chain([ev.data[key] for key in sorted(ev.data)]),)
    return (ev.data[op.dataset_key],)


def _apply_saved_model(ev: _Evaluator, op: beam_nodes.ApplySavedModel, inputs: tuple) -> tuple:
    (saved_model_dir,), batches = inputs
    return (_Stream(op.label, op.phase, saved_model_dir, batches),)


def _extract_from_dict(ev: _Evaluator, op: beam_nodes.ExtractFromDict, inputs: tuple) -> tuple:
    (values,) = inputs
    if isinstance(values, _Stream):
        return (values,)  # its readers extract their own keys (see _plan)
    return ([_extract(value, op.keys) for value in values],)


def _create_tensor_binding(ev: _Evaluator, op: beam_nodes.CreateTensorBinding, inputs: tuple) -> tuple:
    (values,) = inputs
    return (
        [beam_impl._TensorBinding(v, op.tensor_name, op.dtype_enum, op.is_asset_filepath) for v in values],
    )


def _create_saved_model(ev: _Evaluator, op: beam_nodes.CreateSavedModel, inputs: tuple) -> tuple:
    """``_CreateSavedModelImplV2``: trace ``preprocessing_fn`` with the bound analyzer outputs."""
    analysis = ev.analysis
    bindings = [binding for (binding,) in inputs]
    replacements = beam_impl._get_tensor_replacement_map(None, *bindings) if bindings else None
    # the final SavedModel outputs all of preprocessing_fn's outputs; a phase's, these tensors
    named = all(isinstance(v, tf.Tensor) for v in op.output_signature.values())
    output_names = {k: v.name for k, v in op.output_signature.items()} if named else {}
    saved_model_dir = beam_impl._create_v2_saved_model(
        replacements, analysis.base_temp_dir, analysis.preprocessing_fn, analysis.input_specs,
        analysis.analyzers_fingerprint, output_names, analysis.save_options,
    )  # fmt: skip
    return ([saved_model_dir],)


def _flatten(ev: _Evaluator, op: nodes.OperationDef, inputs: tuple) -> tuple:
    return ([value for values in inputs for value in values],)


def _flatten_lists(ev: _Evaluator, op: analyzer_nodes.FlattenLists, inputs: tuple) -> tuple:
    (values,) = inputs
    return ([item for value in values for item in value],)


def _add_key(ev: _Evaluator, op: analyzer_nodes.AddKey, inputs: tuple) -> tuple:
    (values,) = inputs
    return ([(op.key, value) for value in values],)


def _encode_cache(ev: _Evaluator, op: analyzer_nodes.EncodeCache, inputs: tuple) -> tuple:
    (values,) = inputs
    return ([op.coder.encode_cache(value) for value in values],)


def _decode_cache(ev: _Evaluator, op: analyzer_nodes.DecodeCache, inputs: tuple) -> tuple:
    pattern = ev.analysis.input_cache[op.dataset_key].cache_dict[op.cache_key]
    records = read_tfrecords(sorted(glob.glob(pattern)))
    ev.cache_records[op.dataset_key][op.cache_key] = records
    return ([op.coder.decode_cache(record) for record in records],)


def _instrument_dataset_cache(
    ev: _Evaluator, op: analyzer_nodes.InstrumentDatasetCache, inputs: tuple
) -> tuple:
    ev.cache_entries_decoded += op.num_decode_cache
    ev.cache_entries_encoded += op.num_encode_cache
    return ([],)


def _extract_outputs(ev: _Evaluator, op: analyzer_nodes.AnalyzerDef, inputs: tuple) -> tuple:
    (values,) = inputs
    for outputs in values:
        if len(outputs) != op.num_outputs:
            raise ValueError(
                f"Analyzer has {op.num_outputs} outputs but its implementation produced {len(outputs)} values"
            )
    return tuple([outputs[i] for outputs in values] for i in range(op.num_outputs))


def _combined(reader: Callable[[Any], Any]) -> Callable[..., tuple]:
    """An operation that feeds its one input list to ``reader(op)`` (a combiner: ``add`` each
    value, then ``result``), as Beam's CombineGlobally / CombinePerKey over a PCollection."""

    def combine(ev: _Evaluator, op: nodes.OperationDef, inputs: tuple) -> tuple:
        (values,) = inputs
        combiner = reader(op)
        for value in values:
            combiner.add(value)
        return (combiner.result(),)

    return combine


def _combine_per_key_format_keys(
    ev: _Evaluator, op: analyzer_nodes.CacheableCombinePerKeyFormatKeys, inputs: tuple
) -> tuple:
    (values,) = inputs
    dtypes = [info.dtype for info in op.combiner.output_tensor_infos()]
    tagged = {output.tag: output.value for output in analyzer_impls._merge_outputs_by_key(values, dtypes)}
    return tuple([tagged[tag]] for tag in ["key", *map(str, range(len(dtypes)))])


def _combine_per_key_format_large(
    ev: _Evaluator, op: analyzer_nodes.CacheableCombinePerKeyFormatLarge, inputs: tuple
) -> tuple:
    (values,) = inputs
    to_str = tf.compat.as_str_any
    return ([(to_str(",".join(map(to_str, v))), k) for k, v in values],)


def _scale_and_flatten_per_key_bucket_boundaries(
    ev: _Evaluator, op: nodes.OperationDef, inputs: tuple
) -> tuple:
    (values,) = inputs
    results = [analyzer_impls._join_boundary_rows(matrix) for matrix in values]
    return tuple([result[i] for result in results] for i in range(4))


def _vocabulary_merge(ev: _Evaluator, op: analyzer_nodes.VocabularyMerge, inputs: tuple) -> tuple:
    """Sum the per-dataset counts (or weights) of each token; (count, token) pairs."""
    (values,) = inputs
    totals: collections.Counter[Any] = collections.Counter()
    for token, count in values:
        totals[token] += count
    return ([(count, token) for token, count in totals.items()],)


def _vocabulary_count(ev: _Evaluator, op: analyzer_nodes.VocabularyCount, inputs: tuple) -> tuple:
    (values,) = inputs
    return ([np.int64(np.maximum(len(values), 1))],)  # a written vocabulary is never empty


def _vocabulary_prune(ev: _Evaluator, op: analyzer_nodes.VocabularyPrune, inputs: tuple) -> tuple:
    """``_ApplyThresholdsAndTopK`` for frequency counts: threshold, numeric tokens as bytes, top k
    largest (count, token) pairs, largest first (Beam's ``Top.Of``)."""
    (counts,) = inputs
    if op.frequency_threshold > 0 or op.informativeness_threshold > float("-inf"):
        counts = [(count, token) for count, token in counts if count >= op.frequency_threshold]
    if op.input_dtype != tf.string.name:
        counts = [(count, tf.compat.as_bytes(tf.compat.as_str_any(token))) for count, token in counts]
    if op.top_k is not None:
        counts = analyzer_impls.maybe_add_empty_vocabulary_dummy(
            heapq.nlargest(op.top_k, counts), op.input_dtype
        )
    return (counts,)


def _vocabulary_order_and_write(
    ev: _Evaluator, op: analyzer_nodes.VocabularyOrderAndWrite, inputs: tuple
) -> tuple:
    """``_VocabularyOrderAndWriteImpl``: order (unless top k already did), write, return the path."""
    counts = inputs[0]
    reserved_tokens = inputs[1][0] if len(inputs) > 1 else None
    if op.input_is_sorted and reserved_tokens is None:
        entries = [
            analyzer_impls._count_and_token_to_bytes(*kv) if op.store_frequency else kv[1] for kv in counts
        ]
    else:
        if op.fingerprint_shuffle:
            sort_kwargs: dict[str, Any] = {"key": lambda kv: hashlib.sha1(kv[1]).digest()}
        else:
            sort_kwargs = {"reverse": True}  # largest first
        order = analyzer_impls._OrderElementsFn(op.store_frequency, sort_kwargs, op.input_dtype)
        entries = list(order.process(None, [counts], reserved_tokens))
    path = os.path.join(ev.analysis.base_temp_dir, op.vocab_filename)
    if op.file_format == "text":
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(b"".join(tf.compat.as_bytes(entry) + b"\n" for entry in entries))
    else:
        path = f"{path}.tfrecord.gz"
        _write_records(path, [tf.compat.as_bytes(entry) for entry in entries], "GZIP")
    return ([np.array(path)],)


def _extract_vocabulary_reserved_tokens(
    ev: _Evaluator, op: analyzer_nodes.ExtractVocabularyReservedTokens, inputs: tuple
) -> tuple:
    return ([[tf_utils.fetch_vocabulary_reserved_tokens(ev.analysis.graph, op.name)]],)


_OPERATIONS: dict[type, Callable[[_Evaluator, Any, tuple], tuple]] = {
    beam_nodes.ExtractInputForSavedModel: _extract_input_for_saved_model,
    beam_nodes.ApplySavedModel: _apply_saved_model,
    beam_nodes.ExtractFromDict: _extract_from_dict,
    beam_nodes.CreateTensorBinding: _create_tensor_binding,
    beam_nodes.CreateSavedModel: _create_saved_model,
    beam_nodes.Flatten: _flatten,
    analyzer_nodes.FlattenLists: _flatten_lists,
    analyzer_nodes.AddKey: _add_key,
    analyzer_nodes.EncodeCache: _encode_cache,
    analyzer_nodes.DecodeCache: _decode_cache,
    analyzer_nodes.InstrumentDatasetCache: _instrument_dataset_cache,
    # the readers of a stream, when handed a list (the data passes feed them batch by batch)
    **{op_type: _combined(reader) for op_type, reader in _READERS.items()},
    analyzer_nodes.PackedCombineMerge: _combined(
        lambda op: _Combine(
            analyzer_impls._PackedCombinerWrapper(op.combiners, is_combining_accumulators=True)
        )
    ),
    analyzer_nodes.CacheableCombineMerge: _combined(
        lambda op: _Combine(analyzer_impls._CombinerWrapper(op.combiner, is_combining_accumulators=True))
    ),
    analyzer_nodes.ExtractCombineMergeOutputs: _extract_outputs,
    analyzer_nodes.ExtractPackedCombineMergeOutputs: _extract_outputs,
    analyzer_nodes.CacheableCombinePerKeyMerge: _combined(
        lambda op: _CombinePerKey(
            analyzer_impls._CombinerWrapper(op.combiner, is_combining_accumulators=True)
        )
    ),
    analyzer_nodes.CacheableCombinePerKeyFormatKeys: _combine_per_key_format_keys,
    analyzer_nodes.CacheableCombinePerKeyFormatLarge: _combine_per_key_format_large,
    analyzer_nodes.ScaleAndFlattenPerKeyBucketBouandaries: _scale_and_flatten_per_key_bucket_boundaries,
    analyzer_nodes.VocabularyMerge: _vocabulary_merge,
    analyzer_nodes.VocabularyCount: _vocabulary_count,
    analyzer_nodes.VocabularyPrune: _vocabulary_prune,
    analyzer_nodes.VocabularyOrderAndWrite: _vocabulary_order_and_write,
    analyzer_nodes.ExtractVocabularyReservedTokens: _extract_vocabulary_reserved_tokens,
}
