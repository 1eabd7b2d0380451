"""BulkInferrer in process (streamed) against RunInference on Beam, same model and Examples, one run.

Each path runs ``BulkInferrer.execute`` in a child process of its own (imports included in
``process_s`` and ``cpu_s``, not in ``executor_s``): ``in_process`` with no Beam arguments,
``beam`` with ``--runner=FnApiRunner`` (tfx_bsl's RunInference in process, what every run did
before). This process samples the resident memory of the child's tree every 0.2 s. Prints one
JSON line per path, then one with the ratios (beam / in_process).

    python bench/bulk_inferrer.py --model MODEL_URI [--examples OUT/examples | --rows 300000] \\
        [--paths in_process beam]

``--model``: a taxi Model artifact URI (``<root>/Trainer/model/<id>`` of a taxi pipeline run,
``pipelines/taxi.py``). Without ``--examples``, ``--rows`` taxi rows are generated first with
``bench/taxi_examples.py`` (one span, CsvExampleGen's splits); every split is inferred.

Measured (2 cores shared with another job's tests, load 2.1-2.2; the taxi Keras model of
pipelines/taxi.py; 300k rows, both splits): in_process 6.8 s in the executor (6.9 CPU s), 8.6 s
and 8.5 CPU s as a process (28.5 CPU s per 1M rows), peak RSS 0.86 GB; beam 28.3 s (27.5 CPU s),
30.4 s and 29.6 CPU s as a process (98.8 per 1M rows), peak 1.32 GB: 4.2x the executor's seconds,
1.5x the memory. 1M rows in process (``--paths in_process``): 12.7 s (15.4 CPU s), 18.6 CPU s
as a process, peak 0.90 GB, 79k rows/s: memory flat, cost per row falling as the model's load
and warm-up are spread; with the batch-wise log encoder since: 13.5 s (13.6 CPU s, load 3.0),
16.7 CPU s as a process, peak 0.88 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from transform_memory import (  # bench/ is on sys.path when run as a script
    examples_artifact,
    executor_context,
    measure_child,
)

REPO = Path(__file__).parents[1]
PATHS = {"in_process": [], "beam": ["--runner=FnApiRunner"]}


def run_child(args: argparse.Namespace, path: str) -> dict:
    """One path in a child process while sampling its tree's memory."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, __file__, "--child", path, "--examples", args.examples, "--model", args.model]
    return measure_child(command, env)


def child(path: str, examples_dir: str, model_uri: str) -> dict:
    from mlpipe.components.bulk_inferrer import BulkInferrer
    from mlpipe.io.example_stream import iter_tfrecords
    from mlpipe.types.standard import InferenceResult, Model

    examples = examples_artifact(examples_dir)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as work:
        result = InferenceResult(uri=os.path.join(work, "inference"))
        inputs = {"examples": [examples], "model": [Model(uri=model_uri)]}
        ctx = executor_context(
            "BulkInferrer", work, inputs, {"inference_result": result}, {"data_spec": {}}, PATHS[path]
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        BulkInferrer.execute(ctx)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        files = sorted(os.listdir(result.uri))
        logs = sum(1 for f in files for _ in iter_tfrecords(os.path.join(result.uri, f)))
    rows = sum(examples.get_custom_property(f"num_rows_{s}") for s in examples.split_names)
    return {
        "bench": "bulk_inferrer",
        "path": path,
        "rows": rows,
        "logs": logs,
        "files": files,
        "executor_s": round(seconds, 2),
        "executor_cpu_s": round(cpu, 2),
        "rows_per_s": round(rows / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=list(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--model", required=True, help="a taxi Model artifact URI")
    parser.add_argument("--examples", help="OUT/examples of bench/taxi_examples.py")
    parser.add_argument("--rows", type=int, default=300_000, help="rows to generate without --examples")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.examples, args.model)))
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        if args.examples is None:
            out = Path(tmp) / "taxi"
            subprocess.run(
                [sys.executable, str(REPO / "bench" / "taxi_examples.py"), "--spans", "1",
                 "--rows-per-span", str(args.rows), "--out", str(out)],
                check=True, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL,
            )  # fmt: skip
            args.examples = str(out / "examples")
        reports = {}
        for path in args.paths:
            reports[path] = run_child(args, path)
            print(json.dumps(reports[path]), flush=True)
    if len(reports) < len(PATHS):
        return
    fast, slow = reports["in_process"], reports["beam"]
    ratios = {
        key: round(slow[key] / fast[key], 1)
        for key in ("executor_s", "executor_cpu_s", "process_s", "cpu_s", "peak_rss_gb")
        if fast.get(key) and slow.get(key)
    }
    print(json.dumps({"bench": "bulk_inferrer", "ratio_beam_over_in_process": ratios}))


if __name__ == "__main__":
    main()
