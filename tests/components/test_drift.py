"""Drift between spans, end to end: generated taxi spans arrive one at a time; ExampleValidator
compares each span's statistics with the previous run's (a Resolver) and stops the drifted one.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.components.example_validator import ExampleValidator
from mlpipe.components.schema_gen import SchemaGen
from mlpipe.components.statistics_gen import StatisticsGen
from mlpipe.dsl.resolver import Resolver
from mlpipe.types.standard import ExampleStatistics

sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "data"))
import generate  # noqa: E402  (examples/data/generate.py is a script, not a package)

ROWS_PER_SPAN = 3000
SPANS = {"pattern": "span-{SPAN}/*.csv"}
# Measured on these spans: fare's approximate JS divergence is 0.08-0.11 between clean spans (1000-2000
# rows per split are a noisy histogram) and 0.48-0.65 against the x3 fares; payment_type's L-infinity
# distance is < 0.03 between clean spans and 0.3 with the new category.
DRIFT = {"payment_type": {"infinity_norm": 0.1}, "fare": {"jensen_shannon_divergence": 0.25}}


def _pipeline(root: Path, data: Path, drift: dict):
    from mlpipe import Pipeline

    gen = CsvExampleGen(input_base=str(data), input_config={"splits": [{"name": "single_split", **SPANS}]})
    stats = StatisticsGen(examples=gen.outputs["examples"])
    schema = SchemaGen(statistics=stats.outputs["statistics"])
    previous = Resolver(strategy="latest_artifact", statistics=ExampleStatistics).with_id("previous_stats")
    validator = ExampleValidator(
        statistics=stats.outputs["statistics"],
        schema=schema.outputs["schema"],
        baseline_statistics=previous.outputs["statistics"],
        drift_comparator=drift,
    )
    return Pipeline("drift", root, [gen, stats, schema, previous, validator])


class _Uncached:
    """Runs without the cache: its key does not see which files a span pattern resolves to (the
    launcher hashes parameters, not input files), so a new span would be a stale cache hit."""

    def run(self, pipeline):
        from mlpipe.orchestration.local import LocalDagRunner

        return LocalDagRunner(progress=False).run(pipeline, enable_cache=False)


def _arrive(staged: Path, data: Path, span: int) -> None:
    """A new span lands in the input folder, as a daily delivery would."""
    shutil.move(str(staged / f"span-{span}"), str(data / f"span-{span}"))


def _latest(pipeline, type_name: str):
    from mlpipe.metadata.queries import artifacts
    from mlpipe.metadata.store import MetadataStore

    store = MetadataStore(pipeline.metadata)
    try:
        return artifacts(store, type_name)[0], store
    except BaseException:
        store.close()
        raise


@pytest.mark.e2e
def test_drifted_span_fails_with_the_drift_named_and_clean_spans_pass(tmp_path):
    from mlpipe.orchestration.run_result import RunError
    from mlpipe.types.artifact import ABANDONED

    staged, data, root = tmp_path / "staged", tmp_path / "data", tmp_path / "root"
    generate.write_spans(staged, ROWS_PER_SPAN, spans=3, seed=0, drift_span=2)
    data.mkdir()
    runner = _Uncached()

    _arrive(staged, data, 1)
    first = runner.run(_pipeline(root, data, DRIFT))
    assert first.results["previous_stats"].outputs["statistics"] == []  # nothing to compare with yet
    (examples,) = first.results["CsvExampleGen"].outputs["examples"]
    assert (examples.get_property("span"), examples.get_property("version")) == (1, 0)
    (anomalies,) = first.results["ExampleValidator"].outputs["anomalies"]
    assert anomalies.get_custom_property("num_anomalies_train") == 0

    _arrive(staged, data, 2)
    pipeline = _pipeline(root, data, DRIFT)
    with pytest.raises(RunError) as failure:
        runner.run(pipeline)
    message = str(failure.value)
    assert "node 'ExampleValidator' failed" in message and "baseline span 1" in message
    assert "payment_type  High Linfty distance between current and previous" in message
    assert "fare          High approximate Jensen-Shannon divergence between current and previous" in message
    anomalies, store = _latest(pipeline, "ExampleAnomalies")  # published although the run failed
    store.close()
    assert anomalies.get_property("span") == 2 and anomalies.get_custom_property("baseline_span") == 1
    assert os.path.isfile(os.path.join(anomalies.split_uri("train"), "SchemaDiff.pb"))

    # Span 2 was rejected, so its statistics must not become the next baseline: retire them in
    # MLMD (otherwise clean span 3 would, rightly, drift from drifted span 2).
    drifted, store = _latest(pipeline, "ExampleStatistics")
    assert drifted.get_property("span") == 2
    store.mark_artifacts([drifted], ABANDONED)
    store.close()

    _arrive(staged, data, 3)
    third = runner.run(_pipeline(root, data, DRIFT))
    (baseline,) = third.results["previous_stats"].outputs["statistics"]
    assert baseline.get_property("span") == 1
    (anomalies,) = third.results["ExampleValidator"].outputs["anomalies"]
    assert anomalies.get_property("span") == 3 and anomalies.get_custom_property("num_anomalies_eval") == 0


@pytest.mark.e2e
def test_numeric_column_turned_text_is_an_anomaly_not_a_crash(tmp_path):
    from mlpipe.orchestration.run_result import RunError

    staged, data, root = tmp_path / "staged", tmp_path / "data", tmp_path / "root"
    generate.write_spans(staged, 1000, spans=2, seed=1, text_in_numeric_span=2)
    data.mkdir()
    drift = {"trip_miles": {"jensen_shannon_divergence": 0.5}}
    runner = _Uncached()
    _arrive(staged, data, 1)
    runner.run(_pipeline(root, data, drift))
    _arrive(staged, data, 2)
    with pytest.raises(RunError) as failure:
        runner.run(_pipeline(root, data, drift))
    message = str(failure.value)
    assert "node 'ExampleValidator' failed" in message
    assert "trip_miles  Type changed from FLOAT to STRING since the baseline  train" in message


def test_skew_compares_train_with_eval_and_bad_thresholds_fail_at_definition(tmp_path):
    import tensorflow_data_validation as tfdv

    from mlpipe.dsl.context import ExecutionContext
    from mlpipe.errors import DefinitionError, ValidationFailure
    from mlpipe.types.standard import ExampleAnomalies, Schema

    taxi = generate.load_taxi().head(600)
    frames = {
        "train": generate.generate_span(taxi, 600, seed=2),
        "eval": generate.generate_span(taxi, 300, seed=3, drift=True),
    }
    statistics = ExampleStatistics(uri=str(tmp_path / "stats"))
    statistics.split_names = list(frames)
    for split, frame in frames.items():
        stats = tfdv.generate_statistics_from_dataframe(frame[["payment_type"]].astype(str))
        os.makedirs(statistics.split_uri(split))
        with open(os.path.join(statistics.split_uri(split), "FeatureStats.pb"), "wb") as f:
            f.write(stats.SerializeToString())
        if split == "train":
            schema = Schema(uri=str(tmp_path / "schema"))
            os.makedirs(schema.uri)
            tfdv.write_schema_text(tfdv.infer_schema(stats), os.path.join(schema.uri, "schema.pbtxt"))
    out = ExampleAnomalies(uri=str(tmp_path / "anomalies"))
    parameters = {"fail_on_anomalies": True, "drift_comparator": None}
    ctx = ExecutionContext(
        "ExampleValidator", "p", "run", 1, {"statistics": [statistics], "schema": [schema]},
        {"anomalies": out}, {**parameters, "skew_comparator": {"payment_type": {"infinity_norm": 0.1}}},
        str(tmp_path / "tmp"),
    )  # fmt: skip
    with pytest.raises(
        ValidationFailure, match=r"payment_type .*High Linfty distance between training and serving"
    ):
        ExampleValidator.execute(ctx)
    with pytest.raises(
        DefinitionError, match=r"skew_comparator\['fare'\]\['infinity_norm'\] must be a number in \[0, 1\]"
    ):
        stats_node = StatisticsGen(examples=CsvExampleGen(input_base="x").outputs["examples"])
        ExampleValidator(
            statistics=stats_node.outputs["statistics"],
            schema=SchemaGen(statistics=stats_node.outputs["statistics"]).outputs["schema"],
            skew_comparator={"fare": {"infinity_norm": 2}},
        )
