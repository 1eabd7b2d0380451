"""Per-node overhead of each runner on a 10-node chain of no-op components.

Prints one JSON line: for each runner, the marginal cost of a node, (T(N nodes) - T(1 node)) /
(N - 1), and the fixed cost of a run, T(1 node); medians over --repeats, each run on a fresh root
and metadata store (so the fixed cost includes creating the MLMD schema).
Goal: Local < 20 ms/node, Beam < 200 ms/node.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

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
    one, n = statistics.median(fixed), statistics.median(full)
    return {"fixed_ms": round(one * 1000, 1), "ms_per_node": round((n - one) / (nodes - 1) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    BeamDagRunner().run(
        chain(tempfile.mkdtemp() + "/root", 2)
    )  # imports and warms Beam once, outside the timing
    out: dict[str, object] = {"bench": "runners", "nodes": args.nodes, "repeats": args.repeats}
    for name, run in (("local", LocalDagRunner(progress=False).run), ("beam", BeamDagRunner().run)):
        for key, value in costs(run, args.nodes, args.repeats).items():
            out[f"{name}_{key}"] = value
    print(json.dumps(out))


if __name__ == "__main__":
    main()
