"""Start-up cost of the CLI: wall time of `mlpipe --help` and of `import mlpipe` (one JSON line).

Goal: `mlpipe --help` < 0.5 s. Medians over --repeats fresh interpreters.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def wall_seconds(args: list[str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    out = {
        "bench": "startup",
        "python_bare_s": wall_seconds([sys.executable, "-c", "pass"], args.repeats),
        "import_mlpipe_s": wall_seconds([sys.executable, "-c", "import mlpipe"], args.repeats),
        "mlpipe_help_s": wall_seconds([sys.executable, "-m", "mlpipe.cli", "--help"], args.repeats),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
