"""Opening an ML Metadata store, and making it safe to share.

MLMD's SQLite backend fails with "database is locked" when several processes write at once, and
its Python handle is not meant for concurrent threads. ``LockedStore`` serializes every call: a
thread lock inside the process and, for SQLite, an ``flock`` on ``<db>.lock`` across processes.
Each call is short, so serializing costs little and makes concurrent runs on one file safe.

A :meth:`LockedStore.transaction` (read, then write what the read decided: a cache hit, a new
execution) must also exclude other processes on MySQL, where MLMD's API has no transactions: it
holds a MySQL advisory lock (``GET_LOCK``) named after the database, on a connection of its own.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from mlpipe.errors import MetadataError
from mlpipe.metadata.config import MetadataConfig

T = TypeVar("T")

_RETRIES = 8
# MySQL client errors of a dropped connection (2006, 2013, 2002/2003); of these, only "lost
# connection during query" may come after the server ran the statement
_CONNECTION_LOST = ("lost connection", "server has gone away", "can't connect", "connection refused")
_MAYBE_EXECUTED = ("during query",)
log = logging.getLogger("mlpipe.metadata")
ADVISORY_LOCK_TIMEOUT_SECONDS = 60


class LockedStore:
    """An MLMD ``MetadataStore`` whose every call goes through :meth:`call` (serialized, retried)."""

    def __init__(self, config: MetadataConfig):
        from ml_metadata.metadata_store import metadata_store
        from ml_metadata.proto import metadata_store_pb2

        self.config = config
        self._thread_lock = threading.RLock()
        self._lock_fd: int | None = None
        self._lock_connection: Any = None  # MySQL: the connection that holds the advisory lock
        self._transaction_depth = 0
        self._flock_depth = 0
        conn = metadata_store_pb2.ConnectionConfig()
        if config.kind == "sqlite":
            os.makedirs(os.path.dirname(config.path) or ".", exist_ok=True)
            self._lock_fd = os.open(config.path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            conn.sqlite.filename_uri = config.path
            conn.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        elif config.kind == "mysql":
            conn.mysql.host = config.host
            conn.mysql.port = config.port
            conn.mysql.database = config.database
            conn.mysql.user = config.user
            conn.mysql.password = config.password
        else:
            raise MetadataError(
                f"unknown metadata store kind {config.kind!r}; use mlpipe.metadata.sqlite() or .mysql()"
            )
        self._factory, self._connection_config = metadata_store.MetadataStore, conn
        self.mlmd = self._open(self._factory, conn)

    def _open(self, factory: Callable[[Any], Any], conn: Any) -> Any:
        """Open the store. Several processes creating the schema of one empty MySQL database at once
        make all but one fail with a "retry connection" error, so that case is retried."""
        for attempt in range(_RETRIES):
            try:
                with self._locked():
                    return factory(conn)
            except Exception as e:
                transient = any(word in str(e).lower() for word in ("retry", "deadlock", "try restarting"))
                if not transient or attempt == _RETRIES - 1:
                    raise MetadataError(
                        f"cannot open the ML Metadata store {self.config.describe()}: {e}"
                    ) from e
                time.sleep(min(0.1 * 2**attempt, 2.0) * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The thread lock, and for SQLite the file lock, held until the outermost block ends.

        ``flock`` does not count: an inner block that unlocked would release a transaction's lock
        to other processes halfway through, so only the outermost block takes and drops it.
        """
        with self._thread_lock:
            lock_fd = self._lock_fd if self._flock_depth == 0 else None
            if lock_fd is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
            self._flock_depth += 1
            try:
                yield
            finally:
                self._flock_depth -= 1
                if lock_fd is not None:
                    fcntl.flock(lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock across several calls that must see one consistent state (read-then-write)."""
        with self._locked():
            if self.config.kind != "mysql":
                yield
                return
            self._transaction_depth += 1
            try:
                if self._transaction_depth == 1:
                    self._advisory_lock(acquire=True)
                yield
            finally:
                self._transaction_depth -= 1
                if self._transaction_depth == 0:
                    self._advisory_lock(acquire=False)

    def _advisory_lock(self, acquire: bool) -> None:
        import pymysql

        name = f"mlpipe:{self.config.database}"[:64]
        for attempt in range(_RETRIES):
            try:
                if self._lock_connection is None:
                    self._lock_connection = pymysql.connect(
                        host=self.config.host,
                        port=self.config.port,
                        user=self.config.user,
                        password=self.config.password,
                        connect_timeout=10,
                        autocommit=True,
                    )
                with self._lock_connection.cursor() as cursor:
                    if acquire:
                        cursor.execute("SELECT GET_LOCK(%s, %s)", (name, ADVISORY_LOCK_TIMEOUT_SECONDS))
                    else:
                        cursor.execute("SELECT RELEASE_LOCK(%s)", (name,))
                    (got,) = cursor.fetchone()
                if acquire and got != 1:
                    raise MetadataError(
                        f"no lock on {self.config.describe()} within {ADVISORY_LOCK_TIMEOUT_SECONDS}s: "
                        f"another process holds '{name}'"
                    )
                return
            except pymysql.err.OperationalError as e:
                self._lock_connection = None  # a dropped connection released its lock: reconnect
                if not acquire or attempt == _RETRIES - 1:
                    if acquire:
                        raise MetadataError(f"cannot lock {self.config.describe()}: {e}") from e
                    return
                time.sleep(min(0.1 * 2**attempt, 2.0) * random.uniform(0.5, 1.5))

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one MLMD call under the lock, retrying transient conflicts (MySQL deadlocks, busy
        SQLite) and, on MySQL, a dropped connection (a server restart, its ``wait_timeout``, a proxy
        closing idle connections): the store reconnects and the call is made again.

        A read is always made again. A write only when the server never saw it ("gone away",
        "can't connect"): after "lost connection during query" a write may have happened, and doing
        it twice could record an execution twice, so that error is raised. In practice the first
        call after an idle connection was dropped is a read (a launch looks up its contexts and
        executions before it writes), which reconnects for the writes that follow.
        """
        from ml_metadata import errors

        name = getattr(fn, "__name__", str(fn))
        for attempt in range(_RETRIES):
            try:
                with self._locked():
                    return fn(*args, **kwargs)
            except (errors.AbortedError, errors.UnavailableError, errors.InternalError) as e:
                text = str(e).lower()
                lost = self.config.kind == "mysql" and any(w in text for w in _CONNECTION_LOST)
                if lost:
                    retry = name.startswith("get_") or not any(w in text for w in _MAYBE_EXECUTED)
                else:
                    retry = "locked" in text or not isinstance(e, errors.InternalError)
                if attempt == _RETRIES - 1 or not retry:
                    raise MetadataError(f"ML Metadata call {name} failed: {e}") from e
                if lost:
                    fn = self._reconnect(fn)
                time.sleep(min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")

    def _reconnect(self, fn: Callable[..., T]) -> Callable[..., T]:
        """A new MLMD connection; ``fn`` rebound to it when it was a method of the old one."""
        with self._locked():
            old, self.mlmd = self.mlmd, None
            try:
                self.mlmd = self._open(self._factory, self._connection_config)
            except MetadataError:
                self.mlmd = old  # the server is still away: the next attempt tries again
                return fn
        log.warning("metadata store %s: connection lost, reconnected", self.config.describe())
        if getattr(fn, "__self__", None) is old:
            return getattr(self.mlmd, fn.__name__)
        return fn

    def close(self) -> None:
        if self._lock_connection is not None:
            self._lock_connection.close()
            self._lock_connection = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
