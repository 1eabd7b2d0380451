"""Throw-away MariaDB servers for tests.

The MySQL-backed ML Metadata (MLMD) store has to be exercised against a real
server: SQLite does not show locking, concurrent writers or connection
handling. Tests therefore start their own private ``mariadbd`` (installed by
``.ci/install_system_packages.sh``) in a temporary directory, on a free TCP
port on 127.0.0.1, and shut it down afterwards. Nothing here touches the
system service or ``/etc/mysql``: every option is on the command line and
``--no-defaults`` keeps option files out.

To point MLMD at a server, fill ``metadata_store_pb2.ConnectionConfig().mysql``
with ``host=server.host``, ``port=server.port``,
``database=server.create_database(...)``, ``user=server.user`` and
``password=server.password``. MLMD connects over TCP and creates its schema on
first use; it would also create a missing database itself (unless
``skip_db_creation`` is set), but :meth:`MariaDBServer.create_database` makes
the intent explicit and fails loudly on name collisions.

Pitfalls seen with MLMD 1.16 (libmysqlclient inside):

* Use ``host="127.0.0.1"``, not ``"localhost"``: the client library maps
  "localhost" to the *system* socket path and fails. To use the socket instead,
  set ``mysql.socket=str(server.socket)`` and leave ``host`` empty; setting both
  aborts the whole process (a C++ CHECK, not an exception).
* Opening several stores at once on an *empty* database races on schema
  creation (RuntimeError "There are a subset of tables in MLMD instance" or a
  deadlock). Open one ``MetadataStore`` first, then start concurrent clients.
"""

from __future__ import annotations

import atexit
import ctypes
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

__all__ = ["MariaDBServer", "MariaDBStartError", "find_mariadbd", "start_mariadb"]

USER = "mlpipe"
_DATABASE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
# sun_path is 108 bytes on Linux including the NUL; mariadbd refuses longer paths.
_MAX_SOCKET_PATH = 107
_ER_ACCESS_DENIED = 1045

# Options shared by mariadb-install-db (which bootstraps with mariadbd) and the
# server itself: InnoDB file sizes must agree between the two, and smaller files
# make both initialisation and start-up take well under a second.
_SERVER_OPTIONS = (
    "--skip-name-resolve",
    "--skip-log-bin",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    # Test data is disposable: trade durability for speed.
    "--innodb-flush-log-at-trx-commit=2",
    "--innodb-doublewrite=0",
    # io_uring/libaio are often blocked by container seccomp profiles; plain
    # synchronous I/O works everywhere and is fast enough for tests.
    "--innodb-use-native-aio=0",
)


class MariaDBStartError(RuntimeError):
    """The server could not be initialised or did not come up in time."""


def find_mariadbd() -> str | None:
    """Return the path of the MariaDB server binary, or None if not installed.

    ``/usr/sbin`` is often not on a non-root user's PATH, hence the fallbacks.
    """
    for candidate in (shutil.which("mariadbd"), "/usr/sbin/mariadbd", "/usr/sbin/mysqld"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass(frozen=True)
class MariaDBServer:
    """A running private server; connect over TCP with ``host``/``port``/``user``/``password``."""

    host: str
    port: int
    user: str
    password: str
    socket: Path
    datadir: Path
    error_log: Path
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)

    def connect(self, database: str | None = None) -> pymysql.connections.Connection:
        """Open an autocommit admin connection over TCP, the same way MLMD connects."""
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self, name: str) -> str:
        """Create an empty database and return its name.

        Fails if it already exists, so two tests cannot silently share MLMD state.
        """
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"database name must match {_DATABASE_NAME.pattern}: {name!r}")
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{name}`")
        finally:
            connection.close()
        return name

    def stop(self, timeout: float = 30) -> None:
        """Shut the server down cleanly (SIGTERM), killing it only if it hangs. Idempotent."""
        _terminate(self.process, timeout)


def start_mariadb(workdir: Path, timeout: float = 60) -> MariaDBServer:
    """Initialise a datadir in ``workdir`` and start a server on a free port on 127.0.0.1.

    Returns once user ``mlpipe`` can log in over TCP. The server is also stopped
    at interpreter exit (and, on Linux, when this process dies) so an aborted
    test session does not leave servers behind.
    """
    mariadbd = find_mariadbd()
    if mariadbd is None:
        raise MariaDBStartError("mariadbd not found; run .ci/install_system_packages.sh")
    workdir = Path(workdir).resolve()
    sock = workdir / "mariadbd.sock"
    if len(os.fsencode(sock)) > _MAX_SOCKET_PATH:
        raise MariaDBStartError(f"socket path too long for a unix socket ({len(str(sock))} bytes): {sock}")
    workdir.mkdir(parents=True, exist_ok=True)
    datadir = workdir / "data"
    error_log = workdir / "mariadbd.err"
    password = secrets.token_hex(16)
    # mariadbd refuses to run as root unless told to; elsewhere --user would only warn.
    as_root = ("--user=root",) if os.geteuid() == 0 else ()

    _install_db(datadir, as_root)
    init_file = workdir / "init.sql"
    init_file.write_text(_init_sql(password))
    init_file.chmod(0o600)

    deadline = time.monotonic() + timeout
    # The port is picked by binding port 0 and releasing it, so another process
    # can grab it before mariadbd does; retry with a fresh port in that case.
    for _attempt in range(3):
        port = _free_port()
        command = [
            mariadbd,
            "--no-defaults",  # must come first
            *as_root,
            f"--datadir={datadir}",
            f"--socket={sock}",
            f"--pid-file={workdir / 'mariadbd.pid'}",
            f"--log-error={error_log}",
            f"--tmpdir={workdir}",
            f"--init-file={init_file}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--skip-networking=0",
            *_SERVER_OPTIONS,
        ]
        log_offset = error_log.stat().st_size if error_log.exists() else 0
        with error_log.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=_server_env(),
                preexec_fn=_die_with_parent_hook(),
            )
        atexit.register(_terminate, process, 10.0)
        server = MariaDBServer(
            host="127.0.0.1",
            port=port,
            user=USER,
            password=password,
            socket=sock,
            datadir=datadir,
            error_log=error_log,
            process=process,
        )
        try:
            _wait_until_ready(server, deadline)
        except MariaDBStartError:
            server.stop(timeout=10)
            new_log = error_log.read_bytes()[log_offset:].decode(errors="replace")
            if "Address already in use" in new_log and time.monotonic() < deadline:
                continue
            raise
        return server
    raise MariaDBStartError(f"mariadbd kept losing its port to other processes{_log_tail(error_log)}")


def _install_db(datadir: Path, as_root: tuple[str, ...]) -> None:
    """Create the system tables with mariadb-install-db (a fresh datadir per server)."""
    install_db = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if install_db is None:
        raise MariaDBStartError("mariadb-install-db not found; run .ci/install_system_packages.sh")
    command = [
        install_db,
        "--no-defaults",
        *as_root,
        f"--datadir={datadir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        *_SERVER_OPTIONS,
    ]
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_server_env(),
        text=True,
        check=False,
    )
    if result.returncode != 0:
        # Whole output: mariadbd's actual [ERROR] lines come before a long generic help text.
        output = result.stdout.strip().splitlines()[-200:]
        raise MariaDBStartError(
            f"{' '.join(command)} failed with exit code {result.returncode}:\n" + "\n".join(output)
        )


def _init_sql(password: str) -> str:
    """SQL run by mariadbd at start-up, before clients connect, to create the test user.

    Both host spellings are needed: with --skip-name-resolve a TCP client is
    '127.0.0.1' while a socket client is 'localhost'.
    """
    statements = []
    for host in ("127.0.0.1", "localhost"):
        account = f"'{USER}'@'{host}'"
        statements += [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{password}';",
            f"ALTER USER {account} IDENTIFIED BY '{password}';",
            f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION;",
        ]
    return "\n".join(statements) + "\n"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_ready(server: MariaDBServer, deadline: float) -> None:
    """Poll until the test user can log in over TCP; fail fast if mariadbd exits."""
    last_error: Exception | None = None
    while True:
        if server.process.poll() is not None:
            raise MariaDBStartError(
                f"mariadbd exited with code {server.process.returncode} during start-up"
                f"{_log_tail(server.error_log)}"
            )
        try:
            # Read/write timeouts too: if another process owns the port, TCP connect
            # succeeds but no MySQL handshake ever arrives.
            pymysql.connect(
                host=server.host,
                port=server.port,
                user=server.user,
                password=server.password,
                connect_timeout=2,
                read_timeout=2,
                write_timeout=2,
            ).close()
            return
        except pymysql.err.OperationalError as error:
            # The init file runs before clients are accepted, so a rejected
            # login is a real misconfiguration, not a start-up race.
            if error.args and error.args[0] == _ER_ACCESS_DENIED:
                raise MariaDBStartError(f"mariadbd rejected the test user: {error}") from error
            last_error = error
        if time.monotonic() >= deadline:
            raise MariaDBStartError(
                f"mariadbd did not accept connections on {server.host}:{server.port} in time "
                f"(last error: {last_error}){_log_tail(server.error_log)}"
            )
        time.sleep(0.05)


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec hook making the kernel SIGTERM mariadbd if the test process dies without atexit.

    Linux only. The signal fires when the *thread* that started the server ends,
    so it is only armed from the main thread. prctl is looked up before the fork
    because the child must not load libraries.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


def _log_tail(error_log: Path, lines: int = 40) -> str:
    try:
        tail = error_log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- last {len(tail)} lines of {error_log} ---\n" + "\n".join(tail)


def _server_env() -> dict[str, str]:
    """Environment for mariadbd: preload libeatmydata when installed.

    Bootstrapping issues ~1000 fsyncs (DDL recovery log, Aria logs, .frm
    files); on a busy disk that turns a sub-second start into several seconds.
    Test data is disposable, so turning fsync into a no-op is safe.
    """
    env = dict(os.environ)
    libraries = sorted(glob.glob("/usr/lib/*/libeatmydata.so*") + glob.glob("/usr/lib/libeatmydata.so*"))
    if libraries:
        env["LD_PRELOAD"] = " ".join(filter(None, [libraries[0], env.get("LD_PRELOAD", "")]))
    return env
