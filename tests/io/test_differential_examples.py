"""CSV, Parquet and SQL -> tf.Example, against the TFX libraries' own paths, row by row.

CSV: TFX 1.16's CsvExampleGen reads records with a quote-counting line buffer, parses each with
tfx_bsl's ``csv_decoder.ParseCSVLine``, types columns with tfx_bsl's ``ColumnTypeInferrer`` and
writes each cell with its executor's ``_int_handler``/``_float_handler``/``_bytes_handler`` (an
empty cell: an empty value list; a column of type UNKNOWN: ``tf.train.Feature()``). The ``tfx``
package cannot be installed here, so those handlers (a few lines each) are restated below from
its source; everything else is tfx_bsl's code. The same cells through tfx_bsl's
``BatchedCSVRowsToRecordBatch`` and ``RecordBatchToExamples`` differ in one documented way: an
empty cell is a null there, written as a feature without a kind.

Parquet and SQL: TFX writes a row dict with ``dict_to_example`` (``None`` -> ``Feature()``), as
tfx_bsl's ``RecordBatchToExamples`` writes a null; that encoder is the oracle here.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlpipe.io import examples as io
from tests.io.test_example_encoding import _parsed

pytest.importorskip("tfx_bsl")

DATA = Path(__file__).parents[2] / "examples" / "data"
TAXI_CSV = DATA / "chicago_taxi.csv"

# Cells TFX types and converts with Python's int()/float(): empty cells, spaces, signs, "1_000",
# nan/inf, 1e400 (inf) and 1e300 (beyond float32), integers beyond int64 (text), unicode, quoted
# commas, quotes and line breaks, a column with no value at all.
EDGE_CSV = (
    "int,spaced,big,floats,mixed,text,empty,flag\n"
    '1, 7,1,1.5,1,"a,b",,True\n'
    ",8 ,99999999999999999999,nan,2.5,é🙂,,False\n"
    '-5,+9,3,inf,,"say ""hi""",,\n'
    '9223372036854775807,1_000,,-Infinity,7,"line\nbreak",,True\n'
    "-9223372036854775808,,-4,1e400,-0,,,x\n"
    "0,0,5,1e300,3,,, \n"
    ",,,,,,,\n"
    '3,4,6,-0.0,.5,"",,""\n'
)


def _tfx_csv_cells(path: Path) -> tuple[list, list[list[bytes]]]:
    """Column infos and the cells of each record, as TFX's CsvExampleGen gets them."""
    from tfx_bsl.coders import csv_decoder

    with open(path, "rb") as f:
        header = next(csv.reader([f.readline().decode("utf-8")]))  # io_utils.load_csv_column_names
        records, buffer, quotes = [], [], 0
        for line in f:  # _ReadCsvRecordsFromTextFile: lines joined until their quotes balance
            buffer.append(line.decode("utf-8"))
            quotes += line.count(b'"')
            if quotes % 2 == 0:
                records.append("".join(buffer))
                buffer, quotes = [], 0
        assert not buffer
    parse = csv_decoder.ParseCSVLine(delimiter=",")
    parse.setup()
    rows = [cells for record in records for cells, _ in parse.process(record)]
    rows = [cells for cells in rows if cells]  # "skip blank lines"
    inferrer = csv_decoder.ColumnTypeInferrer(header, skip_blank_lines=True)
    accumulator = inferrer.create_accumulator()
    for cells in rows:
        accumulator = inferrer.add_input(accumulator, cells)
    return inferrer.extract_output(accumulator), rows


def _tfx_csv_examples(path: Path) -> list[dict]:
    """TFX 1.16's csv_example_gen/executor.py handlers, as {feature: (kind, values)} per row."""
    from tfx_bsl.coders.csv_decoder import ColumnType

    infos, rows = _tfx_csv_cells(path)
    handlers = {
        ColumnType.INT: lambda cell: ("int64_list", [int(cell)] if cell else []),
        ColumnType.FLOAT: lambda cell: ("float_list", [np.float32(float(cell)).tobytes()] if cell else []),
        ColumnType.STRING: lambda cell: ("bytes_list", [cell] if cell else []),
    }
    examples = []
    for cells in rows:
        example = {}
        for info, cell in zip(infos, cells, strict=True):
            handler = handlers.get(info.type)
            example[info.name] = handler(cell) if handler else (None, [])
        examples.append(example)
    return examples


def _mlpipe_csv_examples(path: Path) -> list[dict]:
    table = io.type_csv_columns(io.read_csv_strings([str(path)]))
    return [_parsed(record) for record in io.encode_examples(table)]


@pytest.fixture(scope="module")
def edge_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("edge") / "edge.csv"
    path.write_text(EDGE_CSV)
    return path


def test_edge_csv_is_written_as_tfx_csv_example_gen_writes_it(edge_csv):
    mine, tfx = _mlpipe_csv_examples(edge_csv), _tfx_csv_examples(edge_csv)
    assert len(mine) == len(tfx) == 8
    for row, (a, b) in enumerate(zip(mine, tfx, strict=True)):
        assert a == b, f"row {row + 1}"
    # hand-checked values of TFX's rule, so the restated handlers cannot agree with a wrong mlpipe
    first, second, fourth = mine[0], mine[1], mine[3]
    assert first["spaced"] == ("int64_list", [7]) and fourth["spaced"] == ("int64_list", [1000])
    assert second["big"] == ("bytes_list", [b"99999999999999999999"])  # beyond int64: text
    assert second["int"] == ("int64_list", [])  # an empty cell: present, no values
    assert first["empty"] == (None, [])  # a column without any value: no kind
    assert fourth["text"] == ("bytes_list", [b"line\nbreak"])
    assert mine[4]["floats"] == ("float_list", [np.float32("inf").tobytes()])
    assert mine[5]["flag"] == ("bytes_list", [b" "])  # a space is a value
    assert mine[7]["mixed"] == ("float_list", [np.float32(0.5).tobytes()])


def test_taxi_csv_is_written_as_tfx_csv_example_gen_writes_it():
    mine, tfx = _mlpipe_csv_examples(TAXI_CSV), _tfx_csv_examples(TAXI_CSV)
    assert len(mine) == len(tfx) == 15_002
    assert mine == tfx


def test_generated_taxi_csv_is_written_as_tfx_csv_example_gen_writes_it(tmp_path):
    sys.path.insert(0, str(DATA))
    import generate

    (path,) = generate.write_spans(tmp_path, 2000, spans=1, seed=11, text_in_numeric_span=1)
    mine, tfx = _mlpipe_csv_examples(path), _tfx_csv_examples(path)
    assert len(mine) == 2000 and mine == tfx
    assert {row["trip_miles"][0] for row in mine} == {"bytes_list"}  # "unknown" made it text


def test_tfx_bsl_record_batch_path_differs_only_in_empty_cells(edge_csv):
    """csv_decoder -> RecordBatch -> RecordBatchToExamples: an empty cell is a null there, a feature
    without a kind; TFX's CsvExampleGen (and mlpipe) write an empty list of the column's type."""
    from tfx_bsl.coders import csv_decoder
    from tfx_bsl.coders.example_coder import RecordBatchToExamples

    infos, rows = _tfx_csv_cells(edge_csv)
    to_batch = csv_decoder.BatchedCSVRowsToRecordBatch(skip_blank_lines=True)
    (batch,) = to_batch.process([(cells, b"") for cells in rows], infos)
    known = [i for i, info in enumerate(infos) if info.type != csv_decoder.ColumnType.UNKNOWN]
    batch = pa.RecordBatch.from_arrays([batch.column(i) for i in known], [infos[i].name for i in known])
    theirs = [_parsed(r) for r in RecordBatchToExamples(batch)]
    mine = _mlpipe_csv_examples(edge_csv)
    for row, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        for name in a.keys() - {"empty"}:
            if a[name][1]:
                assert a[name] == b[name], (row, name)
            else:
                assert b[name] == (None, []), (row, name)  # the one difference


def _arrow_oracle(table: pa.Table) -> list[dict]:
    """tfx_bsl's RecordBatchToExamples of a typed table (scalars as one-value lists)."""
    from tfx_bsl.coders.example_coder import RecordBatchToExamples

    arrays = []
    for column in table.combine_chunks().columns:
        column = column.chunk(0)
        if pa.types.is_null(column.type):
            arrays.append(pa.array([None] * len(column), pa.large_list(pa.int64())))
            continue
        if not pa.types.is_list(column.type):
            valid = column.is_valid().to_numpy(zero_copy_only=False)
            offsets = pa.array(np.concatenate([[0], np.cumsum(valid)]).astype(np.int32))
            column = pa.ListArray.from_arrays(offsets, column.drop_null(), mask=pa.array(~valid))
        if column.type.value_type == pa.float64():
            column = column.cast(pa.list_(pa.float32()))
        elif pa.types.is_string(column.type.value_type):
            column = column.cast(pa.list_(pa.binary()))
        arrays.append(column)
    batch = pa.RecordBatch.from_arrays(arrays, table.column_names)
    return [_parsed(r) for r in RecordBatchToExamples(batch)]


def test_parquet_edge_values_are_written_as_tfx_bsl_writes_them(tmp_path):
    import datetime

    import pyarrow.parquet as pq

    from mlpipe.components.parquet_example_gen import read_parquet

    source = pa.table(
        {
            "i8": pa.array([1, None, -128, 127], pa.int8()),
            "u64": pa.array([0, 2**63 - 1, None, 5], pa.uint64()),
            "flag": pa.array([True, False, None, True]),
            "f32": pa.array([1.5, float("nan"), float("-inf"), None], pa.float32()),
            "f64": pa.array([1e300, -0.0, None, 2.5]),
            "text": pa.array(["é🙂", "", None, "a,b\n"]),
            "blob": pa.array([b"\x00\xff", None, b"", b"x"]),
            "day": pa.array([datetime.date(2024, 2, 29), None, datetime.date(1970, 1, 1), None]),
            "ints": pa.array([[1, 2], [], None, [2**62]], pa.list_(pa.int64())),
            "words": pa.array([["a"], None, [], ["", "ü"]], pa.list_(pa.string())),
            "nothing": pa.nulls(4),
        }
    )
    path = tmp_path / "edge.parquet"
    pq.write_table(source, path)
    table = read_parquet(str(path))
    mine = [_parsed(r) for r in io.encode_examples(table)]
    assert mine == _arrow_oracle(table)
    assert mine[0]["flag"] == ("int64_list", [1]) and mine[1]["u64"] == ("int64_list", [2**63 - 1])
    assert mine[0]["day"] == ("bytes_list", [b"2024-02-29"])
    assert mine[1]["i8"] == mine[0]["nothing"] == (None, [])  # a null: no kind, as dict_to_example
    assert mine[1]["ints"] == ("int64_list", []) and mine[2]["ints"] == (None, [])


def test_sql_rows_are_written_as_their_csv_export(tmp_path):
    """SQL values are typed by the CSV rule; NULL is a feature without a kind, as in TFX's SQL
    ExampleGens, and an empty string is a value."""
    import sqlite3

    from mlpipe.components.sql_example_gen import query_as_text

    db = tmp_path / "edge.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE t (i INTEGER, f REAL, s TEXT, n TEXT)")
        connection.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            [(1, 1.5, "é🙂", None), (None, None, "", None), (2**63 - 1, float("inf"), None, None)],
        )
    table = io.infer_column_types(query_as_text("SELECT * FROM t", f"sqlite:///{db}"))
    mine = [_parsed(r) for r in io.encode_examples(table)]
    assert mine == _arrow_oracle(table)
    assert mine[1]["i"] == (None, []) and mine[1]["s"] == ("bytes_list", [b""])
    assert mine[2]["i"] == ("int64_list", [2**63 - 1]) and mine[0]["n"] == (None, [])
    assert mine[2]["f"] == ("float_list", [np.float32("inf").tobytes()])


_CELLS = [
    "0", "-0", "007", "+5", " 7", "8 ", "1_000", "0x1f", "0X10", "9223372036854775807",
    "9223372036854775808", "-9223372036854775809", "99999999999999999999", "1.5", "-.5e-3", "5.",
    "1e400", "1e300", "nan", "NaN", "-inf", "+inf", "Infinity", "nan(1)", "1e", ".", "", " ",
    "abc", "١٢", "True", "1,5", "0.1",
]  # fmt: skip


def test_column_types_and_values_follow_tfx_bsl_value_by_value():
    """Arrow's fast casts against tfx_bsl's ``_InferValueType`` and TFX's int()/float() handlers,
    on columns drawn from texts where Arrow's and Python's number syntaxes part."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from tfx_bsl.coders.csv_decoder import ColumnType, _InferValueType

    @settings(max_examples=1500, derandomize=True, database=None, deadline=None)
    @given(st.lists(st.sampled_from(_CELLS), min_size=1, max_size=6))
    def check(cells: list[str]) -> None:
        column = pa.chunked_array([pa.array([c or None for c in cells], pa.string())])
        typed = io.infer_column_types(pa.table({"c": column})).column(0)
        kind = max((_InferValueType(c.encode()) for c in cells), default=ColumnType.UNKNOWN)
        if kind == ColumnType.UNKNOWN:
            assert typed.type == pa.null()
        elif kind == ColumnType.INT:
            assert typed.to_pylist() == [int(c.encode()) if c else None for c in cells]
        elif kind == ColumnType.FLOAT:
            expected = [float(c.encode()) if c else None for c in cells]
            assert typed.type == pa.float64()
            assert [repr(v) for v in typed.to_pylist()] == [repr(v) for v in expected]
        else:
            assert typed.to_pylist() == [c.encode() if c else None for c in cells]

    check()
