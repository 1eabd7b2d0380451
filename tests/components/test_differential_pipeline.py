"""The canonical pipeline with an inferred schema accepts the data it was inferred from.

CsvExampleGen -> StatisticsGen -> SchemaGen (inferred, no hand-made schema) -> ExampleValidator, as
in the TFX book, on the whole bundled taxi CSV and on generated taxi data: zero anomalies, as TFX
1.16 reports on the same files (measured: every taxi column present in all 15,002 rows, because
an empty cell is a feature with an empty value list).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parents[2] / "examples" / "data"
TAXI_CSV = DATA / "chicago_taxi.csv"
sys.path.insert(0, str(DATA))
import generate  # noqa: E402  (examples/data/generate.py is a script, not a package)


def _canonical_run(data: Path, root: Path) -> dict:
    from mlpipe import LocalDagRunner, Pipeline
    from mlpipe.components.example_gen import CsvExampleGen
    from mlpipe.components.example_validator import ExampleValidator
    from mlpipe.components.schema_gen import SchemaGen
    from mlpipe.components.statistics_gen import StatisticsGen

    gen = CsvExampleGen(input_base=str(data))
    stats = StatisticsGen(examples=gen.outputs["examples"])
    schema = SchemaGen(statistics=stats.outputs["statistics"])
    validator = ExampleValidator(statistics=stats.outputs["statistics"], schema=schema.outputs["schema"])
    result = LocalDagRunner(progress=False).run(Pipeline("canonical", root, [gen, stats, schema, validator]))
    return {node: r.outputs for node, r in result.results.items()}


def _anomalies(outputs: dict) -> dict[str, list[str]]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    (artifact,) = outputs["ExampleValidator"]["anomalies"]
    found = {}
    for split in artifact.split_names:
        with open(os.path.join(artifact.split_uri(split), "SchemaDiff.pb"), "rb") as f:
            found[split] = sorted(anomalies_pb2.Anomalies.FromString(f.read()).anomaly_info)
    return found


def _presence(outputs: dict) -> dict[str, tuple[int, int]]:
    """(num_missing, num_examples) of each feature in the train statistics."""
    import tensorflow_data_validation as tfdv

    (artifact,) = outputs["StatisticsGen"]["statistics"]
    stats = tfdv.load_stats_binary(os.path.join(artifact.split_uri("train"), "FeatureStats.pb"))
    (dataset,) = stats.datasets
    out = {}
    for feature in dataset.features:
        common = (
            feature.num_stats.common_stats
            if feature.HasField("num_stats")
            else feature.string_stats.common_stats
        )
        out[feature.path.step[0]] = (common.num_missing, dataset.num_examples)
    return out


@pytest.mark.e2e
def test_inferred_schema_accepts_the_bundled_taxi_csv(tmp_path):
    shutil.copy(TAXI_CSV, tmp_path / "taxi.csv")
    outputs = _canonical_run(tmp_path, tmp_path / "root")
    assert _anomalies(outputs) == {"train": [], "eval": []}
    presence = _presence(outputs)
    # as TFX: every one of the 18 columns present in every row, empty cells included
    assert len(presence) == 18
    assert {missing for missing, _ in presence.values()} == {0}
    (examples,) = outputs["CsvExampleGen"]["examples"]
    rows = sum(examples.get_custom_property(f"num_rows_{s}") for s in examples.split_names)
    assert rows == 15_002


@pytest.mark.e2e
def test_inferred_schema_accepts_generated_taxi_data(tmp_path):
    generate.write_spans(tmp_path / "data", 4000, spans=1, seed=7)
    (span,) = (tmp_path / "data").iterdir()
    outputs = _canonical_run(span, tmp_path / "root")
    assert _anomalies(outputs) == {"train": [], "eval": []}
    presence = _presence(outputs)
    # a column empty in every row has no type: TFX writes it as features without a kind, missing
    empty = {name for name, (missing, rows) in presence.items() if missing == rows}
    assert empty == {"pickup_census_tract"}
    assert {presence[name][0] for name in presence.keys() - empty} == {0}
