"""Data for the TFX-style test pipelines: a penguin-like CSV (three species, four measurements)
and a head of the bundled taxi sample, both written by fixtures (no downloads)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
PIPELINES = Path(__file__).parent / "pipelines"

# species -> (culmen length, culmen depth, flipper length, body mass) means; spreads are 4% of them,
# so the species are well apart and a small model separates them.
PENGUIN_MEANS = {
    0: (39.0, 18.3, 190.0, 3700.0),
    1: (48.8, 18.4, 196.0, 3730.0),
    2: (47.5, 15.0, 217.0, 5080.0),
}
PENGUIN_COLUMNS = ["species", "culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g"]


def write_penguins(path: Path, rows: int = 300, seed: int = 7) -> None:
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PENGUIN_COLUMNS)
        for i in range(rows):
            species = i % 3
            writer.writerow([species, *(round(rng.gauss(m, 0.04 * m), 1) for m in PENGUIN_MEANS[species])])


PENGUIN_SCHEMA = "".join(
    f'feature {{ name: "{name}" type: {kind} presence {{ min_fraction: 1.0 min_count: 1 }} '
    f"shape {{ dim {{ size: 1 }} }} }}\n"
    for name, kind in zip(PENGUIN_COLUMNS, ["INT", "FLOAT", "FLOAT", "FLOAT", "FLOAT"], strict=True)
)


@pytest.fixture(scope="module")
def penguin_schema(tmp_path_factory) -> Path:
    """A curated schema for the Importer: every column present, one value each."""
    folder = tmp_path_factory.mktemp("penguin_schema")
    (folder / "schema.pbtxt").write_text(PENGUIN_SCHEMA)
    return folder


@pytest.fixture(scope="module")
def penguin_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("penguin_data")
    write_penguins(data / "penguins.csv")
    return data


@pytest.fixture(scope="module")
def taxi_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("taxi_data")
    with (
        open(REPO / "examples" / "data" / "chicago_taxi.csv", newline="") as src,
        open(data / "data.csv", "w", newline="") as dst,
    ):
        writer = csv.writer(dst)
        for _, row in zip(range(2001), csv.reader(src), strict=False):
            writer.writerow(row)
    return data
