"""Dashboard speed on a big store: time to serve the first page of runs (one JSON line).

Builds a SQLite store with --runs runs of --nodes nodes each (COMPLETE executions recorded with
mlpipe's own MetadataStore, as the launcher records them), starts the dashboard on it and fetches
``/runs`` over HTTP. Goal (issue 24): the first page of 1,000 runs in < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import urllib.request


def make_store(path: str, runs: int, nodes: int, pipeline: str = "bench") -> list[str]:
    """A store holding ``runs`` runs of ``nodes`` COMPLETE executions; returns the run ids, oldest first."""
    from mlpipe.metadata.config import sqlite
    from mlpipe.metadata.store import NODE_ID, PIPELINE_NAME, RUN_ID, MetadataStore

    store = MetadataStore(sqlite(path))
    run_ids = []
    try:
        for r in range(runs):
            run_id = f"run-{r:05d}"
            for n in range(nodes):
                node = f"node{n}"
                contexts = store.contexts_for(pipeline, run_id, node)
                properties = {NODE_ID: node, RUN_ID: run_id, PIPELINE_NAME: pipeline}
                store.record_execution("BenchComponent", contexts, {}, {}, properties, "COMPLETE")
            run_ids.append(run_id)
    finally:
        store.close()
    return run_ids


def time_get(url: str, repeats: int) -> tuple[float, bytes]:
    """Median seconds of ``repeats`` GETs (after one warm-up), and the last body."""
    body = urllib.request.urlopen(url).read()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        body = urllib.request.urlopen(url).read()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=9, help="executions per run (the taxi pipeline has 9)")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    from mlpipe.metadata.config import sqlite
    from mlpipe.ui.server import start

    # in memory (/dev/shm) when there is one: building is one fsync'd transaction per execution
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        path = os.path.join(tmp, "metadata.sqlite")
        started = time.perf_counter()
        make_store(path, args.runs, args.nodes)
        build_s = time.perf_counter() - started
        dashboard = start(sqlite(path), port=0, background=True)
        try:
            first_s, body = time_get(dashboard.url + "/runs", args.repeats)
            run_s, _ = time_get(f"{dashboard.url}/runs/run-{args.runs - 1:05d}", args.repeats)
        finally:
            dashboard.stop()
    out = {
        "bench": "ui",
        "runs": args.runs,
        "nodes_per_run": args.nodes,
        "store_build_s": round(build_s, 1),
        "runs_first_page_ms": round(first_s * 1000, 1),
        "run_page_ms": round(run_s * 1000, 1),
        "rows_on_first_page": body.count(b"<tr data-run="),
        "goal_first_page_ms": 300,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
