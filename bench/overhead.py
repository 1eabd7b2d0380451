"""Per-node orchestration overhead of the local runner (launcher + MLMD), with no-op components.

Prints one JSON line: for a 20-node chain and a 20-node fan-out, the cold run, the fully cached
rerun, and the overhead per node (wall time minus executor time, divided by nodes), as medians
over --repeats fresh pipelines. Goal: < 20 ms per node; cached 20-node rerun < 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from mlpipe import OutputArtifact, Parameter, Pipeline, component
from mlpipe.dsl import InputArtifact
from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.types import Integer


@component
def source(out: OutputArtifact[Integer], seed: Parameter[int] = 0):
    out.write(seed)


@component
def step(inp: InputArtifact[Integer], out: OutputArtifact[Integer]):
    out.write(0)


def chain(root: str, n: int) -> Pipeline:
    nodes = [source()]
    for i in range(1, n):
        nodes.append(step(inp=nodes[-1].outputs["out"]).with_id(f"step_{i}"))
    return Pipeline("chain", root, nodes, metadata=sqlite(os.path.join(root, "..", "m.sqlite")))


def fan_out(root: str, n: int) -> Pipeline:
    head = source()
    nodes = [head] + [step(inp=head.outputs["out"]).with_id(f"step_{i}") for i in range(1, n)]
    return Pipeline("fanout", root, nodes, metadata=sqlite(os.path.join(root, "..", "m.sqlite")))


def measure(build, n: int, workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = build(os.path.join(tmp, "root"), n)
        runner = LocalDagRunner(max_workers=workers, progress=False)
        t = time.perf_counter()
        cold = runner.run(pipeline)
        cold_s = time.perf_counter() - t
        t = time.perf_counter()
        cached = runner.run(pipeline)
        cached_s = time.perf_counter() - t
    assert all(r.state == "CACHED" for r in cached.results.values())
    executor_s = sum(r.executor_seconds for r in cold.results.values())
    return {"cold_s": cold_s, "cached_s": cached_s, "overhead_ms_per_node": (cold_s - executor_s) / n * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out: dict[str, object] = {
        "bench": "overhead",
        "nodes": args.nodes,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
    }
    for name, build, workers in (("chain", chain, 1), ("fanout", fan_out, os.cpu_count() or 1)):
        runs = [measure(build, args.nodes, workers) for _ in range(args.repeats)]
        for key in runs[0]:
            out[f"{name}_{key}_median"] = round(statistics.median(r[key] for r in runs), 4)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
