"""Long fuzz run of mlpipe's CSV reader against Python's csv module; prints one JSON line.

The same property and generator as tests/io/test_csv_strictness.py (10,000 files with a fixed
seed in CI), with as many files as asked and a fresh seed: every generated file must be either
accepted by both with the same header and rows, or rejected by both (mlpipe with a DataError
naming the file). A failing file is shrunk by hypothesis and printed.

    .venv/bin/python bench/csv_fuzz.py [--examples 200000] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))


def main() -> None:
    from hypothesis import HealthCheck, given, seed, settings

    from mlpipe.errors import DataError
    from mlpipe.io import examples as io
    from tests.support.csv_oracle import csv_files, oracle_rows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    args = parser.parse_args()
    run_seed = random.randrange(2**32) if args.seed is None else args.seed
    seen = {"accepted": 0, "rejected": 0}

    def mlpipe_rows(data: bytes):
        try:
            table = io.parse_csv("fuzz.csv", data)
        except DataError as e:
            assert str(e).startswith("fuzz.csv"), e
            return None
        return table.column_names, [list(row.values()) for row in table.to_pylist()]

    @seed(run_seed)
    @settings(
        max_examples=args.examples, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(csv_files())
    def check(data: bytes) -> None:
        expected = oracle_rows(data)
        assert mlpipe_rows(data) == expected, data
        seen["accepted" if expected else "rejected"] += 1

    started = time.perf_counter()
    failure = None
    try:
        check()
    except AssertionError as e:
        failure = str(e)[:2000]
    result = {
        "bench": "csv_fuzz",
        "seed": run_seed,
        "examples": sum(seen.values()),
        **seen,
        "seconds": round(time.perf_counter() - started, 1),
        "failure": failure,
    }
    print(json.dumps(result))
    sys.exit(1 if failure else 0)


if __name__ == "__main__":
    main()
