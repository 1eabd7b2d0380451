"""The Beam ExampleGen against the in-process one: the same records, in the same splits.

The in-process ExampleGen is the oracle (its typing and hash split are tested against TFX's rules
in tests/components and tests/io). Both run on the same inputs; the Beam one on the in-process
FnApiRunner, named so the Beam path is taken, with chunks of a few rows, so a column's type is
decided across chunks that disagree (an integer chunk of a float column, a text late in a number
column, a column empty in the first chunks). ``test_taxi_portable.py`` runs it on external workers.
"""

from __future__ import annotations

import collections
import random
from pathlib import Path

import pytest

from mlpipe.components import beam_example_gen
from mlpipe.components.example_gen import CsvExampleGen, ImportExampleGen
from mlpipe.components.parquet_example_gen import ParquetExampleGen
from mlpipe.dsl.context import ExecutionContext
from mlpipe.errors import DataError
from mlpipe.io import examples as io
from mlpipe.types.standard import Examples

BEAM = ["--runner=FnApiRunner"]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(beam_example_gen, "CHUNK_ROWS", 50)


def _run(cls, out: Path, beam_args: list[str], **parameters) -> Examples:
    examples = Examples(uri=str(out))
    defaults = {name: spec.default for name, spec in cls.SPEC.parameters.items() if not spec.required}
    ctx = ExecutionContext(
        cls.__name__, "p", "run", 1, {}, {"examples": examples}, {**defaults, **parameters}, str(out) + ".tmp",
        beam_pipeline_args=beam_args,
    )  # fmt: skip
    cls.execute(ctx)
    return examples


def _both(cls, tmp_path: Path, **parameters) -> tuple[Examples, Examples]:
    return _run(cls, tmp_path / "local", [], **parameters), _run(cls, tmp_path / "beam", BEAM, **parameters)


def _assert_same(local: Examples, beam: Examples) -> None:
    assert beam.split_names == local.split_names
    for split in local.split_names:
        records = collections.Counter(io.read_examples(local.split_uri(split)))
        shards = sorted(p.name for p in Path(beam.split_uri(split)).iterdir())
        assert shards == [f"data_tfrecord-{i:05d}-of-{len(shards):05d}.gz" for i in range(len(shards))]
        assert collections.Counter(io.read_examples(beam.split_uri(split))) == records, split
        assert beam.get_custom_property(f"num_rows_{split}") == local.get_custom_property(f"num_rows_{split}")
        assert local.get_custom_property(f"num_rows_{split}") == sum(records.values())


def _csv_rows(rows: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for r in range(rows):
        out.append(
            [
                str(rng.randint(-5, 10**6)),  # INT
                "2.5" if r == rows - 3 else str(rng.randint(0, 99)),  # INT chunks, one float: FLOAT
                "n/a" if r == rows - 7 else str(rng.random()),  # a text late: BYTES
                "" if r < rows // 2 else str(r),  # empty in the first chunks
                "",  # no value at all
                "12345678901234567890" if r == 120 else str(r),  # beyond int64: BYTES (TFX)
                rng.choice(["1e3", "nan", "-inf", " 7", "", "0.5"]),  # Python's float() texts
                rng.choice(["Cash", "Credit Card", "", "Ünïcode, quoted"]),
            ]
        )
    return out


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["i", "f", "s", "late", "none", "big", "pyfloat", "text"])
        writer.writerows(rows)


@pytest.fixture
def csv_input(tmp_path) -> Path:
    _write_csv(tmp_path / "in" / "a.csv", _csv_rows(300, 1))
    _write_csv(tmp_path / "in" / "b.csv", _csv_rows(230, 2))
    return tmp_path / "in"


def test_csv_same_records_types_and_hash_splits(tmp_path, csv_input):
    local, beam = _both(CsvExampleGen, tmp_path, input_base=str(csv_input))
    _assert_same(local, beam)
    assert len(list(Path(beam.split_uri("train")).iterdir())) > 1  # sharded: one file per chunk


def test_csv_partition_feature_and_three_splits(tmp_path, csv_input):
    splits = [{"name": n, "hash_buckets": b} for n, b in (("a", 3), ("b", 2), ("c", 1))]
    config = {"split_config": {"splits": splits, "partition_feature_name": "i"}}
    local, beam = _both(CsvExampleGen, tmp_path, input_base=str(csv_input), output_config=config)
    _assert_same(local, beam)


def test_csv_input_splits_typed_together(tmp_path, csv_input):
    config = {"splits": [{"name": "train", "pattern": "a.csv"}, {"name": "eval", "pattern": "b.csv"}]}
    local, beam = _both(CsvExampleGen, tmp_path, input_base=str(csv_input), input_config=config)
    _assert_same(local, beam)


def test_parquet_same_records(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "in").mkdir()
    pq.write_table(
        pa.table(
            {
                "small": pa.array([1, 2, None, 4] * 40, pa.int8()),
                "tags": pa.array([["a", "b"], [], None, ["c"]] * 40, pa.list_(pa.string())),
                "scores": pa.array([[0.5, 1.5], [2.0], [], None] * 40, pa.list_(pa.float64())),
                "city": pa.array(["x", "y", "x", None] * 40).dictionary_encode(),
            }
        ),
        tmp_path / "in" / "part-0.parquet",
        row_group_size=30,
    )
    pq.write_table(
        pa.table(
            {
                "small": pa.array([7, 8] * 20, pa.int64()),
                "tags": pa.array([None, None] * 20, pa.list_(pa.string())),
                "scores": pa.array([[1.0], None] * 20, pa.list_(pa.float32())),
                "city": pa.array([None, None] * 20, pa.null()),
            }
        ),
        tmp_path / "in" / "part-1.parquet",
    )
    local, beam = _both(ParquetExampleGen, tmp_path, input_base=str(tmp_path / "in"))
    _assert_same(local, beam)


def test_import_same_records(tmp_path, csv_input):
    source = _run(CsvExampleGen, tmp_path / "csv", [], input_base=str(csv_input))
    local, beam = _both(ImportExampleGen, tmp_path, input_base=source.split_uri("train"))
    _assert_same(local, beam)


def test_csv_errors_name_the_file(tmp_path, csv_input):
    (csv_input / "c.csv").write_text("i,f\n1,2\n")
    with pytest.raises(DataError, match=r"c\.csv: columns \['i', 'f'\] differ from .*a\.csv's columns"):
        _run(CsvExampleGen, tmp_path / "beam", BEAM, input_base=str(csv_input))
    (csv_input / "c.csv").write_text("\n")
    with pytest.raises(DataError, match=r"c\.csv: file is empty"):
        _run(CsvExampleGen, tmp_path / "beam1", BEAM, input_base=str(csv_input))
    (csv_input / "c.csv").write_text("i,f,s,late,none,big,pyfloat,text\n1,2,3,4,5,6,7,8\n1,2\n")
    with pytest.raises(DataError, match=r"c\.csv:3: expected 8 fields as in the header, got 2"):
        _run(CsvExampleGen, tmp_path / "beam2", BEAM, input_base=str(csv_input))
