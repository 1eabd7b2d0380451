"""CsvExampleGen, StatisticsGen, SchemaGen, ImportSchemaGen and ExampleValidator.

The CSV checks run without TensorFlow; the pipeline tests run the real TFDV stack on a 3000-row
head of the taxi data, once per module.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from mlpipe.components.example_gen import CsvExampleGen, split_config
from mlpipe.components.example_validator import anomaly_table
from mlpipe.components.statistics_gen import StatisticsGen
from mlpipe.errors import DataError, DefinitionError
from mlpipe.io import examples as io
from mlpipe.io.input_patterns import check_input_config, resolve_input

TAXI_CSV = Path(__file__).parents[2] / "examples" / "data" / "chicago_taxi.csv"
HEAD_ROWS = 3000


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --- CSV input errors (no TensorFlow) -------------------------------------------------------------


def test_missing_input_base_is_named(tmp_path):
    with pytest.raises(DataError, match="nowhere.*not a directory"):
        resolve_input(str(tmp_path / "nowhere"), check_input_config(None, None, "*.csv"), None)


def test_folder_without_csv_files(tmp_path):
    _write(tmp_path / "data.txt", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"pattern '\*\.csv' matches no file .*it contains: data\.txt"):
        resolve_input(str(tmp_path), check_input_config(None, None, "*.csv"), None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"a\.csv: file is empty"),
        ("\n\n", r"a\.csv: file is empty"),
        ("a,b,c\n", r"a\.csv: only a header line"),
        ("a,b,c\n1,2,3\n4,5\n6,7,8\n", r"a\.csv:3: expected 3 fields as in the header, got 2"),
        ('a,b\n"x\ny",2\n1,2,3\n', r"a\.csv:4: expected 2 fields"),  # a quoted newline counts as a line
        ('a,b\n1,2\n"oops,3\n4,5\n', r"a\.csv:3: a quote opened on this line is never closed"),
        ("a,b,a\n1,2,3\n", r"a\.csv:1: column name 'a' appears twice"),
        ("a,,c\n1,2,3\n", r"a\.csv:1: header has an empty column name"),
        (b"a,b\n1,2\n3,caf\xe9\n", r"a\.csv:3: byte b'\\xe9' is not UTF-8"),
    ],
    ids=[
        "empty",
        "blank",
        "header-only",
        "ragged",
        "ragged-quoted",
        "unterminated-quote",
        "dup-header",
        "empty-name",
        "latin1",
    ],
)
def test_bad_csv_names_file_and_line(tmp_path, content, message):
    path = _write(tmp_path / "a.csv", content)
    with pytest.raises(DataError, match=message):
        io.read_csv_strings([str(path)])


def test_files_with_different_headers(tmp_path):
    a = _write(tmp_path / "a.csv", "x,y\n1,2\n")
    b = _write(tmp_path / "b.csv", "x,z\n1,2\n")
    with pytest.raises(DataError, match=r"b\.csv: columns \['x', 'z'\] differ from .*a\.csv"):
        io.read_csv_strings([str(a), str(b)])


def test_types_promote_int_to_float_and_keep_missing_values_missing(tmp_path):
    import pyarrow as pa

    path = _write(tmp_path / "a.csv", "i,f,s,m\n1,1,x,\n,2.5,7,\n3,,y,4\n")
    table = io.infer_column_types(io.read_csv_strings([str(path)]))
    assert table.schema.types == [pa.int64(), pa.float64(), pa.binary(), pa.int64()]
    assert table.to_pydict() == {
        "i": [1, None, 3],
        "f": [1.0, 2.5, None],
        "s": [b"x", b"7", b"y"],
        "m": [None, None, 4],
    }


def test_row_hash_depends_on_row_text_only(tmp_path):
    rows = ["1,a", "2,b", "3,", "2.5,c"]
    a = _write(tmp_path / "a.csv", "n,s\n" + "\n".join(rows) + "\n")
    b = _write(tmp_path / "b.csv", "n,s\n" + "\n".join(reversed(rows[1:])) + "\n")
    hash_a = io.row_fingerprints(io.read_csv_strings([str(a)]))
    hash_b = io.row_fingerprints(io.read_csv_strings([str(b)]))
    assert list(hash_b) == list(reversed(hash_a[1:]))
    assert len(set(hash_a)) == 4


def test_tfrecord_round_trip_and_corruption_detected(tmp_path):
    records = [b"", b"one", b"x" * 70000]
    path = io.write_examples(str(tmp_path / "Split-a"), records)
    assert io.read_examples(str(tmp_path / "Split-a")) == records
    data = bytearray(gzip.decompress(Path(path).read_bytes()))
    data[-5] ^= 1  # a bit flip inside the last record
    Path(path).write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DataError, match="fails its CRC32C check"):
        io.read_examples(str(tmp_path / "Split-a"))


def test_import_example_gen_resplits_tfrecords_plain_or_gzipped(tmp_path):
    from mlpipe.components.example_gen import ImportExampleGen
    from mlpipe.dsl.context import ExecutionContext
    from mlpipe.types.standard import Examples

    records = [f"record {i}".encode() for i in range(300)]
    io.write_examples(str(tmp_path / "in"), records[:200])
    plain = tmp_path / "in" / "more.tfrecord"
    plain.write_bytes(
        gzip.decompress(Path(io.write_examples(str(tmp_path / "tmp"), records[200:])).read_bytes())
    )
    out = Examples(uri=str(tmp_path / "out"))
    config = {
        "split_config": {"splits": [{"name": "a", "hash_buckets": 1}, {"name": "b", "hash_buckets": 1}]}
    }
    ctx = ExecutionContext(
        "ImportExampleGen", "p", "run", 1, {}, {"examples": out},
        {"input_base": str(tmp_path / "in"), "input_config": None, "range_config": None, "output_config": config},
        str(tmp_path / "tmp"),
    )  # fmt: skip
    ImportExampleGen.execute(ctx)
    split_a, split_b = io.read_examples(out.split_uri("a")), io.read_examples(out.split_uri("b"))
    assert sorted(split_a + split_b) == sorted(records)
    assert out.split_names == ["a", "b"] and out.get_custom_property("num_rows_a") == len(split_a)
    assert 100 < len(split_a) < 200


def _run_csv_example_gen(tmp_path: Path, output_config: dict):
    from mlpipe.dsl.context import ExecutionContext
    from mlpipe.types.standard import Examples

    out = Examples(uri=str(tmp_path / "out"))
    ctx = ExecutionContext(
        "CsvExampleGen", "p", "run", 1, {}, {"examples": out},
        {"input_base": str(tmp_path / "in"), "input_config": None, "range_config": None,
         "output_config": output_config},
        str(tmp_path / "tmp"),
    )  # fmt: skip
    CsvExampleGen.execute(ctx)
    return out


def test_partition_feature_keeps_each_value_in_one_split(tmp_path):
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    rows = [f"{user},{trip},{trip % 7}" for user in range(60) for trip in range(5)]
    _write(tmp_path / "in" / "trips.csv", "user,trip,fare\n" + "\n".join(rows) + "\n")
    config = {
        "split_config": {
            "splits": [{"name": "train", "hash_buckets": 2}, {"name": "eval", "hash_buckets": 1}],
            "partition_feature_name": "user",
        }
    }
    out = _run_csv_example_gen(tmp_path, config)
    users = {}
    for split in ("train", "eval"):
        batch = ExamplesToRecordBatchDecoder().DecodeBatch(io.read_examples(out.split_uri(split)))
        users[split] = [v[0] for v in batch.column(batch.schema.names.index("user")).to_pylist()]
    assert len(users["train"]) + len(users["eval"]) == 300
    assert not set(users["train"]) & set(users["eval"])  # no user's trips on both sides
    assert all(users[s].count(u) == 5 for s in users for u in set(users[s]))
    assert 25 <= len(set(users["train"])) <= 55  # about 2:1 over users


def test_partition_feature_must_exist_and_have_a_value_in_every_row(tmp_path):
    _write(tmp_path / "in" / "trips.csv", "user,fare\n1,2\n,3\n4,5\n")
    config = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}], "partition_feature_name": "x"}}
    with pytest.raises(DataError, match=r"partition_feature_name 'x' is not a column .*\['fare', 'user'\]"):
        _run_csv_example_gen(tmp_path, config)
    config["split_config"]["partition_feature_name"] = "user"
    with pytest.raises(
        DataError, match=r"trips.csv: data row 2 \(header not counted\): partition_feature_name 'user' has no"
    ):
        _run_csv_example_gen(tmp_path, config)
    with pytest.raises(DefinitionError, match="partition_feature_name must be a column name"):
        CsvExampleGen(
            input_base="x",
            output_config={"split_config": {**config["split_config"], "partition_feature_name": 3}},
        )


def test_output_config_is_checked_when_the_pipeline_is_defined():
    assert split_config(None) == [("train", 2), ("eval", 1)]
    config = {
        "split_config": {"splits": [{"name": "a", "hash_buckets": 9}, {"name": "b", "hash_buckets": 1}]}
    }
    assert split_config(config) == [("a", 9), ("b", 1)]
    with pytest.raises(DefinitionError, match="positive int 'hash_buckets'"):
        CsvExampleGen(input_base="x", output_config={"split_config": {"splits": [{"name": "a"}]}})
    with pytest.raises(DefinitionError, match="must look like"):
        CsvExampleGen(input_base="x", output_config={"splits": []})
    with pytest.raises(DefinitionError, match="split names must be unique"):
        split_config({"split_config": {"splits": [{"name": "a", "hash_buckets": 1}] * 2}})


def test_unknown_stats_option_is_a_definition_error():
    with pytest.raises(DefinitionError, match=r"unknown stats_options \['num_top'\]"):
        StatisticsGen(
            examples=CsvExampleGen(input_base="x").outputs["examples"], stats_options={"num_top": 3}
        )


def test_anomaly_table_lines_up_columns():
    table = anomaly_table([("trip_miles", "Unexpected data type", "eval"), ("fare", "Out of range", "train")])
    assert table.splitlines() == [
        "feature     anomaly               split",
        "trip_miles  Unexpected data type  eval",
        "fare        Out of range          train",
    ]


# --- pipelines on the real stack (TensorFlow, TFDV, Beam) -----------------------------------------


def _taxi_head(folder: Path, rows: int = HEAD_ROWS) -> Path:
    lines = TAXI_CSV.read_text().splitlines(keepends=True)[: rows + 1]
    return _write(folder / "taxi.csv", "".join(lines))


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """One run of the whole data pipeline on clean data, with both StatisticsGen paths."""
    from mlpipe import LocalDagRunner, Pipeline
    from mlpipe.components.example_validator import ExampleValidator
    from mlpipe.components.schema_gen import SchemaGen

    tmp = tmp_path_factory.mktemp("clean")
    _taxi_head(tmp / "data")
    gen = CsvExampleGen(input_base=str(tmp / "data"))
    stats = StatisticsGen(examples=gen.outputs["examples"])
    beam_stats = StatisticsGen(examples=gen.outputs["examples"], beam_threshold_rows=0).with_id("BeamStats")
    schema = SchemaGen(statistics=stats.outputs["statistics"])
    validator = ExampleValidator(statistics=stats.outputs["statistics"], schema=schema.outputs["schema"])
    pipeline = Pipeline("data", tmp / "root", [gen, stats, beam_stats, schema, validator])
    result = LocalDagRunner(progress=False).run(pipeline)
    for node, r in result.results.items():
        print(f"{node}: {r.seconds:.1f}s")
    return {node: r.outputs for node, r in result.results.items()}


def _records(examples) -> dict[str, list]:
    import tensorflow as tf

    out = {}
    for split in examples.split_names:
        files = sorted(Path(examples.split_uri(split)).glob("*.gz"))
        dataset = tf.data.TFRecordDataset([str(f) for f in files], compression_type="GZIP")
        out[split] = [tf.train.Example.FromString(r.numpy()) for r in dataset]
    return out


@pytest.mark.e2e
def test_examples_in_tfx_layout_with_2_to_1_split(clean_run):
    (examples,) = clean_run["CsvExampleGen"]["examples"]
    assert examples.split_names == ["train", "eval"]
    assert examples.get_property("span") == 0 and examples.get_property("version") == 0
    for split in examples.split_names:
        assert os.listdir(examples.split_uri(split)) == ["data_tfrecord-00000-of-00001.gz"]
    records = _records(examples)
    sizes = {split: len(r) for split, r in records.items()}
    assert sum(sizes.values()) == HEAD_ROWS
    assert abs(sizes["train"] / HEAD_ROWS - 2 / 3) < 0.05
    assert examples.get_custom_property("num_rows_train") == sizes["train"]


@pytest.mark.e2e
def test_empty_cell_is_a_feature_without_values_as_in_tfx(clean_run):
    (examples,) = clean_run["CsvExampleGen"]["examples"]
    # first data row: ",12.45,5,19,6,1400269500,,,,,0.0,,,Credit Card,...": no pickup_community_area
    (first,) = [
        e
        for split in _records(examples).values()
        for e in split
        if e.features.feature["trip_start_timestamp"].int64_list.value == [1400269500]
        and e.features.feature["payment_type"].bytes_list.value == [b"Credit Card"]
        and abs(e.features.feature["fare"].float_list.value[0] - 12.45) < 1e-4
    ]
    # TFX's CsvExampleGen: an empty cell of a typed column is an empty list of the column's type
    assert first.features.feature["pickup_community_area"].HasField("int64_list")
    assert list(first.features.feature["pickup_community_area"].int64_list.value) == []
    assert first.features.feature["pickup_latitude"].HasField("float_list")
    assert list(first.features.feature["pickup_latitude"].float_list.value) == []
    # a column empty in all 3000 rows has no type: a feature without a kind (TFX's UNKNOWN column)
    assert first.features.feature["pickup_census_tract"].WhichOneof("kind") is None
    assert first.features.feature["trip_miles"].float_list.value == [0.0]
    assert first.features.feature["trip_seconds"].int64_list.value == [0]


@pytest.mark.e2e
def test_statistics_schema_and_no_anomalies_on_clean_data(clean_run):
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

    (statistics,) = clean_run["StatisticsGen"]["statistics"]
    train = tfdv.load_stats_binary(os.path.join(statistics.split_uri("train"), "FeatureStats.pb"))
    (dataset,) = train.datasets
    assert dataset.num_examples == clean_run["CsvExampleGen"]["examples"][0].get_custom_property(
        "num_rows_train"
    )
    (schema_artifact,) = clean_run["SchemaGen"]["schema"]
    schema = tfdv.load_schema_text(os.path.join(schema_artifact.uri, "schema.pbtxt"))
    types = {f.name: f.type for f in schema.feature}
    assert types["fare"] == schema_pb2.FLOAT and types["trip_seconds"] == schema_pb2.INT
    assert types["company"] == schema_pb2.BYTES
    # pickup_census_tract is empty in all 3000 rows: a feature without a kind in every row, which
    # TFDV sees as a feature without values, and types BYTES (as on TFX's Examples of these rows)
    assert len(types) == 18 and types["pickup_census_tract"] == schema_pb2.BYTES
    (anomalies,) = clean_run["ExampleValidator"]["anomalies"]
    for split in ("train", "eval"):
        with open(os.path.join(anomalies.split_uri(split), "SchemaDiff.pb"), "rb") as f:
            assert not anomalies_pb2.Anomalies.FromString(f.read()).anomaly_info


@pytest.mark.e2e
def test_beam_and_in_memory_statistics_agree(clean_run):
    import tensorflow_data_validation as tfdv

    def summary(artifact, split):
        """Exact counts and top values; means apart, as Beam sums in another order (last-digit noise)."""
        stats = tfdv.load_stats_binary(os.path.join(artifact.split_uri(split), "FeatureStats.pb"))
        exact, means = {"rows": stats.datasets[0].num_examples}, {}
        for f in stats.datasets[0].features:
            name = f.path.step[0]
            if f.HasField("num_stats"):
                exact[name] = f.num_stats.common_stats.num_non_missing
                means[name] = f.num_stats.mean
            else:
                top = f.string_stats.top_values[:1]
                exact[name] = (
                    f.string_stats.common_stats.num_non_missing,
                    [(t.value, t.frequency) for t in top],
                )
        return exact, means

    (memory,) = clean_run["StatisticsGen"]["statistics"]
    (beam,) = clean_run["BeamStats"]["statistics"]
    for split in ("train", "eval"):
        exact, means = summary(memory, split)
        beam_exact, beam_means = summary(beam, split)
        assert exact == beam_exact
        assert means == pytest.approx(beam_means, rel=1e-12)
        assert len(exact) == 19  # rows + 18 features (pickup_census_tract without values)
        assert exact["company"][1][0][0] == "Taxi Affiliation Services"
        assert exact["pickup_census_tract"] == (0, [])


@pytest.mark.e2e
def test_text_in_numeric_column_fails_validation_and_keeps_anomalies(clean_run, tmp_path):
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    from mlpipe import LocalDagRunner, Pipeline
    from mlpipe.components.example_validator import ExampleValidator
    from mlpipe.components.schema_gen import ImportSchemaGen
    from mlpipe.metadata.queries import artifacts
    from mlpipe.metadata.store import MetadataStore
    from mlpipe.orchestration.run_result import RunError

    header, *rows = TAXI_CSV.read_text().splitlines()[:301]
    miles = header.split(",").index("trip_miles")
    bad = [",".join(c if i != miles else "unknown" for i, c in enumerate(r.split(","))) for r in rows[:50]]
    _write(tmp_path / "data" / "taxi.csv", "\n".join([header, *bad, *rows[50:]]) + "\n")
    (schema,) = clean_run["SchemaGen"]["schema"]
    gen = CsvExampleGen(input_base=str(tmp_path / "data"))
    stats = StatisticsGen(examples=gen.outputs["examples"])
    imported = ImportSchemaGen(schema_file=os.path.join(schema.uri, "schema.pbtxt"))
    validator = ExampleValidator(statistics=stats.outputs["statistics"], schema=imported.outputs["schema"])
    pipeline = Pipeline("bad_data", tmp_path / "root", [gen, stats, imported, validator])
    with pytest.raises(RunError) as info:
        LocalDagRunner(progress=False).run(pipeline)
    message = str(info.value)
    assert "node 'ExampleValidator' failed" in message
    assert "trip_miles" in message and "feature" in message and "split" in message

    (anomalies,) = artifacts(MetadataStore(pipeline.metadata), "ExampleAnomalies")
    with open(os.path.join(anomalies.uri, "Split-train", "SchemaDiff.pb"), "rb") as f:
        assert "trip_miles" in anomalies_pb2.Anomalies.FromString(f.read()).anomaly_info


# --- what `mlpipe run` prints on bad data ----------------------------------------------------------


def _mlpipe_run(tmp_path: Path, pipeline_code: str) -> str:
    """Run ``mlpipe run`` on a pipeline file in a subprocess; returns its stderr (exit status 1)."""
    import subprocess
    import sys

    pipeline_file = _write(tmp_path / "pipeline.py", pipeline_code)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "mlpipe.cli", "run", str(pipeline_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 1, done.stderr
    return done.stderr


def _paths_in(text: str, root: Path) -> list[str]:
    import re

    return re.findall(rf"{re.escape(str(root))}[^\s:()]*", text)


def test_mlpipe_run_on_malformed_csv_names_file_line_and_log_without_a_traceback(tmp_path):
    bad = _write(tmp_path / "data" / "bad.csv", 'a,b\n1,2\n3,"oops\n4,5\n')
    stderr = _mlpipe_run(
        tmp_path,
        "from mlpipe import Pipeline\n"
        "from mlpipe.components.example_gen import CsvExampleGen\n"
        f"pipeline = Pipeline('bad', {str(tmp_path / 'root')!r}, [CsvExampleGen(input_base={str(bad.parent)!r})])\n",
    )
    assert "Traceback" not in stderr and 'File "' not in stderr
    assert f"{bad}:3: a quote opened on this line is never closed" in stderr
    (log,) = {p for p in _paths_in(stderr, tmp_path / "root") if p.endswith("executor.log")}
    assert f"full log of CsvExampleGen: {log}" in stderr
    assert "Traceback" in Path(log).read_text()  # the traceback is kept, in the node's log


@pytest.mark.e2e
def test_mlpipe_run_on_anomalies_names_the_published_anomalies_folder(tmp_path):
    data = _write(tmp_path / "data" / "ok.csv", "a,b\n1,x\n2,y\n3,z\n4,w\n5,v\n6,u\n")
    schema = _write(
        tmp_path / "schema.pbtxt",
        'feature { name: "a" type: INT presence { min_fraction: 1.0 min_count: 1 } }\n'
        'feature { name: "b" type: INT presence { min_fraction: 1.0 min_count: 1 } }\n',
    )
    root = tmp_path / "root"
    stderr = _mlpipe_run(
        tmp_path,
        "from mlpipe import Pipeline\n"
        "from mlpipe.components.example_gen import CsvExampleGen\n"
        "from mlpipe.components.example_validator import ExampleValidator\n"
        "from mlpipe.components.schema_gen import ImportSchemaGen\n"
        "from mlpipe.components.statistics_gen import StatisticsGen\n"
        f"gen = CsvExampleGen(input_base={str(data.parent)!r})\n"
        "stats = StatisticsGen(examples=gen.outputs['examples'])\n"
        f"schema = ImportSchemaGen(schema_file={str(schema)!r})\n"
        "check = ExampleValidator(statistics=stats.outputs['statistics'], schema=schema.outputs['schema'])\n"
        f"pipeline = Pipeline('anomalous', {str(root)!r}, [gen, stats, schema, check])\n",
    )
    assert "Traceback" not in stderr and ".staging" not in stderr
    assert "b        Unexpected data type" in stderr  # b holds text where the schema says INT
    paths = set(_paths_in(stderr, root))
    anomalies = {p for p in paths if "/ExampleValidator/anomalies/" in p}
    assert len(anomalies) == 1 and paths
    for path in paths:  # every path printed exists after the run
        assert os.path.exists(path), path
    (folder,) = anomalies
    assert os.path.isfile(os.path.join(folder, "Split-train", "SchemaDiff.pb"))
    log = next(p for p in paths if p.endswith("executor.log"))
    assert ".staging" not in Path(log).read_text()
