"""ExampleGen as a Beam pipeline, for when ``beam_pipeline_args`` name a runner (Flink, Spark,
Dataflow, a portable job server): ingestion then runs on that runner's workers like the other data
components.

It writes what the in-process ExampleGen writes, record for record: the same typed values encoded
by the same encoder (:func:`mlpipe.io.examples.encode_examples`), each row in the same split (the
same row hash, :func:`mlpipe.io.examples.row_fingerprints` of the CSV text, or the record or
partition-feature hash, taken modulo the ``output_config`` buckets), the same row counts
(``num_rows_<split>``), in TFX's shard naming ``Split-<name>/data_tfrecord-SSSSS-of-NNNNN.gz``. No
columnar copy (``.columnar/``) is written: readers decode the TFRecords instead.

How it is distributed. Each input file is read by one worker into chunks of ``CHUNK_ROWS`` rows
(Arrow IPC between steps: a pickled Arrow slice would carry its whole file's buffers); the chunks
are spread over the workers to be typed, hashed, encoded and written, one gzipped TFRecord file per
chunk and split. A CSV file is read whole by one worker (quoted values may span lines, so a file
cannot be cut at arbitrary bytes): give a large input as many files. Parquet files are read a
batch at a time, TFRecord files (ImportExampleGen) a chunk of records at a time.

CSV types follow the in-process rule over **all rows of all files** (a Beam combine): each chunk's
columns get their kinds by :func:`mlpipe.io.column_kinds.infer_kinds`, a column's kind is the
widest of its chunks' (:func:`~mlpipe.io.column_kinds.wider`: no value < INT < FLOAT < BYTES,
TFX's ``_InferValueType`` order: an integer column with one float is FLOAT, anything with one
text is BYTES), and every chunk is then converted by :func:`~mlpipe.io.column_kinds.apply_kinds`,
as the in-process reader converts its blocks — exactly the types it infers over the whole input.

Storage. Workers write into the Examples artifact's directory (a ``.beam-tmp`` folder, one file per
chunk named by its position and row count); the launching process then renames the files into
their shards in input order and records the counts. So the pipeline root must be a file system
every worker and the launching process share (NFS, a mounted volume; ``docs/scaling.md``).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import apache_beam as beam

from mlpipe.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

    from mlpipe.dsl.context import ExecutionContext

FORMATS = ("csv", "parquet", "tfrecord")
CHUNK_ROWS = 1 << 17
TMP_DIR = ".beam-tmp"
SHARD_PREFIX = "data_tfrecord"

# Chunk key: (input split index, file index, chunk index); a written chunk is named by it and its rows.
_CHUNK_FILE = re.compile(r"^(\d{5})-(\d{6})-(\d{7})-(\d+)\.gz$")


def write_splits_with_beam(ctx: ExecutionContext, fmt: str, files: dict[str, list[str]]) -> None:
    """Read the files of each input split (split name -> paths) in ``fmt`` with Beam, on the
    runner of ``ctx.beam_pipeline_args``, and write the Examples artifact's splits."""
    from mlpipe.components.example_gen import partition_feature, split_config
    from mlpipe.io.beam import beam_pipeline_options

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {FORMATS}")
    out = ctx.outputs["examples"]
    input_splits = list(files)
    if len(input_splits) == 1:
        splits = split_config(ctx.parameters["output_config"])
        feature = partition_feature(ctx.parameters["output_config"])
    else:  # several input splits are the output splits, as they are
        splits, feature = [(name, 0) for name in input_splits], None
    columns = _check_columns(fmt, files)
    sources = [(i, j, path) for i, name in enumerate(input_splits) for j, path in enumerate(files[name])]
    tmp = os.path.join(out.uri, TMP_DIR)
    shutil.rmtree(tmp, ignore_errors=True)
    options = beam_pipeline_options(ctx.beam_pipeline_args)
    try:
        with beam.Pipeline(options=options) as p:
            chunks = (
                p
                | "Files" >> beam.Create(sources)
                | "SpreadFiles" >> beam.Reshuffle()
                | "Read" >> beam.FlatMap(_read_chunks, fmt, columns)
                | "SpreadChunks" >> beam.Reshuffle()
            )
            kinds = None
            if fmt == "csv":
                kinds = beam.pvalue.AsSingleton(
                    chunks
                    | "Kinds" >> beam.Map(_chunk_kinds)
                    | "WidestKinds" >> beam.CombineGlobally(_WidestKinds())
                )
            _ = (
                chunks
                | "EncodeAndSplit"
                >> beam.FlatMap(_encode_and_split, fmt, kinds, splits, feature, len(input_splits))
                | "Write" >> beam.Map(_write_chunk, tmp)
            )
    except Exception as e:  # a worker's DataError arrives as the runner's error with its traceback
        error = _data_error_in(e)
        if error is None:
            raise
        raise DataError(error) from None
    rows = _publish_shards(tmp, out, [name for name, _ in splits], input_splits, files)
    for name, count in rows.items():
        out.set_custom_property(f"num_rows_{name}", count)
        ctx.log.info("split %s: %d rows (Beam)", name, count)
    out.split_names = list(rows)


def _check_columns(fmt: str, files: dict[str, list[str]]) -> list[str] | None:
    """Check here, before any worker starts, that every file has the same columns (the in-process
    ExampleGen's check and error); the CSV header every chunk must have, None for other formats."""
    import pyarrow as pa

    from mlpipe.io import examples as io

    paths = [path for split_paths in files.values() for path in split_paths]
    if fmt == "csv":
        headers = [_csv_header(path) for path in paths]
        io.concat_same_columns([pa.table({name: pa.nulls(0) for name in h}) for h in headers], paths)
        return headers[0]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        schemas = []
        for path in paths:
            try:
                schemas.append(pq.read_schema(path))
            except (pa.ArrowInvalid, OSError) as e:
                raise DataError(f"{path}: not a readable Parquet file ({e}); {_PARQUET_HINT}") from None
        empty = [
            io.normalize_column_types(s.empty_table(), path) for s, path in zip(schemas, paths, strict=True)
        ]
        io.concat_same_columns(empty, paths)
    return None


_PARQUET_HINT = "remove it from input_base or narrow the input_config pattern to the Parquet files"


def _csv_header(path: str) -> list[str]:
    """The column names of a CSV file (its first non-blank record), read as ``parse_csv`` reads them."""
    import csv

    with open(path, encoding="utf-8-sig", newline="", errors="replace") as f:
        header = next((row for row in csv.reader(f) if row), None)
    if header is None:  # the in-process reader's error for it
        raise DataError(f"{path}: file is empty; expected a header line and at least one row")
    return header


def _read_chunks(source: tuple[int, int, str], fmt: str, columns: list[str] | None) -> Iterator[tuple]:
    """One file as ((input split, file, chunk), payload) pairs: Arrow IPC bytes of a string (CSV)
    or typed (Parquet) table, or a list of serialized records (TFRecord)."""
    from mlpipe.io import examples as io

    split_index, file_index, path = source
    if fmt == "tfrecord":
        records = io.read_tfrecords([path])
        for k, start in enumerate(range(0, len(records), CHUNK_ROWS)):
            yield (split_index, file_index, k), records[start : start + CHUNK_ROWS]
        return
    if fmt == "csv":
        with open(path, "rb") as f:
            table = io.parse_csv(path, f.read())
        if table.column_names != columns:
            raise DataError(
                f"{path}: columns {table.column_names} differ from the first file's columns {columns}"
            )
        batches: Iterator[pa.Table] = (
            table.slice(start, CHUNK_ROWS) for start in range(0, table.num_rows, CHUNK_ROWS)
        )
    else:
        batches = _parquet_batches(path)
    for k, batch in enumerate(batches):
        yield (split_index, file_index, k), _to_ipc(batch)


def _parquet_batches(path: str) -> Iterator[pa.Table]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlpipe.io import examples as io

    try:
        reader = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({e}); {_PARQUET_HINT}") from None
    if reader.metadata.num_rows == 0:
        raise DataError(f"{path}: Parquet file has no rows; add data or remove the file")
    for batch in reader.iter_batches(batch_size=CHUNK_ROWS):
        yield io.normalize_column_types(pa.Table.from_batches([batch]), path)


def _to_ipc(table: pa.Table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _from_ipc(data: bytes) -> pa.Table:
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_all()


def _chunk_kinds(chunk: tuple) -> list[str]:
    """The kind each column of a CSV chunk would get alone (the in-process typing rule)."""
    from mlpipe.io.column_kinds import infer_kinds

    return list(infer_kinds(_from_ipc(chunk[1])).values())


class _WidestKinds(beam.CombineFn):
    """Per column, the widest kind over all chunks (:func:`mlpipe.io.column_kinds.wider`)."""

    def create_accumulator(self) -> list[str] | None:
        return None

    def add_input(self, widest: list[str] | None, kinds: list[str]) -> list[str]:
        from mlpipe.io.column_kinds import wider

        return kinds if widest is None else [wider(a, b) for a, b in zip(widest, kinds, strict=True)]

    def merge_accumulators(self, accumulators: Any) -> list[str] | None:
        widest = None
        for kinds in accumulators:
            if kinds is not None:
                widest = self.add_input(widest, kinds)
        return widest

    def extract_output(self, widest: list[str] | None) -> list[str] | None:
        return widest


def _encode_and_split(
    chunk: tuple, fmt: str, kinds: list[str] | None, splits: list[tuple[str, int]], feature: str | None,
    input_splits: int,
) -> Iterator[tuple[str, tuple[int, int, int], list[bytes]]]:  # fmt: skip
    """A chunk's records, divided into the output splits: by input split when there are several,
    else by the hash of each row modulo the ``output_config`` buckets (the in-process rule)."""
    from mlpipe.components.example_gen_streaming import assign_splits
    from mlpipe.io import examples as io
    from mlpipe.io.column_kinds import apply_kinds

    key, payload = chunk
    table = None
    if fmt == "tfrecord":
        records = payload
    else:
        raw = _from_ipc(payload)
        if fmt == "csv":  # kinds are the widest of all chunks': nothing to widen, no text to refuse
            assert kinds is not None
            by_name = dict(zip(raw.column_names, kinds, strict=True))
            table = io.with_empty_cells_as_empty_lists(apply_kinds(raw, by_name))
        else:
            table = raw
        records = io.encode_examples(table)
    if input_splits > 1:
        yield splits[key[0]][0], key, records
        return
    if feature is not None:
        fingerprints = io.column_fingerprints(table if table is not None else _decoded(records), feature)
    elif fmt == "csv":
        fingerprints = io.row_fingerprints(raw)  # the row's text: its split does not depend on its type
    else:
        fingerprints = io.record_fingerprints(records)
    for name, rows in assign_splits(fingerprints, splits).items():
        yield name, key, [records[i] for i in rows]


def _decoded(records: list[bytes]) -> pa.Table:
    import pyarrow as pa
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    return pa.Table.from_batches([ExamplesToRecordBatchDecoder().DecodeBatch(records)])


def _write_chunk(item: tuple[str, tuple[int, int, int], list[bytes]], tmp: str) -> None:
    """Write one chunk's records of one split (if any) as a gzipped TFRecord file named by the
    chunk's key and row count; written aside and renamed, so a retried bundle leaves one file."""
    from mlpipe.io.examples import write_examples

    split, (i, j, k), records = item
    if not records:
        return
    split_dir = os.path.join(tmp, split)
    name = f"{i:05d}-{j:06d}-{k:07d}-{len(records)}.gz"
    partial = write_examples(split_dir, records, f".{name}.{uuid.uuid4().hex}")
    os.replace(partial, os.path.join(split_dir, name))


def _publish_shards(
    tmp: str, out: Any, split_names: list[str], input_splits: list[str], files: dict[str, list[str]]
) -> dict[str, int]:
    """Move the written chunks into each split's shards, in input order; the rows of each split."""
    from mlpipe.io.examples import write_examples

    rows: dict[str, int] = {}
    per_input = dict.fromkeys(range(len(input_splits)), 0)
    for split in split_names:
        split_tmp = os.path.join(tmp, split)
        written = sorted(
            f for f in (os.listdir(split_tmp) if os.path.isdir(split_tmp) else []) if _CHUNK_FILE.match(f)
        )
        split_dir = out.split_uri(split)
        shutil.rmtree(split_dir, ignore_errors=True)
        os.makedirs(split_dir)
        rows[split] = 0
        for n, name in enumerate(written):
            os.replace(os.path.join(split_tmp, name), os.path.join(split_dir, _shard(n, len(written))))
            match = _CHUNK_FILE.match(name)
            assert match is not None
            rows[split] += int(match.group(4))
            per_input[int(match.group(1))] += int(match.group(4))
        if not written:  # an empty split still has its one (empty) file, as in process
            write_examples(split_dir, [], _shard(0, 1))
    shutil.rmtree(tmp, ignore_errors=True)
    for i, name in enumerate(input_splits):
        if not per_input[i]:
            raise DataError(
                f"input split {name!r}: no records in {len(files[name])} file(s) {files[name][:3]}"
            )
    return rows


def _shard(index: int, count: int) -> str:
    return f"{SHARD_PREFIX}-{index:05d}-of-{count:05d}.gz"


def _data_error_in(error: BaseException) -> str | None:
    """The message of a ``DataError`` a worker raised, found in the runner's error text."""
    match = re.search(r"mlpipe\.errors\.DataError: (.+)", str(error))
    return match.group(1).strip() if match else None
