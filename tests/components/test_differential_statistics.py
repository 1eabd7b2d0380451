"""Statistics, schema and anomalies of mlpipe's data components against TFDV's own runs.

mlpipe's StatisticsGen summarizes a split in process from the ExampleGen's columnar copy; TFDV's
oracle here is ``tfdv.generate_statistics_from_tfrecord`` (its Beam pipeline, decoding the
written tf.Examples with tfx_bsl) on the same files. Every statistic must agree: counts and
presence exactly, floats (means, deviations, histogram boundaries and counts, quantiles) within
1e-9 relative. SchemaGen's schema must be ``tfdv.infer_schema`` of TFDV's statistics, and
ExampleValidator must report what ``tfdv.validate_statistics`` reports: nothing on the data the
schema came from, the same anomalies on drifted and broken data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support.oracles import differences

DATA = Path(__file__).parents[2] / "examples" / "data"
TAXI_CSV = DATA / "chicago_taxi.csv"
sys.path.insert(0, str(DATA))
import generate  # noqa: E402  (examples/data/generate.py is a script, not a package)

# Generated rows with what real files hold: empty cells, NaN/inf, unicode, huge ints (text),
# quoted commas and line breaks, a column without any value.
EDGE_ROWS = [
    ("1", "1.5", "é🙂", "99999999999999999999", ""),
    ("", "nan", "", "5", ""),
    ("-5", "inf", '"a,b"', "", ""),
    ("7", "", '"line\nbreak"', "12", ""),
    ("0", "-0.25", "x", "-3", ""),
    ("3", "1e300", "x", "4", ""),
]


def _edge_csv(folder: Path, copies: int = 40) -> Path:
    lines = ["n,f,s,big,none"] + [",".join(row) for row in EDGE_ROWS] * copies
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "edge.csv").write_text("\n".join(lines) + "\n")
    return folder


def _run(data: Path, root: Path, schema_file: Path | None = None) -> dict:
    from mlpipe import LocalDagRunner, Pipeline
    from mlpipe.components.example_gen import CsvExampleGen
    from mlpipe.components.example_validator import ExampleValidator
    from mlpipe.components.schema_gen import ImportSchemaGen, SchemaGen
    from mlpipe.components.statistics_gen import StatisticsGen

    gen = CsvExampleGen(input_base=str(data))
    stats = StatisticsGen(examples=gen.outputs["examples"])
    if schema_file is None:
        schema = SchemaGen(statistics=stats.outputs["statistics"])
    else:
        schema = ImportSchemaGen(schema_file=str(schema_file))
    check = ExampleValidator(
        statistics=stats.outputs["statistics"], schema=schema.outputs["schema"], fail_on_anomalies=False
    )
    result = LocalDagRunner(progress=False).run(Pipeline("diff", root, [gen, stats, schema, check]))
    return {node: r.outputs for node, r in result.results.items()}


def _tfdv_statistics(examples, split: str, out: Path):
    import tensorflow_data_validation as tfdv

    from mlpipe.io.beam import beam_pipeline_options

    return tfdv.generate_statistics_from_tfrecord(
        data_location=os.path.join(examples.split_uri(split), "*.gz"),
        output_path=str(out / f"{split}.stats"),
        pipeline_options=beam_pipeline_options([]),
    )


def _mlpipe_statistics(outputs: dict, split: str):
    import tensorflow_data_validation as tfdv

    (artifact,) = outputs["StatisticsGen"]["statistics"]
    return tfdv.load_stats_binary(os.path.join(artifact.split_uri(split), "FeatureStats.pb"))


def _by_feature(statistics) -> dict[str, dict]:
    from google.protobuf.json_format import MessageToDict

    (dataset,) = statistics.datasets
    features = {"/".join(f.path.step): MessageToDict(f, float_precision=None) for f in dataset.features}
    return {"num_examples": dataset.num_examples, **features}


@pytest.fixture(scope="module", params=["taxi", "edge", "generated"])
def dataset(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "taxi":
        (tmp / "data").mkdir()
        (tmp / "data" / "taxi.csv").write_bytes(TAXI_CSV.read_bytes())
        data = tmp / "data"
    elif request.param == "edge":
        data = _edge_csv(tmp / "data")
    else:
        (path,) = generate.write_spans(tmp / "data", 3000, spans=1, seed=5)
        data = path.parent
    outputs = _run(data, tmp / "root")
    (examples,) = outputs["CsvExampleGen"]["examples"]
    tfdv_stats = {split: _tfdv_statistics(examples, split, tmp) for split in examples.split_names}
    return request.param, outputs, tfdv_stats


@pytest.mark.e2e
def test_statistics_equal_tfdv_on_the_same_examples(dataset):
    name, outputs, tfdv_stats = dataset
    for split, theirs in tfdv_stats.items():
        mine = _mlpipe_statistics(outputs, split)
        assert mine.datasets[0].num_examples == theirs.datasets[0].num_examples > 0
        mine, theirs = _by_feature(mine), _by_feature(theirs)
        assert differences(mine, theirs) == [], (name, split)
        assert len(mine) > 5 and any("histograms" in str(f) for f in mine.values())  # compared in full


@pytest.mark.e2e
def test_schema_is_tfdv_inference_and_its_data_has_no_anomaly(dataset):
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    name, outputs, tfdv_stats = dataset
    (schema_artifact,) = outputs["SchemaGen"]["schema"]
    schema = tfdv.load_schema_text(os.path.join(schema_artifact.uri, "schema.pbtxt"))
    expected = tfdv.infer_schema(tfdv_stats["train"])
    expected = tfdv.update_schema(expected, tfdv_stats["eval"])
    assert schema == expected, name
    (anomalies,) = outputs["ExampleValidator"]["anomalies"]
    for split, theirs in tfdv_stats.items():
        with open(os.path.join(anomalies.split_uri(split), "SchemaDiff.pb"), "rb") as f:
            found = anomalies_pb2.Anomalies.FromString(f.read())
        assert not found.anomaly_info and not tfdv.validate_statistics(theirs, schema).anomaly_info, (
            name,
            split,
        )


def _anomaly_info(anomalies) -> dict[str, dict]:
    from google.protobuf.json_format import MessageToDict

    return {name: MessageToDict(info) for name, info in anomalies.anomaly_info.items()}


@pytest.mark.e2e
def test_drifted_and_broken_data_give_the_anomalies_tfdv_reports(tmp_path):
    """A schema inferred from clean generated data; then a span with a new payment type on 30% of
    trips (and x3 fares), and one with the text "unknown" in trip_miles on 5% of rows."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    (clean,) = generate.write_spans(tmp_path / "clean", 2000, spans=1, seed=3)
    clean_run = _run(clean.parent, tmp_path / "clean_root")
    (schema_artifact,) = clean_run["SchemaGen"]["schema"]
    schema_file = Path(schema_artifact.uri) / "schema.pbtxt"
    schema = tfdv.load_schema_text(str(schema_file))
    drifted, broken = generate.write_spans(
        tmp_path / "bad", 2000, spans=2, seed=3, drift_span=1, text_in_numeric_span=2
    )
    found = {}
    for name, path in (("drifted", drifted), ("broken", broken)):
        outputs = _run(path.parent, tmp_path / f"{name}_root", schema_file)
        (examples,) = outputs["CsvExampleGen"]["examples"]
        (anomalies,) = outputs["ExampleValidator"]["anomalies"]
        for split in examples.split_names:
            with open(os.path.join(anomalies.split_uri(split), "SchemaDiff.pb"), "rb") as f:
                mine = _anomaly_info(anomalies_pb2.Anomalies.FromString(f.read()))
            theirs = _anomaly_info(
                tfdv.validate_statistics(_tfdv_statistics(examples, split, tmp_path), schema)
            )
            assert mine == theirs, (name, split)
            found[name, split] = set(mine)
    assert found["drifted", "train"] == found["drifted", "eval"] == {"payment_type"}
    assert "trip_miles" in found["broken", "train"]
