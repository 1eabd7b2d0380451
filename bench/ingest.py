"""CsvExampleGen alone on generated taxi data: seconds, rows/s and peak RSS; one JSON line per run.

Each run is a fresh process (``python -c``, imports included in ``process_s``, excluded from
``execute_s``) that runs CsvExampleGen's executor on one CSV; this process polls the RSS of that
process's tree (``/proc``, every 20 ms) and also reports the kernel's own peak (``ru_maxrss`` of
the largest child). ``--code DIR`` runs another checkout of mlpipe (e.g. the commit before
streaming, ``git archive <commit> mlpipe | tar -x -C DIR``) for a before/after comparison.
``--type-change-row N`` writes text into ``fare`` at data row N instead (the run must end in a
DataError naming that row, and the JSON says whether it did).

    .venv/bin/python bench/ingest.py --rows 1000000 5000000 [--code DIR] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "examples" / "data"))

CHILD = r"""
import json, sys, time
started = time.perf_counter()
from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.dsl.context import ExecutionContext
from mlpipe.errors import DataError
from mlpipe.types.standard import Examples
data, out, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
examples = Examples(uri=out)
defaults = {n: s.default for n, s in CsvExampleGen.SPEC.parameters.items() if not s.required}
ctx = ExecutionContext("CsvExampleGen", "p", "run", 1, {}, {"examples": examples},
                       {**defaults, "input_base": data, **extra}, out + ".tmp")
imported = time.perf_counter()
error = None
try:
    CsvExampleGen.execute(ctx)
except DataError as e:
    error = str(e)
done = time.perf_counter()
rows = {s: examples.get_custom_property(f"num_rows_{s}") for s in examples.split_names} if error is None else {}
print(json.dumps({"import_s": imported - started, "execute_s": done - imported, "split_rows": rows, "error": error}))
"""


def _tree_rss(pid: int, cpu: dict[int, float]) -> int:
    """Resident bytes of a process and its descendants (0 once gone); records each one's CPU
    seconds so far in ``cpu`` (worker processes of a fork server are never reaped by the node
    process, so its rusage misses them)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
                cpu[p] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run(csv_dir: Path, out: Path, code: Path, parameters: dict[str, object]) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(csv_dir), str(out), json.dumps(parameters)],
        env=env,
        cwd=code,
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = 0
    cpu_seen: dict[int, float] = {}
    while child.poll() is None:
        peak = max(peak, _tree_rss(child.pid, cpu_seen))
        time.sleep(0.02)
    wall = time.perf_counter() - started
    report = json.loads(child.stdout.read().strip().splitlines()[-1])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    return {
        **report,
        "process_s": round(wall, 2),
        "cpu_s": round(cpu, 2),  # user + system of reaped children (misses fork-server workers)
        "cpu_tree_s": round(sum(cpu_seen.values()), 2),  # last seen per process of the tree (20 ms polls)
        "peak_rss_tree_mb": round(peak / 2**20),
        "ru_maxrss_mb": round(usage.ru_maxrss * 1024 / 2**20),  # the largest child's, over all runs so far
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--code", type=Path, default=ROOT, help="the mlpipe checkout to run")
    parser.add_argument("--data", type=Path, default=None, help="keep generated CSVs here (reused)")
    parser.add_argument("--type-change-row", type=int, default=None)
    parser.add_argument("--block-bytes", type=int, default=None, help="CsvExampleGen's block_bytes")
    args = parser.parse_args()
    import generate

    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data or Path(tmp) / "data"
        for rows in args.rows:
            csv_dir = data_root / f"rows-{rows}" / "span-1"
            if not (csv_dir / "data.csv").exists():
                generate.write_spans(csv_dir.parent, rows, spans=1)
            if args.type_change_row is not None:
                csv_dir = _with_text_at(csv_dir, args.type_change_row, Path(tmp) / f"changed-{rows}")
            out = Path(tmp) / f"out-{rows}-{time.monotonic_ns()}"
            parameters = {} if args.block_bytes is None else {"block_bytes": args.block_bytes}
            report = run(csv_dir, out, args.code, parameters)
            execute = report["execute_s"]
            print(
                json.dumps(
                    {
                        "bench": "ingest",
                        "code": str(args.code),
                        "rows": rows,
                        "csv_mb": round((csv_dir / "data.csv").stat().st_size / 2**20),
                        "rows_per_s": round(rows / execute) if not report["error"] else None,
                        "type_change_row": args.type_change_row,
                        "block_bytes": args.block_bytes,
                        **report,
                    }
                ),
                flush=True,
            )
            subprocess.run(["rm", "-rf", str(out), str(out) + ".tmp"], check=False)


def _with_text_at(csv_dir: Path, row: int, target: Path) -> Path:
    """A copy of the CSV whose ``fare`` cell at data row ``row`` (header not counted) is text."""
    target.mkdir(parents=True, exist_ok=True)
    with open(csv_dir / "data.csv", "rb") as src, open(target / "data.csv", "wb") as dst:
        header = src.readline()
        dst.write(header)
        fare = header.decode().rstrip("\r\n").split(",").index("fare")
        for i, line in enumerate(src, start=1):
            if i == row:
                cells = line.decode().rstrip("\n").split(",")
                cells[fare] = "unknown"
                line = (",".join(cells) + "\n").encode()
            dst.write(line)
    return target


if __name__ == "__main__":
    main()
