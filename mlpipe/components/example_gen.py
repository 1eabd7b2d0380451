"""ExampleGens: input data -> Examples (gzipped TFRecords of tf.Example, one folder per split).

The output is what TFX's ExampleGens write (``Split-<name>/data_tfrecord-*.gz``, span, version,
``split_names``), so TFX tools read it unchanged. Splits come either from the input (an
``input_config`` with several split patterns, e.g. ``train/*.csv`` and ``eval/*.csv``) or, for one
input split, from a hash of each row's content (``output_config``, default train:eval = 2:1), so
the same row lands in the same split on every run and on every machine.

Input is read in blocks and each split written as shards (``data_tfrecord-00000-of-000NN.gz``), so
memory stays bounded at any input size (:mod:`mlpipe.components.example_gen_streaming`).
Readers of tables (CSV, Parquet, SQL) also keep each split's typed rows as Arrow beside the
records (``.columnar/Split-<name>/data-00000-of-000NN.arrow``, outside the ``Split-*`` folders TFX
reads, sharded as the records: see :mod:`mlpipe.io.example_shards`), so StatisticsGen skips
decoding tf.Examples, its costliest step.

This module holds what every ExampleGen shares (the base classes) plus the CSV and TFRecord ones;
Parquet and SQL live in their own modules on the same bases.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from mlpipe.components.example_gen_streaming import (
    Block,
    Encoded,
    Reader,
    SplitPlan,
    encode_rows,
    write_streamed_splits,
)
from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, ParameterSpec
from mlpipe.errors import DataError, DefinitionError, MlpipeError
from mlpipe.io.input_patterns import ResolvedInput, check_input_config, resolve_input
from mlpipe.io.objstore import local_copies
from mlpipe.io.uris import location
from mlpipe.types.standard import Examples

if TYPE_CHECKING:
    import pyarrow as pa

# TFX's default output_config: hash buckets train:eval = 2:1.
DEFAULT_SPLITS: list[dict[str, Any]] = [
    {"name": "train", "hash_buckets": 2},
    {"name": "eval", "hash_buckets": 1},
]


def split_config(output_config: dict[str, Any] | None) -> list[tuple[str, int]]:
    """(split name, hash buckets) pairs from TFX's ``output_config`` JSON shape, checked."""
    output_shards(output_config)
    if not output_config or "split_config" not in output_config:
        return [(s["name"], s["hash_buckets"]) for s in DEFAULT_SPLITS]
    example = '{"split_config": {"splits": [{"name": "train", "hash_buckets": 2}, ...]}}'
    splits = (output_config.get("split_config") or {}).get("splits")
    if not isinstance(splits, list) or not splits:
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


def output_shards(output_config: dict[str, Any] | None) -> int | None:
    """``output_config``'s ``num_shards``: TFRecord shards per split (None: from the data's size,
    see :mod:`mlpipe.io.example_shards`). The only other key is TFX's ``split_config``."""
    config = output_config or {}
    if set(config) - {"split_config", "num_shards"}:
        raise DefinitionError(
            f"output_config must look like {{'split_config': {{'splits': [{{'name': 'train', "
            f"'hash_buckets': 2}}, ...]}}, 'num_shards': 4}} (both keys optional), got {output_config!r}"
        )
    shards = config.get("num_shards")
    if shards is not None and (
        not isinstance(shards, int) or isinstance(shards, bool) or not 1 <= shards <= 99999
    ):
        raise DefinitionError(f"output_config: num_shards must be an int from 1 to 99999, got {shards!r}")
    return shards


def partition_feature(output_config: dict[str, Any] | None) -> str | None:
    """TFX's ``split_config.partition_feature_name``: hash this feature instead of the whole row,
    so every row with the same value (a user, a trip id) lands in the same split."""
    feature = ((output_config or {}).get("split_config") or {}).get("partition_feature_name")
    if feature is not None and (not isinstance(feature, str) or not feature):
        raise DefinitionError(f"output_config: partition_feature_name must be a column name, got {feature!r}")
    return feature


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
        location(self.parameters["input_base"], f"{self.id}: input_base")  # an unknown scheme fails here
        splits = check_input_config(
            self.parameters["input_config"], self.parameters["range_config"], self.DEFAULT_PATTERN
        )
        if len(splits) > 1 and "split_config" in (self.parameters["output_config"] or {}):
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
        files = local_copies(resolved.files, ctx.tmp_dir)  # a bucket's files, downloaded to read
        if cls.BEAM_FORMAT and names_runner(ctx.beam_pipeline_args):  # ingest on the named runner
            from mlpipe.components.beam_example_gen import write_splits_with_beam

            write_splits_with_beam(ctx, cls.BEAM_FORMAT, files)
        else:
            write_streamed_splits(ctx, cls.reader(files, params), list(resolved.files))
        record_input(ctx, resolved)

    @classmethod
    def external_inputs(cls, parameters: Mapping[str, Any]) -> Mapping[str, str]:
        """The span and version the node would read now, and a fingerprint of those files (path,
        size, modification time, as TFX's input fingerprint): new or re-delivered data misses the cache."""
        splits = check_input_config(
            parameters["input_config"], parameters["range_config"], cls.DEFAULT_PATTERN
        )
        try:
            resolved = resolve_input(parameters["input_base"], splits, parameters["range_config"])
        except MlpipeError as e:  # the node itself fails with this error, in its log
            return {"files": f"unreadable ({e})"[:200]}
        fingerprint = hashlib.sha256()
        for path, size, version in _file_identities(f for files in resolved.files.values() for f in files):
            fingerprint.update(f"{path}\0{size}\0{version}\n".encode())
        return {
            "span": str(resolved.span),
            "version": str(resolved.version),
            "files": f"sha256:{fingerprint.hexdigest()[:16]}",
        }

    @staticmethod
    def reader(files: dict[str, list[str]], parameters: dict[str, Any]) -> Reader:
        """The reader of the files of each input split (split name -> file paths)."""
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


class CsvExampleGen(FileBasedExampleGen):
    """Reads CSV files (default: every ``*.csv`` in ``input_base``); types and missing values as in
    :mod:`mlpipe.io.examples`, column kinds inferred from the first block and held to by the rest
    (:mod:`mlpipe.io.column_kinds`)."""

    SPEC = ComponentSpec(
        outputs={"examples": Examples},
        parameters={
            **FileBasedExampleGen.SPEC.parameters,
            # bytes of CSV read at a time (None: csv_blocks.BLOCK_BYTES, 8 MiB); the first block is
            # the sample column kinds are inferred from (mlpipe.io.column_kinds)
            "block_bytes": ParameterSpec(int, default=None),
        },
    )
    DEFAULT_PATTERN = "*.csv"
    BEAM_FORMAT = "csv"

    @staticmethod
    def reader(files: dict[str, list[str]], parameters: dict[str, Any]) -> Reader:
        return CsvReader(files, parameters.get("block_bytes"))


class CsvReader(Reader):
    """CSV files in blocks of whole records (:mod:`mlpipe.io.csv_blocks`). Column kinds come from
    the first block of the first file (``sample``), so its size bounds how far a column's kind is
    decided on real data; rows are hash-split on their text, independent of the kinds."""

    def __init__(self, files: dict[str, list[str]], block_bytes: int | None = None):
        from mlpipe.io.csv_blocks import BLOCK_BYTES

        self.files = files
        self.block_bytes = block_bytes or BLOCK_BYTES
        self.forced: dict[str, str] = {}
        self.kinds: dict[str, str] | None = None
        self.header: list[str] | None = None

    def blocks(self) -> Iterator[Block]:
        from mlpipe.io.column_kinds import infer_kinds, wider
        from mlpipe.io.csv_blocks import csv_blocks, parse_block, read_header

        first_path = None
        for split, paths in self.files.items():
            for path in paths:
                for block in csv_blocks(path, self.block_bytes):
                    if block.first:
                        header = read_header(block)
                        if self.header is None:
                            first_path, self.header = path, header
                        elif header != self.header:
                            raise DataError(
                                f"{path}: columns {header} differ from {first_path}'s columns {self.header}; "
                                f"all input files of one ExampleGen must have the same columns in the same order"
                            )
                    assert self.header is not None  # the first block of a file sets it
                    if self.kinds is None:  # the sample: parsed here, once
                        table = parse_block(block, self.header)
                        sample = infer_kinds(table)
                        self.kinds = {n: wider(k, self.forced.get(n, k)) for n, k in sample.items()}
                        yield Block(path, split, table)
                    else:
                        yield Block(path, split, block)

    def encode(self, block: Block, plan: SplitPlan) -> Encoded:
        from mlpipe.io import examples as io
        from mlpipe.io.column_kinds import apply_kinds
        from mlpipe.io.csv_blocks import CsvBlock, parse_block

        assert self.header is not None and self.kinds is not None
        payload = block.payload
        raw = parse_block(payload, self.header) if isinstance(payload, CsvBlock) else payload
        typed = io.with_empty_cells_as_empty_lists(apply_kinds(raw, self.kinds))
        return encode_rows(block, plan, typed, None, lambda: io.row_fingerprints(raw))

    def widen(self, kinds: dict[str, str]) -> None:
        self.forced, self.kinds, self.header = dict(kinds), None, None

    def row_label(self, row: int) -> str:
        return f"data row {row} (header not counted)"

    def finished(self, rows_by_source: dict[str, int], rows_by_split: dict[str, int]) -> None:
        for paths in self.files.values():
            for path in paths:
                if not rows_by_source.get(path):
                    raise DataError(f"{path}: only a header line, no rows; add data or remove the file")

    def schema(self) -> pa.Schema | None:
        import pyarrow as pa

        from mlpipe.io import examples as io
        from mlpipe.io.column_kinds import arrow_type

        if self.kinds is None:
            return None
        table = pa.schema([(n, arrow_type(k)) for n, k in self.kinds.items()]).empty_table()
        return io.with_empty_cells_as_empty_lists(table).schema


class ImportExampleGen(FileBasedExampleGen):
    """Reads TFRecord files of serialized tf.Example, gzipped or not (default: every non-hidden file
    in ``input_base``); one input split is re-split by a hash of each record's bytes."""

    BEAM_FORMAT = "tfrecord"

    @staticmethod
    def reader(files: dict[str, list[str]], parameters: dict[str, Any]) -> Reader:
        return TFRecordReader(files)


class TFRecordReader(Reader):
    """TFRecord files streamed :data:`RECORDS_PER_BLOCK` records at a time, written as they are."""

    columnar = False
    RECORDS_PER_BLOCK = 65536

    def __init__(self, files: dict[str, list[str]]):
        self.files = files

    def blocks(self) -> Iterator[Block]:
        import itertools

        from mlpipe.io.example_stream import iter_tfrecords

        for split, paths in self.files.items():
            for path in paths:
                records = iter_tfrecords(path)
                while chunk := list(itertools.islice(records, self.RECORDS_PER_BLOCK)):
                    yield Block(path, split, chunk)

    def encode(self, block: Block, plan: SplitPlan) -> Encoded:
        from mlpipe.io import examples as io

        records = block.payload
        return encode_rows(block, plan, None, records, lambda: io.record_fingerprints(records))

    def finished(self, rows_by_source: dict[str, int], rows_by_split: dict[str, int]) -> None:
        for name, paths in self.files.items():
            if not rows_by_split.get(name):
                raise DataError(
                    f"input split {name!r}: no TFRecord records in {len(paths)} file(s) {paths[:3]}; "
                    f"expected tf.Example records"
                )


def _file_identities(paths: Iterable[str]) -> list[tuple[str, int, str]]:
    """(path, size, modification time or object version tag) of each input file, sorted: what tells
    re-delivered data from the data a cached execution read. A bucket prefix is listed once."""
    from mlpipe.io.objstore import list_objects
    from mlpipe.io.uris import is_remote

    out, listings = [], {}
    for path in sorted(paths):
        if is_remote(path):
            parent, name = path.rsplit("/", 1)
            if parent not in listings:
                listings[parent] = {o.key: o for o in list_objects(parent)}
            stored = listings[parent].get(name)
            out.append((path, stored.size if stored else -1, stored.etag if stored else "missing"))
        else:
            stat = os.stat(path)
            out.append((path, stat.st_size, str(stat.st_mtime_ns)))
    return out
