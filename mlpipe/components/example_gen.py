"""ExampleGens: input data -> Examples (gzipped TFRecords of tf.Example, one folder per split).

The output is what TFX's ExampleGens write (``Split-<name>/data_tfrecord-*.gz``, span, version,
``split_names``), so TFX tools read it unchanged. Splits come either from the input (an
``input_config`` with several split patterns, e.g. ``train/*.csv`` and ``eval/*.csv``) or, for one
input split, from a hash of each row's content (``output_config``, default train:eval = 2:1), so
the same row lands in the same split on every run and on every machine.

Readers of tables (CSV, Parquet, SQL) also keep each split's typed table as Arrow beside the
records (``.columnar/Split-<name>.arrow``, outside the ``Split-*`` folders TFX reads), so
StatisticsGen skips decoding tf.Examples, its costliest step.

This module holds what every ExampleGen shares (the base classes) plus the CSV and TFRecord ones;
Parquet and SQL live in their own modules on the same bases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, ParameterSpec
from mlpipe.errors import DataError, DefinitionError
from mlpipe.io.input_patterns import ResolvedInput, check_input_config, resolve_input
from mlpipe.types.standard import Examples

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# TFX's default output_config: hash buckets train:eval = 2:1.
DEFAULT_SPLITS: list[dict[str, Any]] = [
    {"name": "train", "hash_buckets": 2},
    {"name": "eval", "hash_buckets": 1},
]


def split_config(output_config: dict[str, Any] | None) -> list[tuple[str, int]]:
    """(split name, hash buckets) pairs from TFX's ``output_config`` JSON shape, checked."""
    if not output_config:
        return [(s["name"], s["hash_buckets"]) for s in DEFAULT_SPLITS]
    example = '{"split_config": {"splits": [{"name": "train", "hash_buckets": 2}, ...]}}'
    splits = (output_config.get("split_config") or {}).get("splits")
    if set(output_config) != {"split_config"} or not isinstance(splits, list) or not splits:
        raise DefinitionError(f"output_config must look like {example}, got {output_config!r}")
    pairs: list[tuple[str, int]] = []
    for split in splits:
        name, buckets = (
            (split.get("name"), split.get("hash_buckets")) if isinstance(split, dict) else (None, None)
        )
        if not isinstance(name, str) or not name or not isinstance(buckets, int) or buckets < 1:
            raise DefinitionError(
                f"output_config: each split needs a non-empty 'name' and a positive int 'hash_buckets', "
                f"got {split!r}"
            )
        pairs.append((name, buckets))
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise DefinitionError(f"output_config: split names must be unique, got {names}")
    partition_feature(output_config)
    return pairs


def partition_feature(output_config: dict[str, Any] | None) -> str | None:
    """TFX's ``split_config.partition_feature_name``: hash this feature instead of the whole row,
    so every row with the same value (a user, a trip id) lands in the same split."""
    feature = ((output_config or {}).get("split_config") or {}).get("partition_feature_name")
    if feature is not None and (not isinstance(feature, str) or not feature):
        raise DefinitionError(f"output_config: partition_feature_name must be a column name, got {feature!r}")
    return feature


@dataclass(frozen=True)
class InputRecords:
    """What a reader hands to :func:`write_splits`: the serialized examples of every input split,
    in split order, how many belong to each split, and how to fingerprint them for a hash split
    (called only when one input split is hash-split). ``table`` is the typed table the records
    were encoded from, if any: kept beside them so StatisticsGen need not decode the records."""

    records: list[bytes]
    rows_per_split: dict[str, int]
    fingerprints: Callable[[], np.ndarray]
    table: pa.Table | None = None


def write_splits(ctx: ExecutionContext, data: InputRecords) -> None:
    """Write the Examples artifact's splits: one input split divided by each record's fingerprint
    bucket (``output_config``), or several input splits as they are."""
    import numpy as np

    from mlpipe.io.examples import columnar_path, write_columnar, write_examples

    out = ctx.outputs["examples"]
    if len(data.rows_per_split) == 1:
        splits = split_config(ctx.parameters["output_config"])
        feature = partition_feature(ctx.parameters["output_config"])
        fingerprints = data.fingerprints() if feature is None else _feature_fingerprints(data, feature)
        bucket = fingerprints % np.uint64(sum(b for _, b in splits))
        upper = 0
        chosen = {}
        for name, buckets in splits:
            lower, upper = upper, upper + buckets
            chosen[name] = np.flatnonzero((bucket >= lower) & (bucket < upper))
    else:
        bounds = np.cumsum([0, *data.rows_per_split.values()])
        chosen = {name: np.arange(bounds[i], bounds[i + 1]) for i, name in enumerate(data.rows_per_split)}
    for name, rows in chosen.items():
        write_examples(out.split_uri(name), (data.records[i] for i in rows))
        if data.table is not None:
            write_columnar(columnar_path(out.uri, name), data.table.take(rows))
        out.set_custom_property(f"num_rows_{name}", len(rows))
        ctx.log.info("split %s: %d rows", name, len(rows))
    out.split_names = list(chosen)


def _feature_fingerprints(data: InputRecords, feature: str) -> np.ndarray:
    from mlpipe.io import examples as io

    table = data.table
    if table is None:  # records read as they are (ImportExampleGen): decode them once
        import pyarrow as pa
        from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

        table = pa.Table.from_batches([ExamplesToRecordBatchDecoder().DecodeBatch(data.records)])
    return io.column_fingerprints(table, feature)


class BaseExampleGen(Component):
    """What every ExampleGen shares: ``output_config``, checked when the pipeline is defined."""

    SPEC = ComponentSpec(
        outputs={"examples": Examples},
        parameters={"output_config": ParameterSpec(dict, default=None)},
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        split_config(self.parameters["output_config"])  # a bad config fails at definition, not at run


class FileBasedExampleGen(BaseExampleGen):
    """ExampleGens over files in ``input_base``: ``input_config`` split patterns with ``{SPAN}``,
    ``{VERSION}`` and date placeholders, and ``range_config`` (see :mod:`mlpipe.io.input_patterns`).

    Subclasses set ``DEFAULT_PATTERN`` (the files read without an ``input_config``) and implement
    ``read_split_files`` over the resolved files of each split.
    """

    SPEC = ComponentSpec(
        outputs={"examples": Examples},
        parameters={
            "input_base": ParameterSpec(str),
            "input_config": ParameterSpec(dict, default=None),
            "range_config": ParameterSpec(dict, default=None),
            "output_config": ParameterSpec(dict, default=None),
        },
    )
    DEFAULT_PATTERN: ClassVar[str] = "*"
    # The input format of mlpipe.components.beam_example_gen, used when beam_pipeline_args name a runner.
    BEAM_FORMAT: ClassVar[str | None] = None

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        splits = check_input_config(
            self.parameters["input_config"], self.parameters["range_config"], self.DEFAULT_PATTERN
        )
        if len(splits) > 1 and self.parameters["output_config"]:
            raise DefinitionError(
                f"{self.id}: input_config has splits {[s.name for s in splits]}, so the output splits are "
                f"those; drop output_config (it hash-splits a single input split)"
            )

    @classmethod
    def execute(cls, ctx: ExecutionContext) -> None:
        from mlpipe.io.beam import names_runner

        params = ctx.parameters
        splits = check_input_config(params["input_config"], params["range_config"], cls.DEFAULT_PATTERN)
        resolved = resolve_input(params["input_base"], splits, params["range_config"])
        if cls.BEAM_FORMAT and names_runner(ctx.beam_pipeline_args):  # ingest on the named runner
            from mlpipe.components.beam_example_gen import write_splits_with_beam

            write_splits_with_beam(ctx, cls.BEAM_FORMAT, resolved.files)
        else:
            write_splits(ctx, cls.read_split_files(resolved.files))
        record_input(ctx, resolved)

    @staticmethod
    def read_split_files(files: dict[str, list[str]]) -> InputRecords:
        """The examples in the files of each input split (split name -> file paths)."""
        raise NotImplementedError


def record_input(ctx: ExecutionContext, resolved: ResolvedInput) -> None:
    """Span and version as TFX records them (INT properties), plus what was read, for lineage."""
    out = ctx.outputs["examples"]
    out.set_property("span", resolved.span)
    out.set_property("version", resolved.version)
    if len(resolved.spans) > 1:
        out.set_custom_property("spans", resolved.spans)
    out.set_custom_property("input_files", [f for files in resolved.files.values() for f in files])
    if resolved.spans:
        ctx.log.info("span %d, version %d (spans read: %s)", resolved.span, resolved.version, resolved.spans)


def encode_tables(
    tables: dict[str, pa.Table],
    to_examples: Callable[[pa.Table], pa.Table],
    row_fingerprints: Callable[[pa.Table], np.ndarray] | None,
) -> InputRecords:
    """Encode the tables of the input splits (split name -> table) as one set of examples.

    Types are decided over all splits at once (``to_examples``), so a feature has one type in
    train and eval. ``row_fingerprints(raw table)`` hashes rows for a hash split; without it the
    encoded records are hashed.
    """
    from mlpipe.io import examples as io

    names = list(tables)
    raw = io.concat_same_columns([tables[n] for n in names], [f"split {n!r}" for n in names])
    typed = to_examples(raw)
    records = io.encode_examples(typed)
    counts = {n: tables[n].num_rows for n in names}
    if row_fingerprints is None:
        return InputRecords(records, counts, lambda: io.record_fingerprints(records), typed)
    return InputRecords(records, counts, lambda: row_fingerprints(raw), typed)


class CsvExampleGen(FileBasedExampleGen):
    """Reads CSV files (default: every ``*.csv`` in ``input_base``); types and missing values as in
    :mod:`mlpipe.io.examples`."""

    DEFAULT_PATTERN = "*.csv"
    BEAM_FORMAT = "csv"

    @staticmethod
    def read_split_files(files: dict[str, list[str]]) -> InputRecords:
        from mlpipe.io import examples as io

        tables = {name: io.read_csv_strings(paths) for name, paths in files.items()}
        # hashing the row text keeps a row's split independent of the types inferred for it
        return encode_tables(tables, io.type_csv_columns, io.row_fingerprints)


class ImportExampleGen(FileBasedExampleGen):
    """Reads TFRecord files of serialized tf.Example, gzipped or not (default: every non-hidden file
    in ``input_base``); one input split is re-split by a hash of each record's bytes."""

    BEAM_FORMAT = "tfrecord"

    @staticmethod
    def read_split_files(files: dict[str, list[str]]) -> InputRecords:
        from mlpipe.io import examples as io

        records: list[bytes] = []
        counts = {}
        for name, paths in files.items():
            split_records = io.read_tfrecords(paths)
            if not split_records:
                raise DataError(
                    f"input split {name!r}: no TFRecord records in {len(paths)} file(s) {paths[:3]}; "
                    f"expected tf.Example records"
                )
            records += split_records
            counts[name] = len(split_records)
        return InputRecords(records, counts, lambda: io.record_fingerprints(records))
