"""Running TFX-style pipeline files the way a user does: ``mlpipe run FILE`` and ``mlpipe serve``."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from mlpipe.metadata.config import sqlite
from mlpipe.metadata.queries import ExecutionInfo, list_runs, run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.serving import Client

REPO = Path(__file__).parents[2]
PIPELINES = Path(__file__).parent / "pipelines"
MLPIPE = [sys.executable, "-m", "mlpipe.cli"]


def environment(home: Path, data: Path, **extra: str) -> dict[str, str]:
    """The variables the pipeline files read (TFX examples read $HOME the same way)."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TFX_COMPAT_HOME": str(home),
        "TFX_COMPAT_DATA": str(data),
        **extra,
    }


def mlpipe(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLPIPE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def latest_run(home: Path, pipeline_name: str) -> dict[str, ExecutionInfo]:
    """The newest run's executions by node id, from the metadata file the pipeline file names."""
    store = MetadataStore(sqlite(home / "metadata" / pipeline_name / "metadata.db"))
    try:
        runs = sorted(list_runs(store, pipeline_name), key=lambda r: r.created_ms)
        return {e.node_id: e for e in run_executions(store, runs[-1].run_id)}
    finally:
        store.close()


@contextlib.contextmanager
def served(model_name: str, base_path: Path) -> Iterator[Client]:
    """``mlpipe serve`` on free ports in its own process, killed afterwards."""
    process = subprocess.Popen(
        [*MLPIPE, "serve", f"--model_name={model_name}", f"--model_base_path={base_path}",
         "--port=0", "--rest_api_port=0"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        match = re.search(r"REST http://(\S+)", line)
        assert match, line + process.stderr.read()
        client = Client(match.group(1), model=model_name, timeout=60)
        client.wait_until_available(timeout=120)
        yield client
    finally:
        process.terminate()
        process.wait(timeout=30)
