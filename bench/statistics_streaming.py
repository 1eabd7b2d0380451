"""StatisticsGen's statistics of one split at growing sizes: seconds, s per 1M rows, peak memory.

A seeded 1M-row span of taxi trips (examples/data/generate.py, typed as CsvExampleGen types it)
is written once as one shard of Examples (gzipped TFRecords and the typed columnar copy); a split
of N million rows is N copies of that shard, in the sharded layout of docs/contracts.md (the rows
repeat, which changes no per-row cost of the statistics; the columnar files are real copies, not
hard links, so that memory-mapped pages of different shards are different pages, as they would be). Each measurement runs in a fresh
process; ``s`` is the statistics call alone (imports excluded, the same for every mode), and
``cpu_s`` its CPU seconds (children included: on a shared machine load inflates ``s``, not
this), ``peak_pss_mb`` the highest sum of PSS over that process and its children (sampled every 50 ms;
PSS shares a forked child's copy-on-write pages instead of counting them twice).

Modes: ``streaming`` is today's StatisticsGen in process (record batches through TFDV's combiners,
``statistics_workers`` processes); ``streaming-1`` the same in one process; ``in-memory`` the
former path below ``beam_threshold_rows`` (the whole split as one Arrow batch through
``generate_statistics_in_memory``); ``beam`` TFDV's Beam transform on the in-process FnApiRunner
(the former path above the threshold). One JSON line per (mode, rows).

    .venv/bin/python bench/statistics_streaming.py [--rows 1 5 10] [--modes streaming in-memory beam] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
BASE_ROWS = 1_000_000
MODES = ("streaming", "streaming-1", "in-memory", "beam")


def write_base(work: Path) -> Path:
    """One 1M-row shard (TFRecords and columnar copy) of generated taxi data, written once."""
    base = work / "base"
    if (base / "data.arrow").exists():
        return base
    sys.path.insert(0, str(ROOT / "examples" / "data"))
    import generate

    from mlpipe.io import examples as io

    frame = generate.generate_span(generate.load_taxi(), BASE_ROWS, seed=0)
    table = io.type_csv_columns(io.parse_csv("generated.csv", frame.to_csv(index=False).encode()))
    io.write_examples(str(base), io.encode_examples(table), "data.gz")
    io.write_columnar(str(base / "data.arrow"), table)
    return base


def split_of(work: Path, base: Path, millions: int) -> Path:
    """Examples with one split ``train`` of ``millions`` copies of the base shard (the TFRecords
    hard links: they are read, not mapped)."""
    uri = work / f"examples-{millions}M-copies"
    records, columnar = uri / "Split-train", uri / ".columnar" / "Split-train"
    if not records.exists():
        records.mkdir(parents=True)
        columnar.mkdir(parents=True)
        for k in range(millions):
            os.link(base / "data.gz", records / f"data_tfrecord-{k:05d}-of-{millions:05d}.gz")
            shutil.copyfile(base / "data.arrow", columnar / f"data-{k:05d}-of-{millions:05d}.arrow")
    return uri


def measure(mode: str, uri: Path, rows: int) -> None:
    """Run in the measured process: one statistics computation; prints its seconds."""
    import tensorflow_data_validation as tfdv

    from mlpipe.components import statistics_gen as sg

    options = tfdv.StatsOptions()
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    if mode == "beam":
        sg.statistics_with_beam(str(uri / "Split-train"), options, str(uri / "beam.stats"), [])
    elif mode == "in-memory":
        import pyarrow as pa
        from tensorflow_data_validation.statistics import stats_impl

        from mlpipe.io.example_batches import iter_record_batches

        batch = pa.Table.from_batches(list(iter_record_batches(str(uri), "train", rows))).combine_chunks()
        stats_impl.generate_statistics_in_memory(batch.to_batches()[0], options)
    else:
        workers = 1 if mode == "streaming-1" else sg.statistics_workers(rows)
        sg.statistics_in_process(str(uri), "train", options, workers)
    print(json.dumps({"s": time.perf_counter() - started, "cpu_s": _cpu_seconds() - cpu_started}), flush=True)


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (a shared machine's load inflates
    wall time, not this)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _tree_pss_mb(pid: int) -> float:
    """Sum of PSS (MB) of a process and its descendants."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
            with open(f"/proc/{current}/task/{current}/children") as f:
                pending += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total / 1024


def run(mode: str, uri: Path, rows: int) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, __file__, "--measure", mode, str(uri), str(rows)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _tree_pss_mb(process.pid))
        time.sleep(0.05)
    out = process.stdout.read() if process.stdout else ""
    if process.returncode:
        raise SystemExit(f"{mode} on {rows} rows failed (exit {process.returncode})")
    measured = json.loads(out.strip().splitlines()[-1])
    seconds = measured["s"]
    return {
        "bench": "statistics",
        "mode": mode,
        "rows": rows,
        "s": round(seconds, 2),
        "s_per_1M_rows": round(seconds / rows * 1e6, 2),
        "cpu_s": round(measured["cpu_s"], 2),
        "cpu_s_per_1M_rows": round(measured["cpu_s"] / rows * 1e6, 2),
        "process_s": round(time.perf_counter() - started, 1),
        "peak_pss_mb": round(peak),
        "cpus": len(os.sched_getaffinity(0)),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 5, 10], help="millions of rows")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["streaming", "in-memory"])
    parser.add_argument("--work", type=Path, default=None, help="keep data here between runs")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        mode, uri, rows = args.measure
        measure(mode, Path(uri), int(rows))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        base = write_base(work)
        for millions in args.rows:
            uri = split_of(work, base, millions)
            for mode in args.modes:
                print(json.dumps(run(mode, uri, millions * BASE_ROWS)), flush=True)


if __name__ == "__main__":
    main()
