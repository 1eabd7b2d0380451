"""A throw-away PostgreSQL server on 127.0.0.1 for the Airflow scheduler tests (Airflow's metadata database).

Debian's ``postgresql`` package (.ci/install_system_packages.sh) provides the binaries; the server is
a fresh ``initdb`` cluster in a temp dir on a free port, run by a non-root user (PostgreSQL refuses
to run as root: as root, the package's ``postgres`` user), with fsync off because nothing in it must
survive the test. ``stop()`` kills it and removes the cluster.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DATABASE = "airflow"
USER = "airflow"


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(
            "PostgreSQL is not installed: run .ci/install_system_packages.sh (Debian's postgresql)"
        )
    return Path(initdb).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    process: subprocess.Popen
    port: int
    directory: Path
    bin: Path

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the test database (trust authentication on 127.0.0.1: no password)."""
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def query(self, sql: str) -> list[list[str]]:
        """Rows of ``sql`` via psql (the tests' interpreter has no PostgreSQL driver), as strings."""
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", DATABASE,
             "-AtX", "-F", "\t", "-c", sql],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {result.stderr}")
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(
                signal.SIGINT
            )  # "fast" shutdown: disconnects clients (SIGTERM waits for them)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """initdb + postgres on a free port; returns once the ``airflow`` database accepts connections."""
    bin_dir = postgres_bin()
    directory = Path(tempfile.mkdtemp(prefix="mlpipe-postgres-"))  # not under pytest's 0700 root dir
    run_as: dict[str, int] = {}
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")  # created by Debian's package
        os.chown(directory, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    data = directory / "data"
    initdb = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync",
         "--locale=C"],
        capture_output=True, text=True, cwd=directory, timeout=120, **run_as,
    )  # fmt: skip
    if initdb.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {initdb.stderr}{initdb.stdout}")
    port = free_port()
    with open(directory / "server.log", "w") as log_file:
        process = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
             "-k", str(directory), "-F", "-c", "max_connections=200", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off"],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=directory, **run_as,
        )  # fmt: skip
    server = PostgresServer(process, port, directory, bin_dir)
    deadline = time.monotonic() + 60
    while True:
        ready = subprocess.run(
            [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-d", "postgres"],
            capture_output=True,
        )
        if ready.returncode == 0:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            log = (directory / "server.log").read_text()
            server.stop()
            raise RuntimeError(f"PostgreSQL did not start on 127.0.0.1:{port}:\n{log}")
        time.sleep(0.2)
    created = subprocess.run(
        [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if created.returncode != 0:
        server.stop()
        raise RuntimeError(f"createdb {DATABASE} failed: {created.stderr}")
    return server
