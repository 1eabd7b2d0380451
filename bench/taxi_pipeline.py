"""Whole-process wall time of the taxi pipeline (1000 train / 150 eval steps, as TFX's example),
cold and fully cached, with per-component times; one JSON line.

Each run is a fresh `python` process, as a user's `mlpipe run` is, so import costs count, and so
do interpreter start-up and exit (``startup_and_exit_s``).
Reference (TFX 1.16, this machine kind, same data and model): 166 s cold, 39 s second run,
28 s just to import tfx. Goals: cold <= 33 s; cached rerun <= 2 s beyond interpreter + import.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FullCollections:
    """Counts CPython's full (generation 2) garbage collections and the seconds they take."""

    def __init__(self) -> None:
        self.count, self.seconds, self._began = 0, 0.0, 0.0
        gc.callbacks.insert(0, self.observe)  # first: its "start" comes before other callbacks run

    def observe(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._began


def child(root: str, train_steps: int, eval_steps: int) -> None:
    """Runs the pipeline in this process; prints node times, the time spent importing mlpipe and
    the full garbage collections during the run."""
    started = time.perf_counter()
    collections = FullCollections()
    sys.path.insert(0, os.path.join(REPO, "pipelines"))
    from taxi import create_pipeline

    from mlpipe.orchestration.local import LocalDagRunner
    from mlpipe.process_exit import freeze_heap_at_exit

    freeze_heap_at_exit()  # as `mlpipe run` does: the process ends with the run
    imported = time.perf_counter() - started
    pipeline = create_pipeline(
        pipeline_root=os.path.join(root, "root"),
        serving_model_dir=os.path.join(root, "serving", "taxi"),
        train_steps=train_steps,
        eval_steps=eval_steps,
    )
    result = LocalDagRunner(progress=False).run(pipeline)
    nodes = {n: {"state": r.state, "s": round(r.seconds, 2)} for n, r in result.results.items()}
    report = {
        "import_s": round(imported, 2),
        "run_s": round(result.seconds, 2),
        "full_gc": {"count": collections.count, "s": round(collections.seconds, 2)},
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "nodes": nodes,
    }
    print(json.dumps({**report, "child_s": time.perf_counter() - started}), flush=True)


def timed_run(root: str, train_steps: int, eval_steps: int) -> dict:
    started = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            root,
            "--train-steps",
            str(train_steps),
            "--eval-steps",
            str(eval_steps),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["process_wall_s"] = round(time.perf_counter() - started, 2)
    # what the process took beyond its own work: interpreter start-up and exit
    report["startup_and_exit_s"] = round(report["process_wall_s"] - report.pop("child_s"), 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--eval-steps", type=int, default=150)
    parser.add_argument(
        "--keep", help="run under this new directory and keep it (e.g. for bench/evaluator.py)"
    )
    args = parser.parse_args()
    if args.child:
        child(args.child, args.train_steps, args.eval_steps)
        return
    bare = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mlpipe"], check=True)
    interpreter_s = time.perf_counter() - bare
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or scratch
        if args.keep:
            os.makedirs(root)  # a used directory would make the cold run a cached one
        cold = timed_run(root, args.train_steps, args.eval_steps)
        cached = timed_run(root, args.train_steps, args.eval_steps)
    print(
        json.dumps(
            {
                "bench": "taxi_pipeline",
                "train_steps": args.train_steps,
                "eval_steps": args.eval_steps,
                "cpus": os.cpu_count(),
                "interpreter_and_import_mlpipe_s": round(interpreter_s, 2),
                "cold": cold,
                "cached": cached,
                "tfx_reference_s": {"cold": 166, "cached": 39},
            }
        )
    )


if __name__ == "__main__":
    main()
