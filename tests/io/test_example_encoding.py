"""encode_examples writes tf.Example bytes itself: same Examples as tfx_bsl's encoder, fixed bytes.

Records are parsed with the real ``tensorflow.Example`` message, built from the descriptors that
TensorFlow's generated ``example_pb2``/``feature_pb2`` modules carry (read from the installed
files, so the ~20 s TensorFlow import is not needed), and compared with the records of the
tfx_bsl-based encoder this one replaced (kept below as the reference).
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os
import struct
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlpipe.errors import DataError
from mlpipe.io import examples as io

pytest.importorskip("tfx_bsl")

TAXI_CSV = Path(__file__).resolve().parents[2] / "examples" / "data" / "chicago_taxi.csv"
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


@cache
def _example_class() -> type:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.origin is None:
        pytest.skip("tensorflow's example.proto descriptors are not installed")
    folder = os.path.join(os.path.dirname(spec.origin), "core", "example")
    pool = descriptor_pool.DescriptorPool()  # private: no clash with TensorFlow's own registration
    for module in ("feature_pb2.py", "example_pb2.py"):
        tree = ast.parse(Path(folder, module).read_text())
        (serialized,) = [
            node.args[0].value
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile"
        ]
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(serialized))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def _parsed(record: bytes) -> dict[str, tuple[str, list]]:
    """A record as {feature: (kind, values)}, floats as their float32 bits (so nan == nan)."""
    example = _example_class().FromString(record)
    out = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        if kind == "float_list":
            values = [struct.pack("<f", v) for v in values]
        out[name] = (kind, values)
    return out


def _tfx_bsl_encode(table: pa.Table) -> list[bytes]:
    """tfx_bsl's C++ coder (``RecordBatchToExamplesEncoder``): a null is a feature without a kind,
    an empty list one without values. For a table of CSV cells (empty cells as empty lists) the
    nulls of typed columns are given to it as empty lists, as TFX's CsvExampleGen writes them."""
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

    empty_lists = (table.schema.metadata or {}).get(b"mlpipe.nulls") == b"empty_lists"
    table = table.combine_chunks()
    arrays = []
    for column in table.columns:
        column = column.chunk(0) if column.num_chunks else pa.array([], column.type)
        if pa.types.is_null(column.type):
            arrays.append(pa.array([None] * len(column), pa.large_list(pa.int64())))
            continue
        if not pa.types.is_list(column.type):
            valid = column.is_valid().to_numpy(zero_copy_only=False)
            offsets = pa.array(np.concatenate([[0], np.cumsum(valid)]).astype(np.int32))
            mask = None if empty_lists else pa.array(~valid)
            column = pa.ListArray.from_arrays(offsets, column.drop_null(), mask=mask)
        elif empty_lists:
            column = pa.ListArray.from_arrays(column.offsets, column.flatten())  # nulls: empty lists
        if column.type.value_type == pa.float64():
            column = column.cast(pa.list_(pa.float32()))
        arrays.append(column)
    batch = pa.RecordBatch.from_arrays(arrays, table.column_names)
    return RecordBatchToExamplesEncoder().encode(batch)


def _assert_same_examples(table: pa.Table, records: list[bytes]) -> None:
    expected = _tfx_bsl_encode(table)
    assert len(records) == len(expected)
    for row, (mine, theirs) in enumerate(zip(records, expected, strict=True)):
        assert _parsed(mine) == _parsed(theirs), f"row {row}"


def _every_kind() -> pa.Table:
    nan, inf = float("nan"), float("inf")
    return pa.table(
        {
            "int": pa.array([0, -1, I64_MIN, I64_MAX, None, 127, 128, 300, 2**35, None], pa.int64()),
            "small": pa.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], pa.int64()),  # one varint size
            "float": pa.array([0.1, nan, inf, -inf, 1e300, None, -0.0, 3.4028235677973366e38, 1e-46, 2.5]),
            "text": pa.array(["", "é🙂", None, "a" * 200, "x", None, "\x00", "z", "q" * 20000, "w"]),
            "bytes": pa.array([b"\xff\x00", None, b"", b"b" * 130, None, b"c", b"d", b"e", b"f", b"g"]),
            "ints": pa.array(
                [
                    [1, -5],
                    [],
                    None,
                    [I64_MAX, I64_MIN],
                    list(range(-50, 50)),
                    None,
                    [],
                    [0],
                    [2**20] * 40,
                    [7],
                ],
                pa.list_(pa.int64()),
            ),
            "floats": pa.array(
                [
                    [1.5],
                    [],
                    None,
                    [0.1, 2.2],
                    [1.0] * 50,
                    None,
                    [],
                    [nan, -inf],
                    [1e-40],
                    [0.3, 1 + 2**-24, 1 + 3 * 2**-24],
                ],
                pa.list_(pa.float64()),
            ),
            "strings": pa.array(
                [[b"a", b""], [], None, [b"x" * 300], [b"q"] * 40, None, [], [b""], [b"r"], [b"s", b"t"]],
                pa.list_(pa.binary()),
            ),
            "all_null": pa.array([None] * 10, pa.int64()),
            "k" * 150: pa.array([1, None, None, None, None, None, None, None, None, None], pa.int64()),
        }
    )


def test_every_kind_parses_like_the_tfx_bsl_encoding():
    table = _every_kind()
    text = table.column_names.index("text")
    as_bytes = table.set_column(text, "text", table.column(text).cast(pa.binary()))
    records = io.encode_examples(table)
    _assert_same_examples(as_bytes, records)  # tfx_bsl's coder takes no string columns
    assert io.encode_examples(as_bytes) == records  # text is written as its UTF-8 bytes


def test_values_missing_features_and_empty_lists():
    rows = [_parsed(record) for record in io.encode_examples(_every_kind())]
    first = rows[0]
    assert first["int"] == ("int64_list", [0]) and first["text"] == ("bytes_list", [b""])
    assert first["float"] == ("float_list", [struct.pack("<f", 0.1)])
    assert rows[2]["int"] == ("int64_list", [I64_MIN]) and rows[3]["int"] == ("int64_list", [I64_MAX])
    assert rows[1]["text"] == ("bytes_list", ["é🙂".encode()])
    assert math.isnan(struct.unpack("<f", rows[1]["float"][1][0])[0])
    assert rows[4]["float"] == ("float_list", [struct.pack("<f", math.inf)])  # 1e300 overflows float32
    assert rows[8]["float"] == ("float_list", [struct.pack("<f", 0.0)])  # 1e-46 underflows
    # a null: a feature without a kind (what tfx_bsl and TFX's dict_to_example write for None)
    assert rows[4]["int"] == rows[1]["bytes"] == rows[0]["all_null"] == (None, [])
    assert rows[1]["ints"] == ("int64_list", []) and rows[1]["floats"] == ("float_list", [])
    assert rows[1]["strings"] == ("bytes_list", [])  # an empty list: present, without values
    assert rows[2]["ints"] == rows[2]["floats"] == rows[2]["strings"] == (None, [])
    assert rows[8]["text"] == ("bytes_list", [b"q" * 20000])
    halfway = [struct.pack("<f", v) for v in (0.3, 1.0, 1 + 2**-22)]  # float32 rounds to even
    assert rows[9]["floats"] == ("float_list", halfway)
    assert rows[0]["k" * 150] == ("int64_list", [1]) and rows[1]["k" * 150] == (None, [])
    # empty CSV cells: empty lists of the column's kind, as TFX's CsvExampleGen; no kind without a type
    csv = io.with_empty_cells_as_empty_lists(_every_kind())
    rows = [_parsed(record) for record in io.encode_examples(csv)]
    assert rows[4]["int"] == ("int64_list", []) and rows[1]["bytes"] == ("bytes_list", [])
    assert rows[5]["float"] == ("float_list", []) and rows[0]["all_null"] == ("int64_list", [])
    assert rows[2]["ints"] == ("int64_list", [])  # a null list too
    untyped = io.with_empty_cells_as_empty_lists(pa.table({"n": pa.nulls(2)}))
    assert [_parsed(r) for r in io.encode_examples(untyped)] == [{"n": (None, [])}] * 2


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte, pos = data[pos], pos + 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _entries(record: bytes) -> list[tuple[str, bytes]]:
    """The key and bytes of each of an Example's feature map entries, in the order written."""
    if not record:
        return []
    length, pos = _varint(record, 1)
    assert record[0] == 0x0A and pos + length == len(record)  # Example.features, and nothing else
    entries = []
    while pos < len(record):
        assert record[pos] == 0x0A  # Features.feature: a map entry
        length, start = _varint(record, pos + 1)
        assert record[start] == 0x0A  # the entry's key
        key_length, key_start = _varint(record, start + 1)
        entries.append((record[key_start : key_start + key_length].decode(), record[pos : start + length]))
        pos = start + length
    return entries


def test_bytes_are_deterministic_canonical_and_in_column_order():
    table = _every_kind()
    records = io.encode_examples(table)
    assert io.encode_examples(table) == records  # protobuf's own map order differs run to run
    for record in records:
        present = _parsed(record)
        assert [key for key, _ in _entries(record)] == [n for n in table.column_names if n in present]
        # byte for byte what protobuf writes, but for the order of the map's entries
        canonical = _example_class().FromString(record).SerializeToString(deterministic=True)
        assert sorted(_entries(record)) == sorted(_entries(canonical)) and len(record) == len(canonical)


def test_rows_without_values_keep_their_features():
    table = pa.table({"a": pa.array([None, 1, None], pa.int64()), "b": pa.array([None] * 3, pa.null())})
    records = io.encode_examples(table)
    assert [_parsed(r) for r in records] == [
        {"a": (None, []), "b": (None, [])},
        {"a": ("int64_list", [1]), "b": (None, [])},
        {"a": (None, []), "b": (None, [])},
    ]
    for mine, theirs in zip(records, _tfx_bsl_encode(table), strict=True):
        assert sorted(_entries(mine)) == sorted(_entries(theirs))  # byte for byte, but the map's order
    assert io.encode_examples(table.slice(0, 0)) == []
    assert io.encode_examples(pa.table({"a": pa.array([1, 2])}).drop(["a"])) == [b"", b""]
    mixed = pa.table(
        {
            "i": pa.array([1, None, 3], pa.int64()),
            "f": pa.array([None, None, 2.0]),
            "s": pa.array([b"x", None, None]),
            "l": pa.array([[1], None, []], pa.list_(pa.int64())),
        }
    )
    _assert_same_examples(mixed, io.encode_examples(mixed))
    csv = io.with_empty_cells_as_empty_lists(mixed)
    _assert_same_examples(csv, io.encode_examples(csv))


def test_batches_and_chunks_do_not_change_the_records(monkeypatch):
    table = _every_kind()
    expected = io.encode_examples(table)
    chunked = pa.concat_tables([table.slice(0, 4), table.slice(4, 1), table.slice(5)])
    monkeypatch.setattr(io, "_BATCH_ROWS", 3)  # batches where a column is all null, or has no nulls
    assert io.encode_examples(chunked) == expected


def test_encode_example_array_is_encode_examples_in_arrow(monkeypatch):
    table = _every_kind()
    monkeypatch.setattr(io, "_BATCH_ROWS", 3)  # several batches, concatenated
    array = io.encode_example_array(table)
    assert array.type == pa.large_binary() and array.to_pylist() == io.encode_examples(table)


def _crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) bit by bit: the oracle for framing."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _tfrecord(record: bytes) -> bytes:
    """One TFRecord frame as TensorFlow's record_writer.cc writes it (masked CRCs)."""

    def masked(data: bytes) -> bytes:
        crc = _crc32c(data)
        return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

    length = struct.pack("<Q", len(record))
    return length + masked(length) + record + masked(record)


def test_frames_of_bytes_and_of_arrow_arrays_are_tfrecords():
    records = [*io.encode_examples(_every_kind()), b"", b"x" * 300]
    expected = b"".join(map(_tfrecord, records))
    sliced = pa.array([b"before", *records], pa.large_binary()).slice(1)  # offsets not from 0
    for given in (records, pa.array(records, pa.binary()), pa.array(records, pa.large_binary()), sliced):
        assert bytes(io._framed(given)) == expected


def test_long_values_take_multi_byte_lengths():
    """Heads of many distinct sizes (kept per distinct size, not per possible size)."""
    sizes = [0, 1, 127, 128, 16383, 16384, 100_000, 3_000_000]
    table = pa.table(
        {
            "blob": pa.array([b"v" * n for n in sizes]),
            "many": pa.array([list(range(n // 100)) for n in sizes], pa.list_(pa.int64())),
        }
    )
    records = io.encode_examples(table)
    _assert_same_examples(table, records)
    assert [len(_parsed(r)["blob"][1][0]) for r in records] == sizes


def test_list_with_null_element_and_unknown_types_are_rejected():
    with pytest.raises(DataError, match="column 'l' has a list with a null element"):
        io.encode_examples(pa.table({"l": pa.array([[1, None]], pa.list_(pa.int64()))}))
    with pytest.raises(DataError, match="column 's' holds struct"):
        io.encode_examples(pa.table({"s": pa.array([{"x": 1}])}))


def test_taxi_csv_parses_like_the_tfx_bsl_encoding():
    table = io.type_csv_columns(io.read_csv_strings([str(TAXI_CSV)]))
    records = io.encode_examples(table)
    assert len(records) == table.num_rows > 10_000
    _assert_same_examples(table, records)
    assert io.encode_examples(table) == records
