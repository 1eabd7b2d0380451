"""Per-node overhead of each runner on a 10-node chain of no-op components.

Prints one JSON line: for each runner, the marginal cost of a node, (T(N nodes) - T(1 node)) /
(N - 1), and the fixed cost of a run, T(1 node); medians over the repeats, each run on a fresh root
and metadata store (so the fixed cost includes creating the MLMD schema).

- local, beam: in this process; --repeats runs each.
- kfp: ``kfp.local`` with the SubprocessRunner (one process per task); --kfp-repeats runs each.
- airflow: ``airflow dags test`` of the compiled DAG in the Airflow virtualenv (built by
  tests/support/airflow_env.py if missing, ``$MLPIPE_AIRFLOW_VENV`` or ``.airflow-venv``) in a fresh
  AIRFLOW_HOME; --airflow-repeats runs each (one costs ~15-30 s). Beside the marginal and fixed costs
  it reports, from the task log timestamps of the N-node run, the time before the first task starts
  (importing Airflow), the first task's one-off setup (Airflow starting its in-process API server),
  and the per-node cost including that setup (first task start to last task end, / N) and excluding
  it (the median span of tasks 2..N, start to the next task's start).

Goal: Local < 20 ms/node, Beam < 200 ms/node.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
sys.path.insert(1, os.path.dirname(BENCH))  # the repo, for tests.support.airflow_env

from overhead import chain  # noqa: E402  (the same no-op components)

from mlpipe.orchestration.beam import BeamDagRunner  # noqa: E402
from mlpipe.orchestration.local import LocalDagRunner  # noqa: E402


def cold_seconds(run: Callable[[object], object], nodes: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = chain(os.path.join(tmp, "root"), nodes)
        started = time.perf_counter()
        run(pipeline)
        return time.perf_counter() - started


def costs(run: Callable[[object], object], nodes: int, repeats: int) -> dict[str, float]:
    """Median fixed (1-node run) and marginal per-node cost, from interleaved runs."""
    fixed, full = [], []
    for _ in range(repeats):
        fixed.append(cold_seconds(run, 1))
        full.append(cold_seconds(run, nodes))
    return _summary(fixed, full, nodes)


def _summary(fixed: list[float], full: list[float], nodes: int) -> dict[str, float]:
    one, n = statistics.median(fixed), statistics.median(full)
    return {"fixed_ms": round(one * 1000, 1), "ms_per_node": round((n - one) / (nodes - 1) * 1000, 1)}


@contextlib.contextmanager
def stdout_to(path: str) -> Iterator[None]:
    """Send this process's and its children's stdout (fd 1) to ``path``: kfp.local prints every task's
    log there, and the bench's stdout is its one JSON line."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def kfp_costs(nodes: int, repeats: int) -> dict[str, float]:
    """kfp.local, SubprocessRunner: each task a process of this interpreter running the entry point."""
    import warnings

    from kfp import local

    from mlpipe.orchestration.kubeflow import KubeflowDagRunner

    # the subprocess runner ignores the task image; kfp warns that it does not look like Python
    warnings.filterwarnings("ignore", "You may be attemping to run a task", RuntimeWarning)
    with tempfile.TemporaryDirectory() as tmp:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=os.path.join(tmp, "kfp"))
        log = os.path.join(tmp, "kfp.log")

        def run(pipeline: object) -> None:
            KubeflowDagRunner().build(pipeline)()

        try:
            with stdout_to(log):
                return costs(run, nodes, repeats)
        except Exception:
            sys.stderr.write(Path(log).read_text()[-5000:])
            raise


_TIMESTAMP = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z?)"
_TASK_START = re.compile(_TIMESTAMP + r".*\[DAG TEST\] starting task_id=(\S+)")
_TASK_END = re.compile(_TIMESTAMP + r".*\[DAG TEST\] end task task_id=(\S+)")


def _utc(stamp: str) -> datetime:
    value = datetime.fromisoformat(stamp.removesuffix("Z"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclasses.dataclass
class AirflowRun:
    seconds: float  # wall time of the whole `airflow dags test`
    before_first_task: float  # process start to the first task's start: importing Airflow, parsing
    task_spans: list[float]  # each task's start to the next one's start (the last: to its end)


class Airflow:
    """A fresh, migrated AIRFLOW_HOME in ``home`` using the pinned Airflow venv."""

    def __init__(self, home: str):
        from tests.support.airflow_env import ensure_airflow_venv

        self.airflow = str(ensure_airflow_venv() / "bin" / "airflow")
        self.dags = Path(home) / "dags"
        self.dags.mkdir(parents=True)
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        self.env.pop("MLPIPE_METADATA", None)  # each run records to its pipeline's fresh store
        self._run(["db", "migrate"])
        self._count = 0

    def _run(self, args: list[str]) -> str:
        result = subprocess.run(
            [self.airflow, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )
        if result.returncode != 0 or (args[:2] == ["dags", "test"] and "state=success" not in result.stdout):
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stdout[-5000:]}")
        return result.stdout

    def dags_test(self, nodes: int) -> AirflowRun:
        """Compile a fresh ``nodes``-node chain (its own root and store) to a new DAG and run it once."""
        from mlpipe.orchestration.airflow import AirflowDagRunner

        self._count += 1
        name = f"chain_{nodes}_{self._count}"  # one DAG id per run: the dags folder keeps them all
        with tempfile.TemporaryDirectory() as tmp:
            ir = dataclasses.replace(chain(os.path.join(tmp, "root"), nodes).compile(), name=name)
            dag_id = AirflowDagRunner().compile(ir, self.dags / f"{name}.py")
            started_at = datetime.now(UTC)
            started = time.perf_counter()
            output = self._run(["dags", "test", dag_id, "2026-01-01"])
            seconds = time.perf_counter() - started
        starts = [(_utc(m.group(1)), m.group(2)) for m in map(_TASK_START.search, output.splitlines()) if m]
        ends = [(_utc(m.group(1)), m.group(2)) for m in map(_TASK_END.search, output.splitlines()) if m]
        if len(starts) != nodes or len(ends) != nodes:
            raise RuntimeError(f"expected {nodes} tasks in the dags test output:\n{output[-5000:]}")
        times = [t for t, _ in starts] + [ends[-1][0]]
        spans = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        return AirflowRun(seconds, (starts[0][0] - started_at).total_seconds(), spans)


def airflow_costs(nodes: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        airflow = Airflow(home)
        migrate = time.perf_counter() - started
        fixed, full = [], []
        for _ in range(repeats):
            fixed.append(airflow.dags_test(1))
            full.append(airflow.dags_test(nodes))
    out = _summary([r.seconds for r in fixed], [r.seconds for r in full], nodes)
    median = statistics.median
    first = median(r.task_spans[0] for r in full)
    later = median(median(r.task_spans[1:]) for r in full)
    return {
        **out,
        "db_migrate_ms": round(migrate * 1000),
        "run_ms": round(median(r.seconds for r in full) * 1000),
        "before_first_task_ms": round(median(r.before_first_task for r in full) * 1000),
        "first_task_ms": round(first * 1000),
        "first_task_setup_ms": round((first - later) * 1000),
        "ms_per_node_incl_setup": round(median(sum(r.task_spans) for r in full) / nodes * 1000, 1),
        "ms_per_node_excl_setup": round(later * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each size for local and beam")
    parser.add_argument("--kfp-repeats", type=int, default=3)
    parser.add_argument("--airflow-repeats", type=int, default=1, help="each costs ~15-30 s per size")
    args = parser.parse_args()
    BeamDagRunner().run(
        chain(tempfile.mkdtemp() + "/root", 2)
    )  # imports and warms Beam once, outside the timing
    out: dict[str, object] = {
        "bench": "runners",
        "nodes": args.nodes,
        "repeats": args.repeats,
        "kfp_repeats": args.kfp_repeats,
        "airflow_repeats": args.airflow_repeats,
        "cpus": os.cpu_count(),
    }
    for name, run in (("local", LocalDagRunner(progress=False).run), ("beam", BeamDagRunner().run)):
        for key, value in costs(run, args.nodes, args.repeats).items():
            out[f"{name}_{key}"] = value
    for name, measure, repeats in (
        ("kfp", kfp_costs, args.kfp_repeats),
        ("airflow", airflow_costs, args.airflow_repeats),
    ):
        if repeats > 0:
            for key, value in measure(args.nodes, repeats).items():
                out[f"{name}_{key}"] = value
    print(json.dumps(out))


if __name__ == "__main__":
    main()
