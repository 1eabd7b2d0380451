"""ExampleGen on Beam against in process, and the portable-runner e2e test's wall time; one JSON line.

examples/data/generate.py writes ``--rows`` seeded taxi rows as one CSV file; CsvExampleGen then
ingests it three ways: in this process (no runner named), on Beam's FnApiRunner with two worker
processes (``--direct_num_workers=2 --direct_running_mode=multi_processing``), and on the portable
runner with an external worker pool (tests/support/beam_portable.py; the servers' start-up is
timed apart). Each run's seconds and rows/s, and whether its splits hold the same records as the
in-process run's (a multiset of record fingerprints per split). With ``--e2e`` it also times
``pytest tests/beam_portable/test_taxi_portable.py`` (the taxi data components on the portable
runner, compared with the in-process run) as a whole process.

    .venv/bin/python bench/beam_portable.py [--rows 1000000] [--e2e]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "examples" / "data"))


def _ingest(data: Path, out: Path, beam_args: list[str]) -> tuple[float, object]:
    from mlpipe.components.example_gen import CsvExampleGen
    from mlpipe.dsl.context import ExecutionContext
    from mlpipe.types.standard import Examples

    examples = Examples(uri=str(out))
    defaults = {n: s.default for n, s in CsvExampleGen.SPEC.parameters.items() if not s.required}
    ctx = ExecutionContext(
        "CsvExampleGen", "bench", "run", 1, {}, {"examples": examples},
        {**defaults, "input_base": str(data)}, str(out) + ".tmp", beam_pipeline_args=beam_args,
    )  # fmt: skip
    start = time.perf_counter()
    CsvExampleGen.execute(ctx)
    return time.perf_counter() - start, examples


def _fingerprints(examples: object) -> dict[str, collections.Counter]:
    from mlpipe.io import examples as io

    return {
        split: collections.Counter(
            io.record_fingerprints(io.read_examples(examples.split_uri(split))).tolist()
        )  # type: ignore[attr-defined]
        for split in examples.split_names  # type: ignore[attr-defined]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--e2e", action="store_true", help="also time the portable-runner e2e test")
    args = parser.parse_args()

    import generate

    from tests.support.beam_portable import start_portable_beam

    result: dict[str, object] = {"bench": "beam_portable", "rows": args.rows, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench_beam_portable_") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        (csv,) = generate.write_spans(data, args.rows, 1, 0, None, None)
        result["csv_mb"] = round(csv.stat().st_size / 1e6, 1)
        start = time.perf_counter()
        beam = start_portable_beam(tmp / "beam_logs")
        result["portable_servers_start_s"] = round(time.perf_counter() - start, 1)
        try:
            runs = {
                "in_process": [],
                "fnapi_2_workers": ["--runner=FnApiRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
                "portable": beam.pipeline_args,
            }  # fmt: skip
            reference = None
            for name, beam_args in runs.items():
                seconds, examples = _ingest(csv.parent, tmp / name, beam_args)
                fingerprints = _fingerprints(examples)
                reference = reference or fingerprints
                result[f"example_gen_{name}_s"] = round(seconds, 2)
                result[f"example_gen_{name}_rows_per_s"] = round(args.rows / seconds)
                result[f"example_gen_{name}_same_records"] = fingerprints == reference
                result[f"example_gen_{name}_shards"] = len(os.listdir(examples.split_uri("train")))  # type: ignore[attr-defined]
        finally:
            beam.stop()
    if args.e2e:
        start = time.perf_counter()
        test = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "0",
             "tests/beam_portable/test_taxi_portable.py"],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "CI": "true"}, capture_output=True, text=True,
        )  # fmt: skip
        result["e2e_test_s"] = round(time.perf_counter() - start, 1)
        result["e2e_test_passed"] = test.returncode == 0
    result["load_average_1m"] = round(os.getloadavg()[0], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
