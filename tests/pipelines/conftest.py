"""A 3,000-trip head of the bundled taxi sample, shared by the end-to-end pipeline tests."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("taxi_data")
    with (
        open(REPO / "examples" / "data" / "chicago_taxi.csv", newline="") as src,
        open(data / "data.csv", "w") as dst,
    ):
        writer = csv.writer(dst)
        for _, row in zip(range(3001), csv.reader(src), strict=False):
            writer.writerow(row)
    return data
