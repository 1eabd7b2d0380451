"""Throughput of the data components on 100k taxi rows; prints one JSON line.

Rows are resampled (seeded) from examples/data/chicago_taxi.csv. TFDV is imported before the run so
the first TensorFlow user does not carry the import; the import time is reported on its own.
For comparison, ``tfdv.generate_statistics_from_csv`` (Beam, DirectRunner in memory) runs on the
same file. StatisticsGen runs twice: in memory (the default at this size) and forced onto Beam.

    .venv/bin/python bench/data_components.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

TAXI_CSV = Path(__file__).parents[1] / "examples" / "data" / "chicago_taxi.csv"


def write_resampled_csv(path: Path, rows: int, seed: int = 0) -> None:
    import numpy as np
    import pandas as pd

    taxi = pd.read_csv(TAXI_CSV, dtype=str, keep_default_na=False)
    picks = np.random.default_rng(seed).integers(0, len(taxi), rows)
    taxi.iloc[picks].to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    rows = parser.parse_args().rows
    logging.disable(logging.WARNING)

    from mlpipe import LocalDagRunner, Pipeline
    from mlpipe.components.example_gen import CsvExampleGen
    from mlpipe.components.example_validator import ExampleValidator
    from mlpipe.components.schema_gen import SchemaGen
    from mlpipe.components.statistics_gen import StatisticsGen

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        csv_path = data / "taxi.csv"
        write_resampled_csv(csv_path, rows)

        started = time.perf_counter()
        import tensorflow_data_validation as tfdv
        from apache_beam.options.pipeline_options import PipelineOptions

        import_seconds = time.perf_counter() - started

        gen = CsvExampleGen(input_base=str(data))
        stats = StatisticsGen(examples=gen.outputs["examples"])
        beam_stats = StatisticsGen(examples=gen.outputs["examples"], beam_threshold_rows=0).with_id(
            "StatisticsGenBeam"
        )
        schema = SchemaGen(statistics=stats.outputs["statistics"])
        validator = ExampleValidator(
            statistics=stats.outputs["statistics"], schema=schema.outputs["schema"], fail_on_anomalies=False
        )
        pipeline = Pipeline("bench", Path(tmp) / "root", [gen, stats, beam_stats, schema, validator])
        result = LocalDagRunner(max_workers=1, progress=False).run(pipeline)  # one node at a time

        started = time.perf_counter()
        options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
        tfdv.generate_statistics_from_csv(str(csv_path), pipeline_options=options)
        tfdv_seconds = time.perf_counter() - started

    report: dict[str, object] = {
        "bench": "data_components",
        "rows": rows,
        "tfdv_import_s": round(import_seconds, 2),
    }
    for node, r in result.results.items():
        report[node] = {"s": round(r.executor_seconds, 2), "rows_per_s": round(rows / r.executor_seconds)}
    report["tfdv.generate_statistics_from_csv"] = {
        "s": round(tfdv_seconds, 2),
        "rows_per_s": round(rows / tfdv_seconds),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
