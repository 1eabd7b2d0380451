"""ExampleGen inputs: span/version/date patterns, predefined splits, Parquet, SQL, list features.

Executors run directly on a hand-made ExecutionContext (no metadata store, no TensorFlow); the
examples they write are decoded back with tfx_bsl.
"""

from __future__ import annotations

import datetime
import os
import sqlite3
from pathlib import Path

import pytest

from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.components.parquet_example_gen import ParquetExampleGen
from mlpipe.components.sql_example_gen import SqlExampleGen
from mlpipe.dsl.context import ExecutionContext
from mlpipe.errors import DataError, DefinitionError
from mlpipe.io import examples as io
from mlpipe.io.example_batches import iter_record_batches
from mlpipe.io.input_patterns import check_input_config, resolve_input
from mlpipe.types.standard import Examples


def _touch(base: Path, *paths: str, content: str = "a,b\n1,x\n") -> None:
    for path in paths:
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_text(content)


def _resolve(base: Path, patterns: dict[str, str], range_config: dict | None = None):
    config = {"splits": [{"name": n, "pattern": p} for n, p in patterns.items()]}
    resolved = resolve_input(str(base), check_input_config(config, range_config), range_config)
    files = {n: [os.path.relpath(f, base) for f in fs] for n, fs in resolved.files.items()}
    return files, resolved.span, resolved.version, resolved.spans


# --- patterns (no TensorFlow) ----------------------------------------------------------------------


def test_latest_span_and_its_latest_version_by_default(tmp_path):
    _touch(tmp_path, "span-1/v-0/a.csv", "span-2/v-0/a.csv", "span-2/v-1/a.csv", "span-2/v-1/b.csv")
    _touch(tmp_path, "span-10/v-0/x.txt", "span-x/v-0/a.csv")  # other extension; not digits
    files, span, version, _ = _resolve(tmp_path, {"all": "span-{SPAN}/v-{VERSION}/*.csv"})
    assert (files, span, version) == ({"all": ["span-2/v-1/a.csv", "span-2/v-1/b.csv"]}, 2, 1)


def test_predefined_splits_share_the_span(tmp_path):
    _touch(tmp_path, "span-1/train/a.csv", "span-1/eval/a.csv", "span-2/train/a.csv", "span-2/eval/b")
    files, span, _, _ = _resolve(tmp_path, {"train": "span-{SPAN}/train/*.csv", "eval": "span-{SPAN}/eval/*"})
    assert span == 2 and files == {"train": ["span-2/train/a.csv"], "eval": ["span-2/eval/b"]}


def test_static_and_rolling_ranges(tmp_path):
    _touch(tmp_path, *[f"span-{s}/data.csv" for s in (1, 2, 3, 5)])
    pattern = {"s": "span-{SPAN}/data.csv"}
    static = {"static_range": {"start_span_number": 1, "end_span_number": 3}}
    files, span, _, spans = _resolve(tmp_path, pattern, static)
    assert (len(files["s"]), span, spans) == (3, 3, [1, 2, 3])
    assert _resolve(tmp_path, pattern, {"rolling_range": {"num_spans": 2}})[3] == [3, 5]
    with pytest.raises(DataError, match=r"asks for spans 3\.\.5, .*no file of span\(s\) \[4\]"):
        _resolve(tmp_path, pattern, {"static_range": {"start_span_number": 3, "end_span_number": 5}})


def test_date_placeholders_are_days_since_epoch(tmp_path):
    _touch(tmp_path, "2024-01-31/a.csv", "2024-02-01/a.csv")
    _, span, _, _ = _resolve(tmp_path, {"s": "{YYYY}-{MM}-{DD}/*.csv"})
    assert span == (datetime.date(2024, 2, 1) - datetime.date(1970, 1, 1)).days
    _touch(tmp_path, "2024-13-01/a.csv")
    with pytest.raises(DataError, match=r"2024-13-01/a\.csv: 2024-13-01 in its path is not a valid date"):
        _resolve(tmp_path, {"s": "{YYYY}-{MM}-{DD}/*.csv"})


def test_span_pattern_matching_nothing_names_pattern_and_listing(tmp_path):
    _touch(tmp_path, "day-1/a.csv")
    with pytest.raises(
        DataError, match=r"pattern 'span-\{SPAN\}/\*\.csv' matches no file .*contains: day-1\)"
    ):
        _resolve(tmp_path, {"s": "span-{SPAN}/*.csv"})
    _touch(tmp_path, "span-1/train/a.csv", "span-2/train/a.csv", "span-1/eval/a.csv")
    with pytest.raises(DataError, match=r"split 'eval': .*no file of span\(s\) \[2\]"):
        _resolve(tmp_path, {"train": "span-{SPAN}/train/*", "eval": "span-{SPAN}/eval/*"})


@pytest.mark.parametrize(
    ("patterns", "range_config", "message"),
    [
        (["s-{SPAM}/*"], None, r"unknown placeholder\(s\) \['\{SPAM\}'\]"),
        (["s-{SPAN}/{SPAN}"], None, r"appear\(s\) more than once"),
        (["v-{VERSION}/*"], None, r"\{VERSION\} needs a \{SPAN\}"),
        (["{YYYY}-{MM}/*"], None, r"a date needs all of"),
        (["{SPAN}/{YYYY}{MM}{DD}"], None, r"either \{SPAN\} or a"),
        (["s-{SPAN}/*", "eval/*"], None, r"must use the same placeholders"),
        (["*.csv"], {"rolling_range": {"num_spans": 1}}, r"has no \{SPAN\}"),
        (["s-{SPAN}/*"], {"rolling_range": {"num_spans": 0}}, r"at least 1"),
        (["s-{SPAN}/*"], {"static_range": {"start_span_number": 1}}, r"required: \['end_span_number'"),
    ],
)
def test_bad_patterns_fail_when_the_pipeline_is_defined(patterns, range_config, message):
    config = {"splits": [{"name": f"s{i}", "pattern": p} for i, p in enumerate(patterns)]}
    with pytest.raises(DefinitionError, match=message):
        CsvExampleGen(input_base="data", input_config=config, range_config=range_config)


def test_predefined_splits_exclude_output_config():
    config = {"splits": [{"name": "train", "pattern": "t/*"}, {"name": "eval", "pattern": "e/*"}]}
    output = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}]}}
    with pytest.raises(DefinitionError, match="drop output_config"):
        CsvExampleGen(input_base="data", input_config=config, output_config=output)


# --- executors ------------------------------------------------------------------------------------


def _run(cls, tmp_path: Path, **parameters) -> Examples:
    out = Examples(uri=str(tmp_path / "out"))
    defaults = {name: spec.default for name, spec in cls.SPEC.parameters.items() if not spec.required}
    ctx = ExecutionContext(
        cls.__name__, "p", "run", 1, {}, {"examples": out}, {**defaults, **parameters}, str(tmp_path / "tmp")
    )
    cls.execute(ctx)
    return out


def _decoded(examples: Examples, split: str) -> dict[str, list]:
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    batch = ExamplesToRecordBatchDecoder().DecodeBatch(io.read_examples(examples.split_uri(split)))
    return batch.to_pydict()


def test_csv_predefined_splits_are_written_as_they_are_with_span_and_version(tmp_path):
    _touch(tmp_path, "in/span-3/v-2/train/a.csv", content="n,s\n1,a\n2,b\n3,c\n")
    _touch(tmp_path, "in/span-3/v-2/eval/a.csv", content="n,s\n4.5,d\n")
    config = {
        "splits": [
            {"name": "train", "pattern": "span-{SPAN}/v-{VERSION}/train/*.csv"},
            {"name": "eval", "pattern": "span-{SPAN}/v-{VERSION}/eval/*.csv"},
        ]
    }
    out = _run(CsvExampleGen, tmp_path, input_base=str(tmp_path / "in"), input_config=config)
    assert out.split_names == ["train", "eval"]
    assert (out.get_property("span"), out.get_property("version")) == (3, 2)
    # types are decided over both splits: 4.5 in eval makes n FLOAT in train too
    assert _decoded(out, "train") == {"n": [[1.0], [2.0], [3.0]], "s": [[b"a"], [b"b"], [b"c"]]}
    assert _decoded(out, "eval")["n"] == [[4.5]]


def test_parquet_list_columns_are_multivalued_features_and_nulls_missing(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "in").mkdir()
    table = pa.table(
        {
            "small": pa.array([1, 2, None, 4] * 10, pa.int8()),
            "flag": pa.array([True, False, True, None] * 10),
            "tags": pa.array([["a", "b"], [], None, ["c"]] * 10, pa.list_(pa.string())),
            "scores": pa.array([[0.5, 1.5], [2.0], [], None] * 10, pa.list_(pa.float64())),
            "city": pa.array(["x", "y", "x", None] * 10).dictionary_encode(),
        }
    )
    pq.write_table(table, tmp_path / "in" / "part-0.parquet")
    config = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}
    out = _run(ParquetExampleGen, tmp_path, input_base=str(tmp_path / "in"), output_config=config)
    rows = _decoded(out, "all")
    assert out.get_custom_property("num_rows_all") == 40
    by_small = {tuple(s) if s else None: i for i, s in enumerate(rows["small"])}
    first = by_small[(1,)]
    assert rows["tags"][first] == [b"a", b"b"] and rows["scores"][first] == [0.5, 1.5]
    assert rows["flag"][first] == [1] and rows["city"][first] == [b"x"]
    third = by_small[None]  # small, tags null: features without a kind (missing); scores []: empty
    assert rows["tags"][third] is None and rows["scores"][third] == []


def test_a_file_that_is_not_parquet_is_named(tmp_path):
    _touch(tmp_path, "in/part-0.parquet", content="a,b\n1,2\n")
    with pytest.raises(DataError, match=r"part-0\.parquet: not a readable Parquet file"):
        _run(ParquetExampleGen, tmp_path, input_base=str(tmp_path / "in"))


def test_encode_examples_takes_list_columns():
    import pyarrow as pa
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    table = pa.table({"ids": pa.array([[1, 2], [3]], pa.list_(pa.int64())), "x": [1.5, None]})
    decoded = ExamplesToRecordBatchDecoder().DecodeBatch(io.encode_examples(table)).to_pydict()
    assert decoded == {"ids": [[1, 2], [3]], "x": [[1.5], None]}


@pytest.fixture
def taxi_db(tmp_path) -> str:
    path = tmp_path / "taxi.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE trips (id INTEGER, fare REAL, payment TEXT, miles)")
        db.executemany(
            "INSERT INTO trips VALUES (?, ?, ?, ?)",
            [(i, 5.0 + i, "Cash" if i % 2 else None, i if i % 3 else 1.5) for i in range(300)],
        )
    return f"sqlite:///{path}"


def test_sql_rows_typed_like_csv_and_hash_split(tmp_path, taxi_db):
    out = _run(SqlExampleGen, tmp_path, query="SELECT * FROM trips", connection_url=taxi_db)
    assert out.split_names == ["train", "eval"]
    train, eval_ = _decoded(out, "train"), _decoded(out, "eval")
    assert 150 < len(train["id"]) < 250 and len(train["id"]) + len(eval_["id"]) == 300
    rows = {key: train[key] + eval_[key] for key in train}
    one = rows["id"].index([1])
    assert (rows["payment"][one], rows["fare"][one], rows["miles"][one]) == ([b"Cash"], [6.0], [1.0])
    assert rows["payment"][rows["id"].index([2])] is None  # NULL: no kind, so missing
    assert rows["miles"][rows["id"].index([3])] == [1.5]  # 1.5 among integers: FLOAT, as in CSV


def test_sql_error_quotes_query_and_database_message(tmp_path, taxi_db):
    with pytest.raises(
        DataError, match=r"query 'SELECT nope FROM trips' failed on sqlite:///.*no such column: nope"
    ):
        _run(SqlExampleGen, tmp_path, query="SELECT nope FROM trips", connection_url=taxi_db)
    with pytest.raises(DefinitionError, match="connection_url is not a SQLAlchemy URL"):
        SqlExampleGen(query="SELECT 1", connection_url="not a url")


def test_columnar_copy_decodes_like_the_records(tmp_path):
    """StatisticsGen reads the ExampleGen's Arrow copy instead of decoding: it must be the same batch."""
    import pyarrow as pa
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    table = pa.table(
        {
            "i": pa.array([1, None, 3, None], pa.int64()),
            "f": pa.array([0.1, 2.5, None, None]),
            "s": pa.array([b"a", None, b"", None]),
            "l": pa.array([[1.5, 2.5], [], None, None], pa.list_(pa.float64())),
            "empty": pa.array([None] * 4, pa.int64()),
            "untyped": pa.nulls(4),
        }
    )
    # nulls as Parquet/SQL write them (features without a kind), and as CSV writes empty cells
    for nulls in (table, io.with_empty_cells_as_empty_lists(table)):
        records = io.encode_examples(nulls)
        uri = str(tmp_path / ("lists" if nulls is not table else "nulls"))
        io.write_columnar(io.columnar_path(uri, "train"), nulls)
        decoded = ExamplesToRecordBatchDecoder().DecodeBatch(records)
        (batch,) = iter_record_batches(uri, "train")
        assert batch.equals(decoded)
        assert decoded.column(decoded.schema.names.index("untyped")).null_count == 4
    assert decoded.column(decoded.schema.names.index("i")).to_pylist() == [[1], [], [3], []]
