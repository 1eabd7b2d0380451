"""The Airflow virtualenv the Airflow tests run ``airflow`` from, built once from the lock file.

Airflow 3 cannot share mlpipe's virtualenv (its pins conflict with ml-metadata's), so tests need a
second one. Building it takes ~15-20 s with uv, so it is kept between test runs: a marker file
holds the hash of ``requirements-airflow.lock`` (and of the install options), and a change
rebuilds the venv from scratch. Tests never skip for want of Airflow: this builds it (PyPI is reachable in CI).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements-airflow.lock"
MARKER = ".mlpipe-airflow-lock.sha256"
# Precompiled bytecode: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every `airflow` command
# would otherwise recompile ~1800 modules, about 17 s of CPU per `airflow dags test`.
INSTALL_OPTIONS = ("--compile-bytecode",)

log = logging.getLogger("tests.airflow_env")


def default_location() -> Path:
    """``$MLPIPE_AIRFLOW_VENV``, else ``.airflow-venv`` at the repo's top (git-ignored)."""
    return Path(os.environ.get("MLPIPE_AIRFLOW_VENV") or REPO / ".airflow-venv")


def ensure_airflow_venv(path: str | os.PathLike[str] | None = None) -> Path:
    """A venv at ``path`` with exactly the locked Airflow installed; builds it only when needed.

    Safe to call from parallel test workers: the first builds, the others wait for it.
    """
    venv = Path(path) if path is not None else default_location()
    venv = venv.absolute()
    with open(LOCK, "rb") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # on the lock file itself: no extra file to ignore
        wanted = hashlib.sha256(lock_file.read() + " ".join(INSTALL_OPTIONS).encode()).hexdigest()
        marker = venv / MARKER
        if marker.is_file() and marker.read_text().strip() == wanted and (venv / "bin" / "airflow").exists():
            return venv
        _build(venv)
        marker.write_text(wanted + "\n")  # last: an interrupted build is redone next time
    return venv


def _build(venv: Path) -> None:
    if venv.exists():
        if not (venv / "pyvenv.cfg").is_file():
            raise RuntimeError(f"{venv} exists and is not a virtualenv; remove it or set MLPIPE_AIRFLOW_VENV")
        shutil.rmtree(venv)  # a fresh venv: packages dropped from the lock must not linger
    python311 = shutil.which("python3.11")
    if python311 is None:
        raise RuntimeError("python3.11 is not on PATH; the Airflow venv needs Python 3.11")
    started = time.perf_counter()
    subprocess.run([python311, "-m", "venv", str(venv)], check=True)
    install = [sys.executable, "-m", "uv", "pip", "install", "-q", "-p", str(venv / "bin" / "python")]
    result = subprocess.run([*install, *INSTALL_OPTIONS, "-r", str(LOCK)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"installing {LOCK.name} into {venv} failed (is uv installed? run .ci/setup_venv.sh):\n"
            f"{result.stderr}"
        )
    log.info("built Airflow venv %s in %.1f s", venv, time.perf_counter() - started)


@dataclass(frozen=True)
class AirflowHome:
    """A migrated AIRFLOW_HOME whose dags folder the tests compile into."""

    airflow: Path
    dags: Path
    env: dict[str, str]

    def dags_test(self, dag_id: str, logical_date: str, **env: str) -> subprocess.CompletedProcess:
        """One DAG run, in the foreground; task logs are part of the output."""
        return subprocess.run(
            [str(self.airflow), "dags", "test", dag_id, logical_date],
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """Each task's state in one DAG run, as Airflow recorded it (its SQLite metadata database)."""
        with closing(sqlite3.connect(Path(self.env["AIRFLOW_HOME"]) / "airflow.db")) as db:
            rows = db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
            ).fetchall()
        return dict(rows)

    def start_dags_test(self, dag_id: str, logical_date: str, log: Path, **env: str) -> subprocess.Popen:
        """Start one DAG run in the background; its output (with the task logs) goes to ``log``."""
        with open(log, "w") as out:
            return subprocess.Popen(
                [str(self.airflow), "dags", "test", dag_id, logical_date],
                env={**self.env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def migrated_airflow_home(home: Path, venv: Path | None = None) -> AirflowHome:
    """``airflow db migrate`` (SQLite) in ``home``; tasks get no MLMD override, so each pipeline
    uses its own store, as the tests that read it do."""
    airflow = (venv or ensure_airflow_venv()) / "bin" / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    env.pop("MLPIPE_METADATA", None)
    migrate = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return AirflowHome(airflow, dags, env)
