"""Streaming, sharded ExampleGens against the whole-input code they replace.

The oracle is the whole-file path still in mlpipe.io.examples (read_csv_strings -> type_csv_columns
-> encode_examples, hash split on row_fingerprints), which the differential tests of tests/io hold
against TFX's CsvExampleGen; the streaming reader must give the same records in the same splits
however small its blocks are.
"""

from __future__ import annotations

import collections
import glob
import os
import re
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlpipe.components.example_gen import CsvExampleGen, ImportExampleGen
from mlpipe.components.example_gen_streaming import assign_splits
from mlpipe.components.parquet_example_gen import ParquetExampleGen
from mlpipe.components.sql_example_gen import SqlExampleGen
from mlpipe.dsl.context import ExecutionContext
from mlpipe.errors import DataError, DefinitionError
from mlpipe.io import examples as io
from mlpipe.types.standard import Examples
from tests.io.test_csv_strictness import MALFORMED, WELL_FORMED


def _run(cls, tmp_path: Path, name: str = "out", **parameters) -> Examples:
    out = Examples(uri=str(tmp_path / name))
    defaults = {n: spec.default for n, spec in cls.SPEC.parameters.items() if not spec.required}
    ctx = ExecutionContext(
        cls.__name__, "p", "run", 1, {}, {"examples": out}, {**defaults, **parameters}, str(tmp_path / "tmp")
    )
    cls.execute(ctx)
    return out


def _shards(examples: Examples, split: str) -> tuple[list[str], list[str]]:
    records = sorted(glob.glob(os.path.join(examples.split_uri(split), "*")))
    columnar = sorted(glob.glob(os.path.join(examples.uri, ".columnar", f"Split-{split}", "*")))
    return records, columnar


def _check_layout(
    examples: Examples, split: str, columnar: bool = True
) -> tuple[list[bytes], pa.Table | None]:
    """The split's records and typed rows, after checking the sharded layout contract."""
    records, tables = _shards(examples, split)
    n = len(records)
    assert [os.path.basename(p) for p in records] == [
        f"data_tfrecord-{k:05d}-of-{n:05d}.gz" for k in range(n)
    ]
    if not columnar:
        assert tables == []
        return io.read_tfrecords(records), None
    assert [os.path.basename(p) for p in tables] == [f"data-{k:05d}-of-{n:05d}.arrow" for k in range(n)]
    shard_tables = []
    for record_path, table_path in zip(records, tables, strict=True):
        with pa.memory_map(table_path) as source:
            table = pa.ipc.open_file(source).read_all()
        shard_records = io.read_tfrecords([record_path])
        assert io.encode_examples(table) == shard_records  # row i of shard k is record i of shard k
        shard_tables.append(table)
    return io.read_tfrecords(records), pa.concat_tables(shard_tables)


CSV_FILES = {
    "a.csv": (
        'id,n,x,text,late\n1,5,0.5,"plain",\n2,,1,"with, comma",\n3,7,,"multi\nline",\n'
        '4,8,2,"say ""hi""",\n5,9,3,,\n6,10,4.25,x,\n7,11,5,y,\n8,12,6,z,\n'
    ),
    "b.csv": 'id,n,x,text,late\n9,13,7,"q\r\nr",1\n10,14.5,8,s,2\n11,,,,\n12,16,9,t,3.5\n',
    "c.csv": "id,n,x,text,late\n13,17,10,u,\n14,18,11,\xe9\U0001f642,4\n",
}


def _oracle(paths: list[str], splits: list[tuple[str, int]]) -> dict[str, tuple[list[bytes], pa.Table]]:
    """Today's whole-file path: all files read at once, typed at once, hash-split on row text."""
    raw = io.read_csv_strings(paths)
    typed = io.type_csv_columns(raw)
    records = io.encode_examples(typed)
    chosen = assign_splits(io.row_fingerprints(raw), splits)
    return {name: ([records[i] for i in rows], typed.take(rows)) for name, rows in chosen.items()}


@pytest.mark.parametrize("block_bytes", [1, 37, 100, None])
def test_streaming_csv_gives_the_whole_file_records_in_the_same_splits(tmp_path, block_bytes):
    (tmp_path / "in").mkdir()
    for name, text in CSV_FILES.items():
        (tmp_path / "in" / name).write_bytes(text.encode())
    splits = [("train", 3), ("eval", 2), ("test", 1)]
    config = {"split_config": {"splits": [{"name": n, "hash_buckets": b} for n, b in splits]}}
    out = _run(
        CsvExampleGen,
        tmp_path,
        input_base=str(tmp_path / "in"),
        output_config=config,
        block_bytes=block_bytes,
    )
    expected = _oracle(sorted(str(p) for p in (tmp_path / "in").glob("*.csv")), splits)
    # n widens INT -> FLOAT (14.5 in b.csv), late has no value in the first block: both re-read
    assert expected["train"][1].schema.field("n").type == pa.float64()
    assert out.split_names == ["train", "eval", "test"]
    for name, (records, table) in expected.items():
        mine, typed = _check_layout(out, name)
        assert mine == records  # same records, same order, same split
        assert typed.equals(table)
        assert out.get_custom_property(f"num_rows_{name}") == len(records)
    assert sum(len(r) for r, _ in expected.values()) == 14


def test_predefined_splits_stream_with_kinds_decided_over_all_splits(tmp_path):
    for split, text in (("train", "n,s\n1,a\n2,b\n3,c\n"), ("eval", "n,s\n4.5,d\n")):
        (tmp_path / "in" / split).mkdir(parents=True)
        (tmp_path / "in" / split / "a.csv").write_text(text)
    config = {
        "splits": [{"name": "train", "pattern": "train/*.csv"}, {"name": "eval", "pattern": "eval/*.csv"}]
    }
    out = _run(CsvExampleGen, tmp_path, input_base=str(tmp_path / "in"), input_config=config, block_bytes=4)
    typed = io.type_csv_columns(
        io.read_csv_strings([str(tmp_path / "in" / s / "a.csv") for s in ("train", "eval")])
    )
    assert _check_layout(out, "train")[0] == io.encode_examples(typed.slice(0, 3))
    assert _check_layout(out, "eval")[0] == io.encode_examples(typed.slice(3))


def _rows_with_text_at(path: Path, rows: int, text_row: int) -> None:
    lines = ["id,fare,company"]
    for i in range(1, rows + 1):
        lines.append(f"{i},{'unknown' if i == text_row else i % 97},c{i % 5}")
    path.write_text("\n".join(lines) + "\n")


def test_text_in_a_numeric_column_after_the_sample_names_file_row_and_column(tmp_path):
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "data.csv"
    _rows_with_text_at(path, 5000, 3001)
    with pytest.raises(DataError) as info:
        _run(CsvExampleGen, tmp_path, input_base=str(tmp_path / "in"), block_bytes=4096)
    message = str(info.value)
    assert message.startswith(
        f"{path}: data row 3001 (header not counted), column 'fare': 'unknown' is not a number"
    )
    assert "INT" in message
    # nothing is left behind in the output folder (the launcher also drops the staged artifact)
    assert glob.glob(str(tmp_path / "out" / "**" / "*.gz"), recursive=True) == []
    # within the sample, the column is text, as TFX infers it
    out = _run(
        CsvExampleGen, tmp_path, name="big_block", input_base=str(tmp_path / "in"), block_bytes=1 << 20
    )
    _, typed = _check_layout(out, "train")
    assert typed.schema.field("fare").type == pa.binary()


@pytest.mark.e2e
def test_type_change_in_a_pipeline_publishes_nothing(tmp_path):
    from mlpipe import LocalDagRunner, Pipeline
    from mlpipe.metadata.queries import artifacts
    from mlpipe.metadata.store import MetadataStore
    from mlpipe.orchestration.run_result import RunError

    (tmp_path / "in").mkdir()
    _rows_with_text_at(tmp_path / "in" / "data.csv", 5000, 3001)
    gen = CsvExampleGen(input_base=str(tmp_path / "in"), block_bytes=4096)
    pipeline = Pipeline("type_change", tmp_path / "root", [gen])
    with pytest.raises(RunError) as info:
        LocalDagRunner(progress=False).run(pipeline)
    assert "data row 3001 (header not counted), column 'fare'" in str(info.value)
    assert artifacts(MetadataStore(pipeline.metadata), "Examples") == []
    assert glob.glob(str(tmp_path / "root" / "**" / "data_tfrecord-*"), recursive=True) == []


@pytest.mark.parametrize("block_bytes", [1, 5, 1 << 20])
@pytest.mark.parametrize("content,line,words", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_csv_in_blocks_names_the_same_file_and_line(tmp_path, content, line, words, block_bytes):
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "input.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        _run(CsvExampleGen, tmp_path, input_base=str(tmp_path / "in"), block_bytes=block_bytes)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and words in message


@pytest.mark.parametrize("block_bytes", [1, 3, 7])
@pytest.mark.parametrize("content,rows", WELL_FORMED.values(), ids=WELL_FORMED.keys())
def test_well_formed_csv_in_blocks_reads_the_same_rows(tmp_path, content, rows, block_bytes):
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "input.csv"
    path.write_bytes(content)
    config = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}
    out = _run(
        CsvExampleGen,
        tmp_path,
        input_base=str(tmp_path / "in"),
        output_config=config,
        block_bytes=block_bytes,
    )
    assert _check_layout(out, "all")[0] == io.encode_examples(
        io.type_csv_columns(io.read_csv_strings([str(path)]))
    )


def test_shard_count_from_size_or_output_config(tmp_path, monkeypatch):
    from mlpipe.io import example_shards

    (tmp_path / "in").mkdir()
    _rows_with_text_at(tmp_path / "in" / "data.csv", 3000, 0)
    base = _run(CsvExampleGen, tmp_path, name="one", input_base=str(tmp_path / "in"), block_bytes=2048)
    assert [len(_shards(base, s)[0]) for s in ("train", "eval")] == [1, 1]
    expected = {s: _check_layout(base, s) for s in ("train", "eval")}

    monkeypatch.setattr(example_shards, "SHARD_BYTES", 20_000)  # ~ 500 records of ~40 bytes
    by_size = _run(CsvExampleGen, tmp_path, name="by_size", input_base=str(tmp_path / "in"), block_bytes=2048)
    config = {"num_shards": 7}
    fixed = _run(
        CsvExampleGen,
        tmp_path,
        name="fixed",
        input_base=str(tmp_path / "in"),
        block_bytes=2048,
        output_config=config,
    )
    for split, (records, table) in expected.items():
        sized, sized_table = _check_layout(by_size, split)
        assert 2 < len(_shards(by_size, split)[0]) < 10
        assert sized == records and sized_table.equals(table)  # blocks in order
        assert len(_shards(fixed, split)[0]) == 7
        mine, mine_table = _check_layout(fixed, split)  # blocks dealt to the shards in turn
        assert collections.Counter(mine) == collections.Counter(records)
        assert mine_table.num_rows == table.num_rows
    with pytest.raises(DefinitionError, match="num_shards"):
        CsvExampleGen(input_base="x", output_config={"num_shards": 0})


def test_parquet_sql_and_tfrecords_stream_in_blocks_as_read_whole(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from mlpipe.components.example_gen import TFRecordReader
    from mlpipe.components.parquet_example_gen import ParquetReader, read_parquet
    from mlpipe.components.sql_example_gen import SqlReader

    monkeypatch.setattr(ParquetReader, "BATCH_ROWS", 7)
    monkeypatch.setattr(SqlReader, "ROWS_PER_BLOCK", 7)
    monkeypatch.setattr(TFRecordReader, "RECORDS_PER_BLOCK", 7)
    (tmp_path / "pq").mkdir()
    rng = np.random.default_rng(0)
    first = pa.table(
        {
            "i": pa.array(rng.integers(0, 9, 50)),
            "s": pa.array([f"v{i}" for i in range(50)]),
            "z": pa.nulls(50),
        }
    )
    second = pa.table(
        {
            "i": pa.array(rng.integers(0, 9, 30)),
            "s": pa.array([None] * 30, pa.string()),
            "z": pa.array(rng.random(30)),
        }
    )
    pq.write_table(first, tmp_path / "pq" / "a.parquet")
    pq.write_table(second, tmp_path / "pq" / "b.parquet")
    out = _run(ParquetExampleGen, tmp_path, name="parquet", input_base=str(tmp_path / "pq"))
    whole = pa.concat_tables(
        [read_parquet(str(tmp_path / "pq" / f)) for f in ("a.parquet", "b.parquet")], promote=True
    )
    records = io.encode_examples(whole)
    chosen = assign_splits(io.record_fingerprints(records), [("train", 2), ("eval", 1)])
    for split, rows in chosen.items():
        mine, typed = _check_layout(out, split)
        assert mine == [records[i] for i in rows]
        assert typed.equals(whole.take(rows))

    db = tmp_path / "t.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE t (a, b)")
        connection.executemany(
            "INSERT INTO t VALUES (?, ?)", [(i, None if i % 3 else f"x{i}") for i in range(40)] + [(2.5, "y")]
        )
    out = _run(SqlExampleGen, tmp_path, name="sql", query="SELECT * FROM t", connection_url=f"sqlite:///{db}")
    raw = pa.table(
        {
            "a": pa.array([str(i) for i in range(40)] + ["2.5"]),
            "b": pa.array([None if i % 3 else f"x{i}" for i in range(40)] + ["y"]),
        }
    )
    typed = io.infer_column_types(raw)  # a widens to FLOAT at the last row: the query runs again
    records = io.encode_examples(typed)
    for split, rows in assign_splits(io.row_fingerprints(raw), [("train", 2), ("eval", 1)]).items():
        mine, table = _check_layout(out, split)
        assert mine == [records[i] for i in rows] and table.equals(typed.take(rows))

    (tmp_path / "tfr").mkdir()
    io.write_examples(str(tmp_path / "tfr"), records[:25], "a.gz")
    io.write_examples(str(tmp_path / "tfr"), records[25:], "b.gz")
    out = _run(ImportExampleGen, tmp_path, name="import", input_base=str(tmp_path / "tfr"))
    for split, rows in assign_splits(io.record_fingerprints(records), [("train", 2), ("eval", 1)]).items():
        assert _check_layout(out, split, columnar=False)[0] == [records[i] for i in rows]


def test_empty_split_has_one_empty_shard_and_typed_schema(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("n,s\n1,a\n")
    config = {
        "split_config": {
            "splits": [{"name": "train", "hash_buckets": 1}, {"name": "none", "hash_buckets": 1000}]
        }
    }
    out = _run(CsvExampleGen, tmp_path, input_base=str(tmp_path / "in"), output_config=config)
    assert {s: out.get_custom_property(f"num_rows_{s}") for s in out.split_names} in (
        {"train": 1, "none": 0},
        {"train": 0, "none": 1},
    )
    for split in out.split_names:
        records, table = _check_layout(out, split)
        assert table.schema.field("n").type == pa.int64() and table.num_rows == len(records)
    assert re.fullmatch(r"data_tfrecord-00000-of-00001\.gz", os.listdir(out.split_uri("none"))[0])


def test_sql_text_after_the_first_block_names_the_query_row_and_column(tmp_path, monkeypatch):
    from mlpipe.components.sql_example_gen import SqlReader

    monkeypatch.setattr(SqlReader, "ROWS_PER_BLOCK", 7)
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE t (a, b)")
        connection.executemany(
            "INSERT INTO t VALUES (?, ?)", [(i if i != 20 else "n/a", i) for i in range(1, 31)]
        )
    with pytest.raises(DataError) as info:
        _run(SqlExampleGen, tmp_path, query="SELECT * FROM t", connection_url=f"sqlite:///{db}")
    assert str(info.value).startswith("query 'SELECT * FROM t': row 20, column 'a': 'n/a' is not a number")
