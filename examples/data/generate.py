"""Deterministic taxi data at any size, in spans, optionally drifted: for drift tests and benchmarks.

Rows are resampled (seeded) from ``chicago_taxi.csv`` next to this file, and the measured columns
(fare, tips, trip_miles, trip_seconds, coordinates) get a small seeded jitter, so a million rows
keep the sample's distributions, missing cells and column types without being 70 copies of it.

    python examples/data/generate.py --rows 100000 --spans 3 --out DIR [--drift-span 2] \\
        [--text-in-numeric-span 3] [--seed 0]

writes ``DIR/span-1/data.csv`` ... ``DIR/span-3/data.csv``, ``--rows`` rows each; read them with
``CsvExampleGen(input_base=DIR, input_config={"splits": [{"name": "single_split",
"pattern": "span-{SPAN}/*.csv"}]})``. ``--drift-span N`` makes span N drift detectably (fares and
tips x3, and a new ``payment_type`` "Mobile Wallet" on 30% of trips); ``--text-in-numeric-span N``
puts the text "unknown" into ``trip_miles`` on 5% of that span's rows. The same arguments always
write the same bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

TAXI_CSV = Path(__file__).with_name("chicago_taxi.csv")

# column -> (relative jitter sigma, decimals): measured quantities; IDs and categories stay as sampled
RELATIVE_JITTER = {"fare": (0.05, 2), "tips": (0.05, 2), "trip_miles": (0.05, 2), "trip_seconds": (0.05, 0)}
# column -> absolute jitter sigma in degrees (~200 m); 6 decimals as in the source data
COORDINATE_JITTER = {
    "pickup_latitude": 0.002,
    "pickup_longitude": 0.002,
    "dropoff_latitude": 0.002,
    "dropoff_longitude": 0.002,
}
NEW_PAYMENT_TYPE = "Mobile Wallet"


def load_taxi(path: Path = TAXI_CSV) -> pd.DataFrame:
    """The sample as text, empty cells as None, so writing it back changes nothing it need not."""
    return pd.read_csv(path, dtype=str, keep_default_na=False).replace("", None)


def generate_span(
    taxi: pd.DataFrame,
    rows: int,
    seed: int = 0,
    span: int = 1,
    drift: bool = False,
    text_in_numeric: bool = False,
) -> pd.DataFrame:
    """``rows`` trips resampled from ``taxi`` with jitter; every (seed, span) gives its own rows."""
    rng = np.random.default_rng([seed, span])
    out = taxi.iloc[rng.integers(0, len(taxi), rows)].reset_index(drop=True)
    for column, (sigma, decimals) in RELATIVE_JITTER.items():
        factor = np.exp(rng.normal(0.0, sigma, rows)) * (3.0 if drift and column in ("fare", "tips") else 1.0)
        out[column] = _format(pd.to_numeric(out[column]) * factor, decimals)
    for column, sigma in COORDINATE_JITTER.items():
        out[column] = _format(pd.to_numeric(out[column]) + rng.normal(0.0, sigma, rows), 6)
    if drift:
        out.loc[rng.random(rows) < 0.3, "payment_type"] = NEW_PAYMENT_TYPE
    if text_in_numeric:
        out.loc[rng.random(rows) < 0.05, "trip_miles"] = "unknown"
    return out


def _format(values: pd.Series, decimals: int) -> pd.Series:
    """Text of the jittered numbers, missing stays missing; integers without a '.', so a column's
    inferred type (INT or FLOAT) is the source's."""
    rounded = values.round(decimals)
    text = rounded.map(lambda v: f"{v:.{decimals}f}" if decimals else str(int(v)), na_action="ignore")
    return text.where(values.notna(), None)


def write_spans(
    out: Path,
    rows: int,
    spans: int,
    seed: int = 0,
    drift_span: int | None = None,
    text_in_numeric_span: int | None = None,
) -> list[Path]:
    """Write ``out/span-<n>/data.csv`` for n = 1..spans; returns the files written."""
    taxi = load_taxi()
    written = []
    for span in range(1, spans + 1):
        frame = generate_span(taxi, rows, seed, span, span == drift_span, span == text_in_numeric_span)
        path = out / f"span-{span}" / "data.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True, help="rows per span")
    parser.add_argument("--spans", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--drift-span", type=int, default=None)
    parser.add_argument("--text-in-numeric-span", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in write_spans(
        args.out, args.rows, args.spans, args.seed, args.drift_span, args.text_in_numeric_span
    ):
        print(path)


if __name__ == "__main__":
    main()
