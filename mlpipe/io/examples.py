"""Examples on disk: CSV files in, gzipped TFRecords of ``tf.Example`` per split out, and back.

Nothing here imports TensorFlow: CSV parsing is pyarrow/pandas, tf.Example encoding is tfx_bsl's
C++ coder, and the TFRecord framing is written and read directly, so ExampleGen starts in about a
second and the CSV checks are testable without TensorFlow.

Typing rule (the one TFX's CsvExampleGen applies): a column whose every present value is an integer
is INT; one with any float becomes FLOAT; anything else is BYTES. An empty cell is *missing*: the
feature is absent from that row's ``tf.Example``, never 0 or ``""``.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import struct
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from mlpipe.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

EXAMPLES_FILE = "data_tfrecord-00000-of-00001.gz"
_UTF8_BOM = b"\xef\xbb\xbf"


def list_csv_files(input_base: str) -> list[str]:
    """The ``*.csv`` files directly in ``input_base``, sorted so reruns read them in the same order."""
    if not os.path.isdir(input_base):
        raise DataError(
            f"input_base {input_base!r} is not a directory; pass the folder holding the *.csv files"
        )
    files = sorted(glob.glob(os.path.join(input_base, "*.csv")))
    if not files:
        raise DataError(f"no *.csv file in {input_base!r}; put the CSV files directly in that folder")
    return files


def read_csv_strings(paths: Sequence[str]) -> pa.Table:
    """Read CSV files into one table of string columns (nulls for empty cells), checking every file.

    Values stay strings so types can be inferred over all files at once and rows can be hashed by
    their text, independent of the type a column ends up with.
    """
    import pyarrow as pa

    tables = [_read_one_csv(path) for path in paths]
    first = tables[0].column_names
    for path, table in zip(paths[1:], tables[1:], strict=True):
        if table.column_names != first:
            raise DataError(
                f"{path}: header {table.column_names} differs from {paths[0]}'s header {first}; "
                f"all CSV files of one input_base must have the same columns in the same order"
            )
    return pa.concat_tables(tables)


def _read_one_csv(path: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if not data.strip():
        raise DataError(f"{path}: file is empty; expected a header line and at least one row")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: byte {data[e.start : e.start + 1]!r} is not UTF-8; re-encode the file as UTF-8"
        ) from None
    header = next(csv.reader(io.StringIO(text)))
    seen: set[str] = set()
    for name in header:
        if not name:
            raise DataError(f"{path}:1: header has an empty column name; name every column")
        if name in seen:
            raise DataError(f"{path}:1: column name {name!r} appears twice in the header; rename one")
        seen.add(name)
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header}, null_values=[""], strings_can_be_null=True
    )
    try:
        table = pacsv.read_csv(pa.BufferReader(data), convert_options=convert)
    except pa.ArrowInvalid as e:
        raise _locate_ragged_row(path, text, len(header)) or DataError(
            f"{path}: cannot parse CSV: {e}"
        ) from None
    if table.num_rows == 0:
        raise DataError(f"{path}: only a header line, no rows; add data or remove the file")
    return table


def _locate_ragged_row(path: str, text: str, width: int) -> DataError | None:
    """Find the line pyarrow rejected (its message has no line number) with the slower csv module."""
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        if row and len(row) != width:
            return DataError(
                f"{path}:{reader.line_num}: expected {width} fields as in the header, got {len(row)}; "
                f"quote values that contain commas"
            )
    return None


def infer_column_types(table: pa.Table) -> pa.Table:
    """Cast each string column to int64, else float64, else binary (see the module docstring)."""
    import pyarrow as pa

    return pa.Table.from_arrays([_typed(c) for c in table.columns], names=table.column_names)


def _typed(column: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow as pa

    for target in (pa.int64(), pa.float64()):
        try:
            return column.cast(target)
        except pa.ArrowInvalid:
            continue
    return column.cast(pa.binary())


def row_fingerprints(table: pa.Table) -> np.ndarray:
    """A deterministic 64-bit hash of each row's text, for hash-bucket splits.

    Each column is dictionary-encoded so only distinct values are hashed (pandas' fixed-key
    ``hash_array``); the per-column hashes are then mixed row-wise with numpy.
    """
    import numpy as np
    import pandas as pd
    import pyarrow.compute as pc

    acc = np.zeros(table.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in table.columns:
            encoded = pc.dictionary_encode(column.combine_chunks())
            uniques = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
            value_hash = np.append(
                pd.util.hash_array(uniques, categorize=False), np.uint64(0x9E3779B97F4A7C15)
            )
            indices = encoded.indices.fill_null(len(uniques)).to_numpy()
            acc = _mix(acc * np.uint64(0x100000001B3) ^ value_hash[indices])
    return acc


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, so the low bits used by ``% buckets`` depend on every input bit."""
    import numpy as np

    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def encode_examples(table: pa.Table) -> list[bytes]:
    """Serialize each row as a ``tf.Example`` in which missing values are absent features.

    tfx_bsl's C++ encoder writes a null as an *empty* feature, so rows are grouped by which columns
    are present and each group is encoded with only those columns. Real data has few such patterns.
    """
    import numpy as np
    import pyarrow as pa
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

    table = table.combine_chunks()
    columns = [c.chunk(0) if c.num_chunks else pa.array([], c.type) for c in table.columns]
    present = np.stack([c.is_valid().to_numpy(zero_copy_only=False) for c in columns], axis=1)
    patterns, group_of_row = np.unique(np.packbits(present, axis=1), axis=0, return_inverse=True)
    group_of_row = group_of_row.reshape(-1)
    encoder = RecordBatchToExamplesEncoder()
    records: list[bytes] = [b""] * table.num_rows
    for group in range(len(patterns)):
        rows = np.flatnonzero(group_of_row == group)
        take = pa.array(rows)
        wanted = [i for i in range(len(columns)) if present[rows[0], i]]
        offsets = pa.array(np.arange(len(rows) + 1, dtype=np.int32))
        arrays = [pa.ListArray.from_arrays(offsets, _example_values(columns[i].take(take))) for i in wanted]
        batch = pa.RecordBatch.from_arrays(arrays, [table.column_names[i] for i in wanted])
        for row, record in zip(rows, encoder.encode(batch), strict=True):
            records[row] = record
    return records


def _example_values(values: pa.Array) -> pa.Array:
    """tf.Example stores floats as float32; everything else already has an Example kind."""
    import pyarrow as pa

    return values.cast(pa.float32()) if values.type == pa.float64() else values


def write_examples(split_dir: str, records: Iterable[bytes]) -> str:
    """Write one split in TFX's layout: a single gzipped TFRecord shard; returns its path.

    The TFRecord framing is written here (length, masked CRC32C, data, masked CRC32C) so that
    ExampleGen does not pay TensorFlow's import (~9 s); ``tf.data`` reads the files as usual.
    gzip level 1: on 100k taxi rows ~3x faster than level 6 for files ~30% larger.
    """
    import gzip

    os.makedirs(split_dir, exist_ok=True)
    path = os.path.join(split_dir, EXAMPLES_FILE)
    with gzip.open(path, "wb", compresslevel=1) as f:
        chunk: list[bytes] = []
        for record in records:
            length = struct.pack("<Q", len(record))
            chunk += (length, _masked_crc(length), record, _masked_crc(record))
            if len(chunk) >= 16384:
                f.write(b"".join(chunk))
                chunk.clear()
        f.write(b"".join(chunk))
    return path


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's checksum: CRC32C, rotated and offset so a CRC of CRCs is not trivially zero."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def example_files(split_dir: str) -> list[str]:
    """The gzipped TFRecord shards of one split (any ``*.gz`` name, as TFX readers accept)."""
    files = sorted(glob.glob(os.path.join(split_dir, "*.gz")))
    if not files:
        raise DataError(f"{split_dir}: no *.gz TFRecord files; expected Examples written by an ExampleGen")
    return files


def read_examples(split_dir: str) -> list[bytes]:
    """All serialized ``tf.Example`` records of one split, in file order, checksums verified."""
    return read_tfrecords(example_files(split_dir))


def read_tfrecords(paths: Sequence[str], limit: int | None = None) -> list[bytes]:
    """The records of TFRecord files, gzipped (detected by their magic bytes) or not, checksums
    verified; streamed, so ``limit`` reads only as far as the first ``limit`` records."""
    import gzip

    records: list[bytes] = []
    for path in paths:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
            offset = 0
            while limit is None or len(records) < limit:
                header = f.read(12)
                if not header:
                    break
                (length,) = struct.unpack("<Q", header[:8]) if len(header) == 12 else (-1,)
                if length < 0 or header[8:] != _masked_crc(header[:8]):
                    raise DataError(
                        f"{path}: not a TFRecord file, or corrupt at byte {offset} of its records"
                    )
                record, crc = f.read(length), f.read(4)
                if len(record) != length or crc != _masked_crc(record):
                    raise DataError(f"{path}: record at byte {offset} fails its CRC32C check")
                records.append(record)
                offset += 16 + length
    return records


def record_fingerprints(records: Sequence[bytes]) -> np.ndarray:
    """A deterministic 64-bit hash of each serialized record, for hash-bucket splits."""
    import numpy as np
    import pandas as pd

    return _mix(pd.util.hash_array(np.asarray(records, dtype=object), categorize=False))
