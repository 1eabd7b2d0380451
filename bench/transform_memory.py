"""Transform and Evaluator on large taxi Examples: seconds, seconds per 1M rows, peak RSS of the process tree.

The Examples come from ``bench/taxi_examples.py`` (sharded, any number of rows). The component's
executor runs in a child process (imports included in ``process_s``, not in ``executor_s``);
this process samples the resident memory of that child and all its descendants every 0.2 s and
reports the largest sum. Prints one JSON line per run.

    python bench/transform_memory.py transform --examples /tmp/taxi-10m/examples
    python bench/transform_memory.py evaluator --examples /tmp/taxi-3m/examples --model MODEL_URI \\
        [--split eval]
    # "before": the same measurement with another checkout's code first on the path
    python bench/transform_memory.py transform --examples ... --code /tmp/old-checkout --label before

BulkInferrer predicts on ``--split`` with ``--model``. Transform runs the taxi ``preprocessing_fn`` (components/taxi_module.py), analyzing ``train``
and transforming every split; the Evaluator the taxi ``EVAL_CONFIG`` (pipelines/taxi.py) on
``--split`` with the Trainer's model (``--model``: a Model artifact URI).

Measured (2 cores shared with other jobs, load 5-16, so wall seconds are noisy; CPU seconds are
the process tree's): Transform, 1M rows: before (all records held) 52 s CPU, peak 1.38 GB; after
(streamed) 61 s CPU, peak 0.95 GB; 10M rows after: 483 s CPU (48 s per 1M rows), peak 1.02 GB,
11 shards written. Since Transform reads the columnar copy (2026-12-04, bench/scale.py
--transform-rows): 10M rows in 114 s wall, peak 1.19 GB. Evaluator (TFMA on the FnApiRunner, unchanged): 333k eval rows peak 1.10 GB;
2M rows: 697 s CPU per 1M rows, peak 1.38 GB, example_count 2,000,814. ``--workers 2``
(2026-12-04, quiet machine): 333,650 rows 157.5 s, peak 2.96 GB, against 230.2 s, 1.18 GB on one
process side by side; 2,000,814 rows 722 s (697 CPU s per 1M rows), peak 3.4 GB. BulkInferrer (Beam,
as it was then): 333k rows peak 0.99 GB, 135 s CPU per 1M rows; in process since (streamed):
bench/bulk_inferrer.py.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).parents[1]


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)  # field 4: ppid
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # field 24: rss pages
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0)
        pending.extend(children.get(pid, []))
    return total


def measure_child(command: list[str], env: dict[str, str]) -> dict:
    """Run ``command`` (a child printing a JSON report as its last line) while sampling its
    tree's memory; the report with the child's wall and CPU seconds and its peak RSS added."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        last_note = time.perf_counter()
        while not done.is_set():
            now = tree_rss(child.pid)
            peak[0] = max(peak[0], now)
            if time.perf_counter() - last_note > 60:  # a long run shows its memory as it goes
                last_note = time.perf_counter()
                note = {"elapsed_s": round(last_note - started), "rss_gb": round(now / 1e9, 2)}
                print(
                    json.dumps({**note, "peak_rss_gb": round(peak[0] / 1e9, 2)}), file=sys.stderr, flush=True
                )
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    done.set()
    sampler.join()
    report = (
        json.loads(out.strip().splitlines()[-1]) if child.returncode == 0 else {"failed": child.returncode}
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the tree's CPU time: less load-dependent
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    report.update(
        cpu_s=round(cpu, 1),
        cpu_s_per_1M_rows=round(cpu * 1e6 / report["rows"], 1) if report.get("rows") else None,
        process_s=round(time.perf_counter() - started, 1),
        peak_rss_gb=round(peak[0] / 1e9, 2),
        load_avg_1m=round(os.getloadavg()[0], 2),
    )
    return report


def run_child(args: argparse.Namespace) -> dict:
    """Run the executor in a child process while sampling its tree's memory."""
    env = dict(os.environ, PYTHONPATH=str(args.code or REPO))
    return {**measure_child([sys.executable, __file__, "--child", *sys.argv[1:]], env), "label": args.label}


def examples_artifact(examples_dir: str):
    from mlpipe.types.standard import Examples

    examples = Examples(uri=examples_dir)
    examples.split_names = sorted(p.name.removeprefix("Split-") for p in Path(examples_dir).glob("Split-*"))
    for split, count in json.loads(Path(examples_dir, "num_rows.json").read_text()).items():
        examples.set_custom_property(f"num_rows_{split}", count)
    return examples


def executor_context(
    node_id: str,
    work: str,
    inputs: dict,
    outputs: dict,
    parameters: dict,
    beam_pipeline_args: list[str] | None = None,
):
    """An ExecutionContext for running ``node_id``'s executor directly in ``work``: its output
    folders and ``work/tmp`` made, as the launcher makes them."""
    from mlpipe.dsl.context import ExecutionContext

    for artifact in outputs.values():
        os.makedirs(artifact.uri)
    os.makedirs(os.path.join(work, "tmp"))
    return ExecutionContext(
        node_id=node_id, pipeline_name="bench", run_id="bench", execution_id=1,
        inputs=inputs, outputs=outputs, parameters=parameters,
        tmp_dir=os.path.join(work, "tmp"), beam_pipeline_args=beam_pipeline_args or [],
    )  # fmt: skip


def child_transform(args: argparse.Namespace, work: str) -> dict:
    from mlpipe.components.transform import Transform
    from mlpipe.types.artifact import Artifact
    from mlpipe.types.standard import Examples, Schema, TransformCache, TransformGraph

    examples = examples_artifact(args.examples)
    parameters = {name: spec.default for name, spec in Transform.SPEC.parameters.items()}
    parameters["module_file"] = str(REPO / "components" / "taxi_module.py")
    outputs: dict[str, Artifact] = {
        "transform_graph": TransformGraph(uri=os.path.join(work, "graph")),
        "transformed_examples": Examples(uri=os.path.join(work, "transformed")),
        "updated_analyzer_cache": TransformCache(uri=os.path.join(work, "cache")),
    }
    inputs = {"examples": [examples], "schema": [Schema(uri=str(REPO / "pipelines" / "schema"))]}
    ctx = executor_context("Transform", work, inputs, outputs, parameters)
    started = time.perf_counter()
    Transform.execute(ctx)
    seconds = time.perf_counter() - started
    rows = sum(json.loads(Path(args.examples, "num_rows.json").read_text()).values())
    written = outputs["transformed_examples"]
    return {
        "bench": "transform_memory",
        "rows": rows,
        "executor_s": round(seconds, 1),
        "s_per_1M_rows": round(seconds * 1e6 / rows, 2),
        "rows_written": {s: written.get_custom_property(f"num_rows_{s}") for s in examples.split_names},
        "shards": {s: len(os.listdir(written.split_uri(s))) for s in examples.split_names},
    }


def child_evaluator(args: argparse.Namespace, work: str) -> dict:
    import importlib.util

    from mlpipe.components.evaluator import Evaluator
    from mlpipe.types.standard import Model, ModelBlessing, ModelEvaluation

    spec = importlib.util.spec_from_file_location("pipelines_taxi", REPO / "pipelines" / "taxi.py")
    taxi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(taxi)
    examples = examples_artifact(args.examples)
    outputs = {
        "evaluation": ModelEvaluation(uri=os.path.join(work, "evaluation")),
        "blessing": ModelBlessing(uri=os.path.join(work, "blessing")),
    }
    inputs = {"examples": [examples], "model": [Model(uri=args.model)]}
    parameters = {"eval_config": taxi.EVAL_CONFIG, "example_splits": [args.split]}
    workers = [f"--direct_num_workers={args.workers}", "--direct_running_mode=multi_processing"]
    ctx = executor_context(
        "Evaluator", work, inputs, outputs, parameters, workers if args.workers > 1 else []
    )
    started = time.perf_counter()
    Evaluator.execute(ctx)
    seconds = time.perf_counter() - started
    rows = examples.get_custom_property(f"num_rows_{args.split}")
    import tensorflow_model_analysis as tfma

    counts = [
        item.value.double_value.value
        for per_slice in tfma.load_metrics(outputs["evaluation"].uri)
        if not per_slice.slice_key.single_slice_keys
        for item in per_slice.metric_keys_and_values
        if item.key.name == "example_count"
    ]
    return {
        "bench": "evaluator_memory",
        "rows": rows,
        "executor_s": round(seconds, 1),
        "s_per_1M_rows": round(seconds * 1e6 / rows, 2),
        "example_count": counts,
        "workers": args.workers,
    }


def child_bulk_inferrer(args: argparse.Namespace, work: str) -> dict:
    from mlpipe.components.bulk_inferrer import BulkInferrer
    from mlpipe.types.standard import InferenceResult, Model

    examples = examples_artifact(args.examples)
    result = InferenceResult(uri=os.path.join(work, "inference"))
    inputs = {"examples": [examples], "model": [Model(uri=args.model)]}
    parameters = {"data_spec": {"example_splits": [args.split]}}
    ctx = executor_context("BulkInferrer", work, inputs, {"inference_result": result}, parameters)
    started = time.perf_counter()
    BulkInferrer.execute(ctx)
    seconds = time.perf_counter() - started
    rows = examples.get_custom_property(f"num_rows_{args.split}")
    return {
        "bench": "bulk_inferrer_memory",
        "rows": rows,
        "executor_s": round(seconds, 1),
        "s_per_1M_rows": round(seconds * 1e6 / rows, 2),
        "files": sorted(os.listdir(result.uri)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("component", choices=["transform", "evaluator", "bulk_inferrer"])
    parser.add_argument("--examples", required=True, help="OUT/examples of bench/taxi_examples.py")
    parser.add_argument("--model", help="evaluator, bulk_inferrer: the Model artifact URI")
    parser.add_argument("--split", default="eval", help="evaluator, bulk_inferrer: the split to read")
    parser.add_argument(
        "--workers", type=int, default=1,
        help="evaluator: FnApiRunner worker processes (--direct_num_workers, multi_processing)",
    )  # fmt: skip
    parser.add_argument("--code", help="checkout whose mlpipe to run (default: this one)")
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    if not args.child:
        print(json.dumps({"component": args.component, **run_child(args)}))
        return
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as work:
        run = {
            "transform": child_transform,
            "evaluator": child_evaluator,
            "bulk_inferrer": child_bulk_inferrer,
        }
        report = run[args.component](args, work)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
