"""Streamed record batches of a split against tfx_bsl's decoding of the same TFRecords.

Splits are written here in both layouts of docs/contracts.md (sharded, and the older single
file), from a table with every kind of cell: ints, floats, strings, lists, empty lists, nulls (as
Parquet/SQL write them and as CSV's empty cells), a column with no value in some shards only. Each
streamed batch must equal ``ExamplesToRecordBatchDecoder().DecodeBatch`` of the records it
covers, and the batches of all parts must cover every record once, in order.
"""

from __future__ import annotations

import gzip
import os

import pytest

from mlpipe.errors import DataError
from mlpipe.io import example_batches as eb
from mlpipe.io import examples as io
from mlpipe.io.example_stream import iter_serialized_examples
from tests.support.example_splits import write_split

ROWS = 23


def _table(empty_lists: bool):
    import pyarrow as pa

    n = ROWS
    table = pa.table(
        {
            "i": pa.array([None if k % 4 == 1 else k for k in range(n)], pa.int64()),
            "f": pa.array([None if k % 5 == 2 else k / 3 for k in range(n)]),
            "s": pa.array([None if k % 3 == 0 else f"v{k % 4}é".encode() for k in range(n)]),
            "l": pa.array(
                [[k, k + 0.5] if k % 3 else ([] if k % 2 else None) for k in range(n)], pa.list_(pa.float64())
            ),
            "late": pa.array([None] * 15 + list(range(n - 15)), pa.int64()),  # no value in the first 15 rows
            "untyped": pa.nulls(n),
        }
    )
    return io.with_empty_cells_as_empty_lists(table) if empty_lists else table


def _records(uri: str, split: str) -> list[bytes]:
    return io.read_examples(os.path.join(uri, f"Split-{split}"))


def _check_against_decoder(batches, records: list[bytes], start: int = 0) -> int:
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    decoder = ExamplesToRecordBatchDecoder()
    for batch in batches:
        expected = decoder.DecodeBatch(records[start : start + batch.num_rows])
        assert batch.equals(expected), (start, batch.schema, expected.schema)
        start += batch.num_rows
    return start


@pytest.mark.parametrize("empty_lists", [False, True])
@pytest.mark.parametrize("shards", [None, 1, 3])
@pytest.mark.parametrize("batch_rows", [4, 7, 100])
def test_columnar_batches_are_the_decoded_records(tmp_path, shards, empty_lists, batch_rows):
    uri = str(tmp_path)
    write_split(uri, "train", _table(empty_lists), shards)
    records = _records(uri, "train")
    assert len(records) == ROWS
    assert len(eb.columnar_files(uri, "train")) == (shards or 1)
    batches = list(eb.iter_record_batches(uri, "train", batch_rows))
    assert max(b.num_rows for b in batches) <= batch_rows
    assert _check_against_decoder(batches, records) == ROWS


@pytest.mark.parametrize("shards", [None, 3])
@pytest.mark.parametrize("parts", [2, 3, 30])
def test_parts_cover_every_row_once_in_order(tmp_path, shards, parts):
    uri = str(tmp_path)
    write_split(uri, "train", _table(True), shards)
    records = _records(uri, "train")
    start = 0
    for part in range(parts):
        start = _check_against_decoder(eb.iter_record_batches(uri, "train", 5, part, parts), records, start)
    assert start == ROWS


@pytest.mark.parametrize("parts", [1, 2])
def test_records_are_decoded_when_there_is_no_columnar_copy(tmp_path, parts):
    import shutil

    uri = str(tmp_path)
    write_split(uri, "train", _table(True), 3)
    shutil.rmtree(tmp_path / ".columnar")
    assert eb.columnar_files(uri, "train") == []
    decoded = [list(eb.iter_record_batches(uri, "train", 4, part, parts)) for part in range(parts)]
    assert sum(b.num_rows for part in decoded for b in part) == ROWS
    files = io.example_files(str(tmp_path / "Split-train"))
    for part in range(parts):  # part k: shards k, k + parts, ... in order
        _check_against_decoder(decoded[part], io.read_tfrecords(files[part::parts]))


def test_serialized_examples_stream_in_batches_across_shards(tmp_path):
    uri = str(tmp_path)
    write_split(uri, "train", _table(False), 3)
    split_dir = str(tmp_path / "Split-train")
    batches = list(iter_serialized_examples(split_dir, 5))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert [r for b in batches for r in b] == io.read_tfrecords(io.example_files(split_dir))
    assert [r for b in iter_serialized_examples(split_dir, 100, 1, 2) for r in b] == io.read_tfrecords(
        io.example_files(split_dir)[1:2]
    )


def test_corrupt_record_names_file_and_byte(tmp_path):
    split_dir = tmp_path / "Split-train"
    io.write_examples(str(split_dir), [b"abc", b"defg"])
    (path,) = split_dir.glob("*.gz")
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[16 + 3 + 12] ^= 1  # first byte of the second record
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match=rf"{path}: record at byte 19 fails its CRC32C check"):
        list(iter_serialized_examples(str(split_dir), 10))
    path.write_bytes(gzip.compress(bytes(raw[:33])))  # cut inside the second record
    with pytest.raises(DataError, match=rf"{path}: record at byte 19 fails"):
        list(iter_serialized_examples(str(split_dir), 10))
    path.write_bytes(b"\x1f\x8bnot gzip at all")
    with pytest.raises(DataError, match=rf"{path}: truncated or not gzip"):
        list(iter_serialized_examples(str(split_dir), 10))


def _schema(types: dict[str, str]):
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for name, kind in types.items():
        schema.feature.add(name=name, type=getattr(schema_pb2, kind))
    return schema


# Features in an order of their own; "f" left out, "absent" in no record, "untyped" never valued.
_GIVEN_SCHEMA = {"s": "BYTES", "i": "INT", "l": "FLOAT", "late": "INT", "absent": "FLOAT", "untyped": "INT"}


@pytest.mark.parametrize("empty_lists", [False, True])
@pytest.mark.parametrize("shards", [None, 3])
def test_conformed_batches_are_what_the_decoder_with_a_schema_returns(tmp_path, shards, empty_lists):
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    uri = str(tmp_path)
    write_split(uri, "train", _table(empty_lists), shards)
    records = _records(uri, "train")
    decoder = ExamplesToRecordBatchDecoder(_schema(_GIVEN_SCHEMA).SerializeToString())
    target = decoder.ArrowSchema()
    assert eb.columnar_conforms(eb.columnar_files(uri, "train"), target)
    start = 0
    for batch in eb.iter_record_batches(uri, "train", 5):
        expected = decoder.DecodeBatch(records[start : start + batch.num_rows])
        conformed = eb.conform(batch, target)
        assert conformed.equals(expected), (start, conformed.to_pydict(), expected.to_pydict())
        start += batch.num_rows
    assert start == ROWS


def test_a_schema_typing_a_column_otherwise_does_not_conform(tmp_path):
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    uri = str(tmp_path)
    write_split(uri, "train", _table(True), 3)
    files = eb.columnar_files(uri, "train")
    for kind in ("FLOAT", "BYTES"):
        target = ExamplesToRecordBatchDecoder(_schema({"i": kind}).SerializeToString()).ArrowSchema()
        assert not eb.columnar_conforms(files, target)
