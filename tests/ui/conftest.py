"""Fixtures for the dashboard tests: a headless Chromium, and stores made by real pipelines."""

from __future__ import annotations

import csv
import fcntl
import pickle
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.ui.browser import find_binaries, start_chromium, wait_for

REPO = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def web(tmp_path_factory):
    """One headless Chromium for the session (skipped locally if absent; a failure in CI)."""
    binaries = find_binaries()
    if binaries is None:
        message = "chromium/chromedriver not installed: run .ci/install_system_packages.sh"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    driver = start_chromium(*binaries, str(tmp_path_factory.mktemp("chromium-profile")))
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def taxi_runs(tmp_path_factory, worker_id):
    """The taxi pipeline run twice on a 3,000-trip sample: the second run reuses every node.

    Returns (first RunResult, second RunResult, MetadataConfig, data directory). Under xdist the
    workers share one store: the first builds it under a lock, the others load its results.
    """
    if worker_id == "master":
        base = tmp_path_factory.mktemp("ui_taxi")
    else:
        base = tmp_path_factory.getbasetemp().parent / "ui-taxi"
        base.mkdir(exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / "runs.pickle").exists():
            (base / "runs.pickle").write_bytes(pickle.dumps(_run_taxi_twice(base)))
    return pickle.loads((base / "runs.pickle").read_bytes())


def _run_taxi_twice(base: Path) -> tuple:
    sys.path.insert(0, str(REPO / "pipelines"))
    from taxi import create_pipeline

    from mlpipe.orchestration.local import LocalDagRunner

    data = base / "data"
    data.mkdir()
    with (
        open(REPO / "examples" / "data" / "chicago_taxi.csv", newline="") as src,
        open(data / "data.csv", "w") as dst,
    ):
        writer = csv.writer(dst)
        for _, row in zip(range(3001), csv.reader(src), strict=False):
            writer.writerow(row)
    pipeline = create_pipeline(
        pipeline_root=str(base / "root"),
        serving_model_dir=str(base / "serving" / "taxi"),
        data_root=str(data),
        train_steps=400,
        eval_steps=50,
    )
    runner = LocalDagRunner(progress=False)
    first = runner.run(pipeline)
    second = runner.run(pipeline)
    return first, second, pipeline.metadata, data


@pytest.fixture(scope="session")
def taxi_ui(taxi_runs):
    from mlpipe.ui.server import start

    dashboard = start(taxi_runs[2], port=0, background=True)
    # a run that changed in the last seconds may still go on: its page refreshes until it is quiet,
    # and a refresh replaces elements a test holds, so the browser tests start once it is
    newest = f"{dashboard.url}/runs/{taxi_runs[1].run_id}"
    wait_for(
        lambda: 'data-live="off"' in urllib.request.urlopen(newest).read().decode(), timeout=60, what="quiet"
    )
    yield dashboard
    dashboard.stop()
