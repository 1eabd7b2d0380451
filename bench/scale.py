"""Data components from 100k to 50M rows on one machine: seconds, rows/s and peak memory per size.

For each ``--rows`` size a seeded taxi CSV is generated in 1M-row chunks (generating 50M rows at
once would itself need tens of GB), then ``mlpipe run`` executes CsvExampleGen -> StatisticsGen ->
SchemaGen -> ExampleValidator as a user runs it: one process, imports included. While it runs the
process tree's resident memory is sampled every 0.1 s from /proc (the sum over the process and
all its descendants: an upper bound, as pages shared between a parent and forked workers count
twice). Each component's seconds come from the run's progress lines; a component's peak memory is
the tree's peak between its start and its end (the chain runs one node at a time).

For sizes up to ``--tfdv-max-rows`` TFDV's own Beam CSV statistics (``generate_statistics_from_csv``
on Beam's in-process runner, what a TFDV user gets) run on the same file in a fresh process, so
``speedup`` compares our four components with TFDV's statistics alone, side by side in one run.
``--transform-rows`` also runs the taxi Transform on that many rows (ExampleGen's output, the
demo's preprocessing_fn) and reports its seconds and peak memory.

One JSON line per size on stdout, and a summary line with the per-row cost ratios between
neighbouring sizes (``cliff``: how much slower per row a size is than the next smaller one).

    .venv/bin/python bench/scale.py --rows 1000000 10000000 50000000 --workdir /var/tmp/mlpipe-scale
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "data"))

CHAIN = ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator")
CHUNK_ROWS = 1_000_000
PROGRESS = re.compile(r"\[mlpipe\] (\w+): (COMPLETE|CACHED|FAILED) in ([0-9.]+)s")

PIPELINE = """
from mlpipe import Pipeline
from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.components.example_validator import ExampleValidator
from mlpipe.components.schema_gen import SchemaGen
from mlpipe.components.statistics_gen import StatisticsGen

gen = CsvExampleGen(input_base={data!r})
stats = StatisticsGen(examples=gen.outputs["examples"])
schema = SchemaGen(statistics=stats.outputs["statistics"])
validator = ExampleValidator(
    statistics=stats.outputs["statistics"], schema=schema.outputs["schema"], fail_on_anomalies=False
)
components = [gen, stats, schema, validator]
if {transform!r}:
    from mlpipe.components.transform import Transform

    components.append(
        Transform(
            examples=gen.outputs["examples"],
            schema=schema.outputs["schema"],
            module_file={module!r},
        )
    )
pipeline = Pipeline("scale", {root!r}, components, enable_cache=False)
"""


def generate_csv(rows: int, path: Path) -> Path:
    """``rows`` seeded taxi trips, written chunk by chunk; reused when the file is already complete."""
    import generate

    done = path.with_suffix(".done")
    if done.exists() and done.read_text() == str(rows):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    taxi = generate.load_taxi()
    with open(path, "w") as f:
        for chunk, start in enumerate(range(0, rows, CHUNK_ROWS)):
            frame = generate.generate_span(taxi, min(CHUNK_ROWS, rows - start), seed=chunk, span=1)
            frame.to_csv(f, index=False, header=chunk == 0)
    done.write_text(str(rows))
    return path


def tree_rss(root_pid: int) -> int:
    """Resident bytes of ``root_pid`` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root_pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(pid, ()))
    return total


def run_measured(command: list[str], env: dict[str, str]) -> dict[str, object]:
    """Runs ``command``; returns wall seconds, the tree's peak RSS, and per node (from progress
    lines) seconds and the peak RSS while it ran."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples: list[tuple[float, int]] = []
    events: list[tuple[float, str, str, float]] = []
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            match = PROGRESS.search(line)
            if match:
                events.append((time.perf_counter(), match[1], match[2], float(match[3])))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while proc.poll() is None:
        samples.append((time.perf_counter(), tree_rss(proc.pid)))
        time.sleep(0.1)
    reader.join()
    if proc.returncode:
        sys.stderr.write("".join(lines[-40:]))
        raise SystemExit(f"{command[:4]} failed with exit code {proc.returncode}")
    nodes = {}
    for ended, node, state, seconds in events:
        during = [rss for t, rss in samples if ended - seconds - 0.1 <= t <= ended]
        nodes[node] = {"state": state, "s": seconds, "peak_rss_gb": round(max(during, default=0) / 1e9, 2)}
    return {
        "wall_s": round(time.perf_counter() - started, 2),
        "peak_rss_gb": round(max((rss for _, rss in samples), default=0) / 1e9, 2),
        "nodes": nodes,
    }


def bench_size(rows: int, workdir: Path, tfdv: bool, transform: bool) -> dict[str, object]:
    csv_path = generate_csv(rows, workdir / f"data-{rows}" / "data.csv")
    run_dir = workdir / f"run-{rows}"
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    run_dir.mkdir(parents=True)
    pipeline_file = run_dir / "pipeline.py"
    pipeline_file.write_text(
        PIPELINE.format(
            data=str(csv_path.parent),
            root=str(run_dir / "root"),
            transform=transform,
            module=str(REPO / "components" / "taxi_module.py"),
        )
    )
    env = {**os.environ, "MLPIPE_METADATA": str(run_dir / "metadata.sqlite"), "TF_USE_LEGACY_KERAS": "1"}
    run = run_measured([sys.executable, "-m", "mlpipe.cli", "run", str(pipeline_file)], env)
    nodes = run["nodes"]
    assert isinstance(nodes, dict)
    chain_s = sum(nodes[n]["s"] for n in CHAIN)
    report: dict[str, object] = {
        "bench": "scale",
        "rows": rows,
        "csv_gb": round(csv_path.stat().st_size / 1e9, 2),
        "process_wall_s": run["wall_s"],
        "process_tree_peak_rss_gb": run["peak_rss_gb"],
        "chain_peak_rss_gb": max(nodes[n]["peak_rss_gb"] for n in CHAIN),
        "chain_s": round(chain_s, 2),
        "chain_s_per_1M_rows": round(chain_s * 1e6 / rows, 2),
        "chain_rows_per_s": round(rows / chain_s),
    }
    for node, measured in nodes.items():
        report[node] = {**measured, "rows_per_s": round(rows / measured["s"]) if measured["s"] else None}
    if tfdv:
        script = (
            "import sys, tensorflow_data_validation as tfdv\n"
            "from apache_beam.options.pipeline_options import PipelineOptions\n"
            "options = PipelineOptions(['--runner=DirectRunner', '--direct_running_mode=in_memory'])\n"
            "tfdv.generate_statistics_from_csv(sys.argv[1], output_path=sys.argv[2], pipeline_options=options)\n"
        )
        baseline = run_measured(
            [sys.executable, "-c", script, str(csv_path), str(run_dir / "tfdv.stats")], env
        )
        report["tfdv_beam_csv_statistics"] = {
            "process_wall_s": baseline["wall_s"],
            "peak_rss_gb": baseline["peak_rss_gb"],
        }
        report["speedup_chain_vs_tfdv_wall"] = round(float(baseline["wall_s"]) / chain_s, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000, 50_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/mlpipe-scale"))
    parser.add_argument("--tfdv-max-rows", type=int, default=10_000_000, help="TFDV baseline up to this size")
    parser.add_argument(
        "--transform-rows", type=int, nargs="*", default=[], help="sizes that also run Transform"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep generated CSVs for the next run")
    args = parser.parse_args()
    per_row: list[tuple[int, float]] = []
    for rows in sorted(args.rows):
        report = bench_size(rows, args.workdir, rows <= args.tfdv_max_rows, rows in args.transform_rows)
        per_row.append((rows, float(report["chain_s_per_1M_rows"])))  # type: ignore[arg-type]
        print(json.dumps(report), flush=True)
        subprocess.run(["rm", "-rf", str(args.workdir / f"run-{rows}")], check=True)
        if not args.keep_data:
            subprocess.run(["rm", "-rf", str(args.workdir / f"data-{rows}")], check=True)
    summary = {
        "bench": "scale_summary",
        "s_per_1M_rows": dict((str(r), s) for r, s in per_row),
        "cliff": {
            f"{b}/{a}": round(sb / sa, 2) for (a, sa), (b, sb) in zip(per_row, per_row[1:], strict=False)
        },
        "largest_vs_smallest": round(per_row[-1][1] / per_row[0][1], 2) if per_row else None,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
