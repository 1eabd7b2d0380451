"""The taxi pipeline's data components on Beam's portable runner, against the in-process run.

A job server and an external worker pool run as separate processes (``tests/support/
beam_portable.py``), so every Beam pipeline here is pickled, shipped over gRPC and run in a worker
process that shares nothing with the test but the disk: what Flink, Spark or Dataflow would do.

The same data (the head of the taxi sample) goes through two pipelines that differ only in
``beam_pipeline_args``: one with no runner named (every component's in-process path; the
Evaluator on Beam's in-process FnApiRunner), one naming the PortableRunner
(ExampleGen, StatisticsGen, Transform, Evaluator and BulkInferrer on the workers). The model both
evaluate and score with is the in-process run's, imported, so every difference is the data path's.
The test compares what each component wrote: records and their split, row counts, statistics,
transformed values, metrics and predictions.
"""

from __future__ import annotations

import collections
import gzip
import math
import os
import time
from pathlib import Path

import pytest

from mlpipe.compat.tfx.dsl.importer import Importer
from mlpipe.components.bulk_inferrer import BulkInferrer
from mlpipe.components.evaluator import Evaluator
from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.components.schema_gen import ImportSchemaGen
from mlpipe.components.statistics_gen import StatisticsGen
from mlpipe.components.trainer import Trainer
from mlpipe.components.transform import Transform
from mlpipe.dsl.pipeline import Pipeline
from mlpipe.io import examples as io
from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.types import Model
from tests.support.beam_portable import start_portable_beam

REPO = Path(__file__).parents[2]
TAXI_CSV = REPO / "examples" / "data" / "chicago_taxi.csv"
TAXI_MODULE = REPO / "components" / "taxi_module.py"
SCHEMA_FILE = REPO / "pipelines" / "schema" / "schema.pbtxt"
HEAD_ROWS = 3000
EVAL_CONFIG = {
    "model_specs": [
        {"label_key": "big_tipper", "preprocessing_function_names": ["transform_features"]},
    ],
    "slicing_specs": [{}, {"feature_keys": ["payment_type"]}],
    "metrics_specs": [
        {"metrics": [{"class_name": "ExampleCount"}, {"class_name": "BinaryAccuracy"}, {"class_name": "AUC"}]}
    ],
}

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def portable_beam(tmp_path_factory):
    beam = start_portable_beam(tmp_path_factory.mktemp("beam_portable"), wait=False)  # ready when used
    yield beam
    beam.stop()
    assert beam.worker_pids() == [], "SDK workers outlived the worker pool"


def _data_components(data: Path, model_source) -> list:
    """The data components, and the node giving the model: ``model_source(transform, schema)``."""
    gen = CsvExampleGen(input_base=str(data))
    stats = StatisticsGen(examples=gen.outputs["examples"])
    schema = ImportSchemaGen(schema_file=str(SCHEMA_FILE))
    transform = Transform(
        examples=gen.outputs["examples"], schema=schema.outputs["schema"], module_file=str(TAXI_MODULE)
    )
    source, model = model_source(transform, schema)
    evaluator = Evaluator(examples=gen.outputs["examples"], model=model, eval_config=EVAL_CONFIG)
    inferrer = BulkInferrer(
        examples=gen.outputs["examples"], model=model, data_spec={"example_splits": ["eval"]}
    )
    return [gen, stats, schema, transform, source, evaluator, inferrer]


def _trainer(transform, schema):
    trainer = Trainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema.outputs["schema"],
        module_file=str(TAXI_MODULE),
        train_args={"num_steps": 30},
        eval_args={"num_steps": 5},
    )
    return trainer, trainer.outputs["model"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, portable_beam):
    """(in-process results, portable results, seconds of the portable run)."""
    root = tmp_path_factory.mktemp("taxi_portable")
    data = root / "data"
    data.mkdir()
    with open(TAXI_CSV) as f:
        (data / "taxi.csv").write_text(
            "".join(line for _, line in zip(range(HEAD_ROWS + 1), f, strict=False))
        )

    local_run = LocalDagRunner(progress=False).run(
        Pipeline(
            "taxi_local",
            str(root / "local"),
            _data_components(data, _trainer),
            metadata=sqlite(root / "local.sqlite"),
        )
    )
    portable_beam.wait_ready()  # started with the in-process run
    model_uri = local_run.results["Trainer"].outputs["model"][0].uri

    def imported(transform, schema):
        importer = Importer(source_uri=model_uri, artifact_type=Model).with_id("model")
        return importer, importer.outputs["result"]

    start = time.monotonic()
    portable_run = LocalDagRunner(progress=False).run(
        Pipeline(
            "taxi_portable",
            str(root / "portable"),
            _data_components(data, imported),
            metadata=sqlite(root / "portable.sqlite"),
            beam_pipeline_args=portable_beam.pipeline_args,
        )
    )
    seconds = time.monotonic() - start
    print(f"portable run of the data components: {seconds:.1f} s")
    return local_run, portable_run, seconds


def _output(run, node: str, key: str):
    (artifact,) = run.results[node].outputs[key]
    return artifact


def _records(split_dir: str) -> collections.Counter:
    return collections.Counter(io.read_examples(split_dir))


def test_example_gen_same_records_in_same_splits(runs):
    local, portable, _ = runs
    a, b = _output(local, "CsvExampleGen", "examples"), _output(portable, "CsvExampleGen", "examples")
    assert a.split_names == b.split_names == ["train", "eval"]
    total = 0
    for split in a.split_names:
        records = _records(a.split_uri(split))
        assert records == _records(b.split_uri(split)), split  # same bytes, same split, same multiplicity
        assert a.get_custom_property(f"num_rows_{split}") == b.get_custom_property(f"num_rows_{split}")
        assert b.get_custom_property(f"num_rows_{split}") == sum(records.values())
        total += sum(records.values())
    assert total == HEAD_ROWS


def _stats(statistics, split: str):
    import tensorflow_data_validation as tfdv

    stats = tfdv.load_stats_binary(os.path.join(statistics.split_uri(split), "FeatureStats.pb"))
    (dataset,) = stats.datasets
    return dataset


def test_statistics_equal_within_float_tolerance(runs):
    local, portable, _ = runs
    a, b = _output(local, "StatisticsGen", "statistics"), _output(portable, "StatisticsGen", "statistics")
    for split in ("train", "eval"):
        x, y = _stats(a, split), _stats(b, split)
        assert x.num_examples == y.num_examples > 0
        fx = {f.path.step[0]: f for f in x.features}
        fy = {f.path.step[0]: f for f in y.features}
        assert fx.keys() == fy.keys()
        for name, feature in fx.items():
            other = fy[name]
            assert feature.type == other.type, name
            if feature.HasField("num_stats"):
                p, q = feature.num_stats, other.num_stats
                assert p.common_stats.num_non_missing == q.common_stats.num_non_missing, name
                assert p.common_stats.num_missing == q.common_stats.num_missing, name
                for field in ("mean", "std_dev", "min", "max", "num_zeros"):
                    assert getattr(p, field) == pytest.approx(getattr(q, field), rel=1e-9, abs=1e-9), (
                        name,
                        field,
                    )
                assert p.median == pytest.approx(q.median, rel=0.02), name  # a quantiles sketch either way
            else:
                p, q = feature.string_stats, other.string_stats
                assert p.common_stats.num_non_missing == q.common_stats.num_non_missing, name
                assert p.unique == q.unique, name
                assert [(v.value, v.frequency) for v in p.top_values] == [
                    (v.value, v.frequency) for v in q.top_values
                ], name


def _transformed_rows(split_dir: str) -> list[tuple]:
    """Each transformed example as a sorted tuple of (feature, values), floats rounded for sorting."""
    from tensorflow.core.example import example_pb2

    rows = []
    for record in io.read_examples(split_dir):
        example = example_pb2.Example.FromString(record)
        row = []
        for name, feature in sorted(example.features.feature.items()):
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            row.append((name, tuple(values)))
        rows.append(tuple(row))
    return rows


def _same_rows(xs: list[tuple], ys: list[tuple]) -> None:
    def key(row):
        return tuple((n, tuple(round(v, 4) if isinstance(v, float) else v for v in vs)) for n, vs in row)

    assert len(xs) == len(ys)
    for x, y in zip(sorted(xs, key=key), sorted(ys, key=key), strict=True):
        assert [n for n, _ in x] == [n for n, _ in y]
        for (name, u), (_, v) in zip(x, y, strict=True):
            assert len(u) == len(v), name
            for p, q in zip(u, v, strict=True):
                if isinstance(p, float):
                    assert math.isclose(p, q, rel_tol=1e-5, abs_tol=1e-5), (name, p, q)
                else:
                    assert p == q, name


def test_transform_same_values(runs):
    import tensorflow_transform as tft

    local, portable, _ = runs
    for split in ("train", "eval"):
        a = _output(local, "Transform", "transformed_examples")
        b = _output(portable, "Transform", "transformed_examples")
        _same_rows(_transformed_rows(a.split_uri(split)), _transformed_rows(b.split_uri(split)))
    ga = tft.TFTransformOutput(_output(local, "Transform", "transform_graph").uri)
    gb = tft.TFTransformOutput(_output(portable, "Transform", "transform_graph").uri)
    for name in ("payment_type", "company"):
        assert ga.vocabulary_by_name(name) == gb.vocabulary_by_name(name)


def _metrics(evaluation) -> dict:
    import tensorflow_model_analysis as tfma

    values = {}
    for per_slice in tfma.load_metrics(evaluation.uri):
        slice_name = tfma.slicer.stringify_slice_key(tfma.slicer.deserialize_slice_key(per_slice.slice_key))
        for item in per_slice.metric_keys_and_values:
            values[(slice_name, item.key.name)] = item.value.double_value.value
    return values


def test_evaluator_same_metrics(runs):
    local, portable, _ = runs
    a, b = (
        _metrics(_output(local, "Evaluator", "evaluation")),
        _metrics(_output(portable, "Evaluator", "evaluation")),
    )
    assert a.keys() == b.keys()
    assert ("Overall", "auc") in a and a[("Overall", "example_count")] > 0
    for key, value in a.items():
        assert b[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert (
        _output(local, "Evaluator", "blessing").blessed == _output(portable, "Evaluator", "blessing").blessed
    )


def _predictions(inference) -> dict[bytes, list[float]]:
    from tensorflow_serving.apis import prediction_log_pb2

    scores = {}
    for path in sorted(Path(inference.uri).glob("prediction_logs-*.gz")):
        with gzip.open(path, "rb") as f:
            data = f.read()
        for record in _tfrecords(data):
            log = prediction_log_pb2.PredictionLog.FromString(record)
            (example,) = log.predict_log.request.inputs["examples"].string_val
            outputs = log.predict_log.response.outputs
            scores[example] = [v for name in sorted(outputs) for v in outputs[name].float_val]
    return scores


def _tfrecords(data: bytes):
    import struct

    offset = 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        yield data[offset + 12 : offset + 12 + length]
        offset += 16 + length


def test_bulk_inferrer_same_predictions(runs):
    local, portable, _ = runs
    a = _predictions(_output(local, "BulkInferrer", "inference_result"))
    b = _predictions(_output(portable, "BulkInferrer", "inference_result"))
    eval_rows = _output(local, "CsvExampleGen", "examples").get_custom_property("num_rows_eval")
    assert len(a) == eval_rows  # distinct examples: one prediction each
    assert a.keys() == b.keys()
    for example, scores in a.items():
        assert scores == pytest.approx(b[example], rel=1e-5, abs=1e-6)


def test_every_data_component_ran_on_the_external_workers(runs, portable_beam):
    local, portable, seconds = runs
    # one job each for ExampleGen, Transform, Evaluator and BulkInferrer, one per split for StatisticsGen
    assert portable_beam.log("job_server").count("with state DONE") == 6
    assert portable_beam.log("worker_pool").count("Starting worker") >= 6
    examples = _output(portable, "CsvExampleGen", "examples")
    assert not os.path.exists(os.path.join(examples.uri, ".columnar"))  # the Beam ExampleGen wrote it
    assert os.listdir(examples.split_uri("train")) == ["data_tfrecord-00000-of-00001.gz"]


def test_a_bad_csv_fails_with_the_workers_data_error(tmp_path, portable_beam):
    from mlpipe.dsl.context import ExecutionContext
    from mlpipe.errors import DataError
    from mlpipe.types.standard import Examples

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.csv").write_text("a,b\n1,2\n3\n")
    defaults = {n: s.default for n, s in CsvExampleGen.SPEC.parameters.items() if not s.required}
    outputs = {"examples": Examples(uri=str(tmp_path / "out"))}
    parameters = {**defaults, "input_base": str(tmp_path / "in")}
    ctx = ExecutionContext(
        "CsvExampleGen", "p", "run", 1, {}, outputs, parameters, str(tmp_path / "tmp"),
        beam_pipeline_args=portable_beam.pipeline_args,
    )  # fmt: skip
    portable_beam.wait_ready()
    with pytest.raises(DataError, match=r"bad\.csv:3: expected 2 fields as in the header, got 1"):
        CsvExampleGen.execute(ctx)
    assert not os.path.exists(outputs["examples"].split_uri("train"))
