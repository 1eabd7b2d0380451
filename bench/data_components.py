"""Throughput of the data components against TFDV's Beam CSV path, per data size; prints one JSON line.

For each ``--rows`` size, examples/data/generate.py writes one seeded span of taxi trips; the
pipeline CsvExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator runs on it one node at a
time (executor seconds and rows/s per component, and the pipeline's wall time), then
``tfdv.generate_statistics_from_csv`` computes statistics of the same file on Beam's in-process
DirectRunner (named explicitly: offline, Beam would otherwise try to download Prism). ``speedup``
is TFDV's statistics time over our four components' time; ``*_s_per_1M_rows`` shows linearity.
TFDV is imported before the first run, and its import time is reported on its own.

    .venv/bin/python bench/data_components.py [--rows 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

PROCESS_STARTED = time.perf_counter()
sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "data"))

COMPONENTS = ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator")


def bench_size(rows: int, tmp: Path) -> dict[str, object]:
    import generate
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions

    from mlpipe import LocalDagRunner, Pipeline
    from mlpipe.components.example_gen import CsvExampleGen
    from mlpipe.components.example_validator import ExampleValidator
    from mlpipe.components.schema_gen import SchemaGen
    from mlpipe.components.statistics_gen import StatisticsGen

    (csv_path,) = generate.write_spans(tmp / "data", rows, spans=1)
    gen = CsvExampleGen(input_base=str(csv_path.parent))
    stats = StatisticsGen(examples=gen.outputs["examples"])
    schema = SchemaGen(statistics=stats.outputs["statistics"])
    validator = ExampleValidator(
        statistics=stats.outputs["statistics"], schema=schema.outputs["schema"], fail_on_anomalies=False
    )
    pipeline = Pipeline("bench", tmp / "root", [gen, stats, schema, validator])
    result = LocalDagRunner(max_workers=1, progress=False).run(pipeline)  # one node at a time

    started = time.perf_counter()
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    tfdv.generate_statistics_from_csv(str(csv_path), pipeline_options=options)
    tfdv_seconds = time.perf_counter() - started

    report: dict[str, object] = {}
    for node in COMPONENTS:
        seconds = result.results[node].executor_seconds
        report[node] = {"s": round(seconds, 2), "rows_per_s": round(rows / seconds)}
    ours = sum(result.results[n].executor_seconds for n in COMPONENTS)
    report["four_components_s"] = round(ours, 2)
    report["pipeline_wall_s"] = round(result.seconds, 2)
    report["tfdv.generate_statistics_from_csv"] = {
        "s": round(tfdv_seconds, 2),
        "rows_per_s": round(rows / tfdv_seconds),
    }
    report["speedup"] = round(tfdv_seconds / ours, 1)
    report["four_components_s_per_1M_rows"] = round(ours * 1e6 / rows, 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    sizes = parser.parse_args().rows
    logging.disable(logging.WARNING)

    started = time.perf_counter()
    import tensorflow_data_validation  # noqa: F401  (the import is timed on its own)

    report: dict[str, object] = {
        "bench": "data_components",
        "tfdv_import_s": round(time.perf_counter() - started, 2),
    }
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            report[str(rows)] = bench_size(rows, Path(tmp))
    report["process_s"] = round(time.perf_counter() - PROCESS_STARTED, 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
