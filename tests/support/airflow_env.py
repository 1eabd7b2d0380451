"""The Airflow virtualenv the Airflow tests run ``airflow`` from, built once from the lock file.

Airflow 3 cannot share mlpipe's virtualenv (its pins conflict with ml-metadata's), so tests need a
second one. Building it takes ~15-20 s with uv, so it is kept between test runs: a marker file
holds the hash of ``requirements-airflow.lock`` (and of the install options), and a change
rebuilds the venv from scratch. Tests never skip for want of Airflow: this builds it (PyPI is reachable in CI).

Two ways to run DAGs: ``migrated_airflow_home`` (SQLite, ``airflow dags test``: one DAG run in the
foreground) and ``start_airflow_stack`` (Airflow's real services, the scheduler creating runs on
the DAGs' schedules, LocalExecutor on a throw-away PostgreSQL from tests/support/postgres.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.postgres import PostgresServer, free_port, start_postgres

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


# The real Airflow 3 processes a deployment runs; the LocalExecutor's task processes are children of
# the scheduler and reach the metadata database only through the api-server's execution API.
PROCESSES = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
}

# Tuned for tests on a small machine: new DAG files are found within seconds, parsing stays cheap
# (a DAG file of mlpipe's imports nothing heavy), few task processes at once (each node imports
# TensorFlow), sensors in reschedule mode come back quickly.
SCHEDULER_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__PARALLELISM": "3",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__API__WORKERS": "1",
}


@dataclass
class AirflowStack:
    """PostgreSQL + ``airflow db migrate`` + api-server, scheduler and dag-processor on 127.0.0.1.

    Tests compile DAG files into ``dags``; the dag-processor picks them up, the scheduler runs them on
    their schedule with the LocalExecutor. ``stop()`` ends every process it started (by process group)
    and the database.
    """

    home: Path
    dags: Path
    env: dict[str, str]
    postgres: PostgresServer
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def start(self, airflow: Path) -> None:
        for name, args in PROCESSES.items():
            with open(self.home / f"{name}.log", "w") as out:
                self.processes[name] = subprocess.Popen(
                    [str(airflow), *args], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stop() ends its workers too
                )  # fmt: skip
        self._wait_for_api_server()

    def _wait_for_api_server(self, timeout: float = 180.0) -> None:
        url = self.env["AIRFLOW__API__BASE_URL"] + "/api/v2/monitor/health"
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Airflow's api-server did not answer {url}:\n{self.process_log('api-server')}"
                )
            time.sleep(0.5)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with {process.returncode}:\n{self.process_log(name)}"
                )

    def process_log(self, name: str, tail: int = 6000) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")[-tail:]

    def query(self, sql: str) -> list[list[str]]:
        return self.postgres.query(sql)

    def dag_runs(self, dag_id: str) -> list[tuple[str, str, str]]:
        """(run_id, run_type, state) of every run of ``dag_id``, oldest logical date first."""
        rows = self.query(
            f"SELECT run_id, run_type, state FROM dag_run WHERE dag_id = '{dag_id}' ORDER BY logical_date, id"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
        """task id -> (state, try number) in one DAG run."""
        rows = self.query(
            "SELECT task_id, coalesce(state, 'none'), try_number FROM task_instance "
            f"WHERE dag_id = '{dag_id}' AND run_id = '{run_id}'"
        )
        return {r[0]: (r[1], int(r[2])) for r in rows}

    def wait_for_runs(
        self, dag_id: str, count: int, timeout: float, poll: float = 1.0
    ) -> list[tuple[str, str, str]]:
        """Waits until ``dag_id`` has ``count`` finished runs; returns them (see ``dag_runs``)."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            runs = self.dag_runs(dag_id)
            if len(runs) >= count and all(state in ("success", "failed") for _, _, state in runs):
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{dag_id}: wanted {count} finished runs, have {runs} after {timeout:.0f}s; "
                    f"scheduler log:\n{self.process_log('scheduler')}"
                )
            time.sleep(poll)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log as the Airflow UI shows it (the worker writes it under ``logs/``)."""
        path = (
            self.logs
            / f"dag_id={dag_id}"
            / f"run_id={run_id}"
            / f"task_id={task_id}"
            / f"attempt={try_number}.log"
        )
        return path.read_text(errors="replace")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for process in self.processes.values():
            try:  # workers the executor forked, left behind by a process that exited first
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.postgres.stop()


def start_airflow_stack(home: Path, venv: Path | None = None, **env: str) -> AirflowStack:
    """Airflow 3 with the LocalExecutor on a fresh PostgreSQL, scheduling what ``home/dags`` holds.

    ``env`` adds to the environment of every Airflow process (and so of every task).
    """
    airflow = (venv or ensure_airflow_venv()) / "bin" / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    postgres = start_postgres()
    api_port = free_port()
    base_url = f"http://127.0.0.1:{api_port}"
    environment = {
        **os.environ,
        **SCHEDULER_SETTINGS,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        # one secret for the scheduler (which signs the tasks' tokens) and the api-server (which checks them)
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        **env,
    }
    environment.pop("MLPIPE_METADATA", None)
    stack = AirflowStack(home, dags, environment, postgres)
    try:
        migrate = subprocess.run(
            [str(airflow), "db", "migrate"], env=environment, capture_output=True, text=True, timeout=600
        )
        if migrate.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}"
            )
        stack.start(airflow)
    except BaseException:
        stack.stop()
        raise
    return stack
