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
from typing import TYPE_CHECKING, Any

from mlpipe.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

EXAMPLES_FILE = "data_tfrecord-00000-of-00001.gz"
_UTF8_BOM = b"\xef\xbb\xbf"


def read_csv_strings(paths: Sequence[str]) -> pa.Table:
    """Read CSV files into one table of string columns (nulls for empty cells), checking every file.

    Values stay strings so types can be inferred over all files at once and rows can be hashed by
    their text, independent of the type a column ends up with.
    """
    return concat_same_columns([_read_one_csv(path) for path in paths], paths)


def concat_same_columns(tables: Sequence[pa.Table], sources: Sequence[str]) -> pa.Table:
    """One table from tables that must have the same columns in the same order (one per source).

    Every file of every split feeds one set of features, so a file with other columns, or with
    another type for a column, is an error named by file, not a silently half-empty feature. A
    column that is all-null in one file (Arrow type null) takes the other files' type.
    """
    import pyarrow as pa

    first = tables[0]
    for source, table in zip(sources[1:], tables[1:], strict=True):
        if table.column_names != first.column_names:
            raise DataError(
                f"{source}: columns {table.column_names} differ from {sources[0]}'s columns "
                f"{first.column_names}; all input files of one ExampleGen must have the same columns "
                f"in the same order"
            )
        for name, a, b in zip(first.column_names, first.schema.types, table.schema.types, strict=True):
            if a != b and pa.null() not in (a, b):
                raise DataError(
                    f"{source}: column {name!r} holds {b} values, but {sources[0]} holds {a}; "
                    f"give the column one type in every input file"
                )
    return pa.concat_tables(tables, promote=True)


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
    reader = csv.reader(io.StringIO(text), strict=True)
    row_start = 1
    try:
        for row in reader:
            if row and len(row) != width:
                return DataError(
                    f"{path}:{reader.line_num}: expected {width} fields as in the header, got {len(row)}; "
                    f"quote values that contain commas"
                )
            row_start = reader.line_num + 1
    except csv.Error as e:
        return DataError(
            f"{path}:{row_start}: a quote opened in this row is never closed ({e}); close it or escape "
            f'it as ""'
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


def normalize_column_types(table: pa.Table, source: str) -> pa.Table:
    """Map typed columns (Parquet, Arrow) onto the three tf.Example kinds, lists onto multi-valued
    features: integers and booleans -> int64, floats and decimals -> float64, everything else
    (strings, dates, timestamps) -> binary of its text. Nulls stay nulls (absent features).
    """
    import pyarrow as pa

    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        try:
            kind = _example_kind(column.type)
            column = column.cast(kind)  # dates and timestamps to text first: Arrow casts them to string only
            columns.append(column.cast(_text_as_binary(kind)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise DataError(
                f"{source}: column {name!r} of type {column.type} cannot become a tf.Example feature ({e}); "
                f"store it as numbers, text, or a list of those"
            ) from None
    return pa.Table.from_arrays(columns, names=table.column_names)


def _example_kind(arrow_type: pa.DataType) -> pa.DataType:
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_null(arrow_type):
        return arrow_type  # all missing here; takes another file's type when tables are concatenated
    if t.is_dictionary(arrow_type):
        return _example_kind(arrow_type.value_type)
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type):
        if t.is_list(arrow_type.value_type) or t.is_large_list(arrow_type.value_type):
            raise pa.ArrowInvalid("nested lists have no tf.Example form")
        return pa.list_(_example_kind(arrow_type.value_type))
    if t.is_integer(arrow_type) or t.is_boolean(arrow_type):
        return pa.int64()
    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return pa.float64()
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type) or t.is_fixed_size_binary(arrow_type):
        return pa.binary()
    if t.is_nested(arrow_type):
        raise pa.ArrowInvalid("structs and maps have no tf.Example form")
    return pa.string()


def _text_as_binary(kind: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if kind == pa.string():
        return pa.binary()
    if pa.types.is_list(kind):
        return pa.list_(_text_as_binary(kind.value_type))
    return kind


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


def column_fingerprints(table: pa.Table, feature: str) -> np.ndarray:
    """A deterministic 64-bit hash of one column's value in each row (a one-value list counts as
    its value); every row must have a value, or its split would be arbitrary."""
    import pyarrow as pa

    if feature not in table.column_names:
        raise DataError(
            f"partition_feature_name {feature!r} is not a column of the input (columns: "
            f"{sorted(table.column_names)}); name one of them"
        )
    values = [_partition_key(v) for v in table.column(feature).to_pylist()]
    missing = [i for i, v in enumerate(values) if v is None]
    if missing:
        raise DataError(
            f"partition_feature_name {feature!r}: {len(missing)} of {len(values)} rows have no value "
            f"(first: row {missing[0] + 1}); fill it in or partition on another column"
        )
    return row_fingerprints(pa.table({feature: pa.array(values, pa.string())}))


def _partition_key(value: Any) -> str | None:
    if isinstance(value, list):
        if len(value) != 1:
            return None if not value else "\x1f".join(str(_partition_key(v)) for v in value)
        value = value[0]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


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
    A list column (Parquet) is a multi-valued feature: its lists are the feature values as they are.
    """
    import numpy as np
    import pyarrow as pa
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

    table = table.combine_chunks()
    columns = [c.chunk(0) if c.num_chunks else pa.array([], c.type) for c in table.columns]
    for name, column in zip(table.column_names, columns, strict=True):
        if pa.types.is_list(column.type) and column.flatten().null_count:
            raise DataError(
                f"column {name!r} has a list with a null element; tf.Example features cannot hold nulls "
                f"inside a list: drop them or fill them in"
            )
    present = np.stack([c.is_valid().to_numpy(zero_copy_only=False) for c in columns], axis=1)
    group_of_row = _presence_groups(present)
    order = np.argsort(group_of_row, kind="stable")  # rows grouped, in one pass
    bounds = np.cumsum([0, *np.bincount(group_of_row)])
    encoder = RecordBatchToExamplesEncoder()
    records: list[bytes] = [b""] * table.num_rows
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        rows = order[start:end]
        take = pa.array(rows)
        wanted = [i for i in range(len(columns)) if present[rows[0], i]]
        if not wanted:
            continue  # rows with every cell missing: an empty tf.Example serializes to b""
        offsets = pa.array(np.arange(len(rows) + 1, dtype=np.int32))
        arrays = [_feature_values(columns[i].take(take), offsets) for i in wanted]
        batch = pa.RecordBatch.from_arrays(arrays, [table.column_names[i] for i in wanted])
        for row, record in zip(rows, encoder.encode(batch), strict=True):
            records[row] = record
    return records


def _presence_groups(present: np.ndarray) -> np.ndarray:
    """A group number per row, equal for rows with the same present columns.

    Up to 63 columns the pattern is one integer (a 1-D unique is ~20x faster than ``axis=0``).
    """
    import numpy as np

    if present.shape[1] <= 63:
        key = present.astype(np.int64) @ (np.int64(1) << np.arange(present.shape[1], dtype=np.int64))
        return np.unique(key, return_inverse=True)[1].reshape(-1)
    return np.unique(np.packbits(present, axis=1), axis=0, return_inverse=True)[1].reshape(-1)


def _feature_values(values: pa.Array, single_offsets: pa.Array) -> pa.Array:
    """The list-per-row array the encoder takes: a list column as is, a scalar column one value per
    row; floats as float32, tf.Example's only float kind."""
    import pyarrow as pa

    if pa.types.is_list(values.type):
        if values.type.value_type == pa.float64():
            return values.cast(pa.list_(pa.float32()))
        return values
    values = values.cast(pa.float32()) if values.type == pa.float64() else values
    return pa.ListArray.from_arrays(single_offsets, values)


def write_examples(split_dir: str, records: Iterable[bytes]) -> str:
    """Write one split in TFX's layout: a single gzipped TFRecord shard; returns its path.

    The TFRecord framing is written here (length, masked CRC32C, data, masked CRC32C) so that
    ExampleGen does not pay TensorFlow's import (~9 s); ``tf.data`` reads the files as usual.
    gzip level 1: on 100k taxi rows ~3x faster than level 6 for files ~30% larger. Compression
    runs in a second thread (zlib releases the GIL) while this one frames the next records; a
    length's header is computed once per distinct length (records of one dataset share few).
    """
    import gzip
    from concurrent.futures import Future, ThreadPoolExecutor

    os.makedirs(split_dir, exist_ok=True)
    path = os.path.join(split_dir, EXAMPLES_FILE)
    headers: dict[int, bytes] = {}
    with gzip.open(path, "wb", compresslevel=1) as f, ThreadPoolExecutor(1) as compressor:
        pending: Future[int] | None = None
        chunk: list[bytes] = []
        for record in records:
            header = headers.get(len(record))
            if header is None:
                length = struct.pack("<Q", len(record))
                header = headers[len(record)] = length + _masked_crc(length)
            chunk += (header, record, _masked_crc(record))
            if len(chunk) >= 3 * 16384:
                if pending is not None:
                    pending.result()  # one chunk in flight: the file is written in order
                pending = compressor.submit(f.write, b"".join(chunk))
                chunk = []
        if pending is not None:
            pending.result()
        f.write(b"".join(chunk))
    return path


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's checksum: CRC32C, rotated and offset so a CRC of CRCs is not trivially zero."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def columnar_path(examples_uri: str, split: str) -> str:
    """Where an ExampleGen keeps one split's typed table next to its TFRecords (Arrow IPC).

    Decoding tf.Examples back into Arrow costs ~11 us a record in tfx_bsl, ten times TFDV's
    statistics themselves, so StatisticsGen reads this copy when it exists (only our ExampleGens
    write it; other producers' Examples are decoded). It sits in a hidden folder outside the
    ``Split-*`` directories, whose every file TFX readers take for a TFRecord.
    """
    return os.path.join(examples_uri, ".columnar", f"Split-{split}.arrow")


def write_columnar(path: str, table: pa.Table) -> None:
    """Write a typed table (as given to :func:`encode_examples`) uncompressed: it is read once."""
    import pyarrow as pa

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=1 << 20)


def read_columnar_batch(path: str) -> pa.RecordBatch:
    """The split exactly as tfx_bsl's decoder returns its tf.Examples: one large_list column per
    feature present in some row (sorted by name), float32 floats, null where a row lacks it."""
    import numpy as np
    import pyarrow as pa

    with pa.memory_map(path) as source:
        table = pa.ipc.open_file(source).read_all().combine_chunks()
    names, arrays = [], []
    for name in sorted(table.column_names):
        column = table.column(name)
        column = column.chunk(0) if column.num_chunks else pa.array([], column.type)
        if column.null_count == len(column):
            continue
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        if pa.types.is_list(column.type):
            lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
            values = column.flatten()
        else:
            lengths, values = valid.astype(np.int64), column.drop_null()
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
        kind = {pa.float64(): pa.float32(), pa.binary(): pa.large_binary()}.get(values.type, values.type)
        arrays.append(pa.LargeListArray.from_arrays(offsets, values.cast(kind), mask=pa.array(~valid)))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names)


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
