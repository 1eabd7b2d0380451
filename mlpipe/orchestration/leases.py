"""Who is still running an execution: leases that the running launcher renews in ML Metadata.

A RUNNING execution records its owner (host, pid) and a lease end. While the executor works, a
heartbeat thread pushes the lease end forward; when the owner dies — a killed pod, an Airflow
worker lost with its machine, a kill -9 — the lease runs out, and any launcher on any host may take
the execution over (mark it FAILED, remove its files) instead of waiting on it forever. On the
owner's own host a dead pid says the same sooner. A pid reused by another process does not keep a
dead execution alive, because the lease has run out all the same.

Hosts are assumed to keep their clocks within a few seconds of each other (NTP), far below the lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from mlpipe.io.processes import process_alive
from mlpipe.metadata.store import HOST, LEASE_UNTIL, PID, MetadataStore, execution_property

log = logging.getLogger("mlpipe.launcher")

DEFAULT_LEASE_SECONDS = 60.0


def lease_seconds() -> float:
    """``MLPIPE_LEASE_SECONDS`` (default 60): how long a silent owner keeps its execution."""
    return float(os.environ.get("MLPIPE_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def lease_end() -> float:
    """Seconds since the epoch, as a float: MLMD's integer properties are 32-bit on MySQL."""
    return time.time() + lease_seconds()


def owner_gone(execution: Any) -> str | None:
    """Why the owner of a RUNNING execution is gone, or None while it may still be working."""
    host, pid = execution_property(execution, HOST), execution_property(execution, PID)
    if host == socket.gethostname() and pid != os.getpid() and not process_alive(pid):
        return f"the process running it (pid {pid} on {host}) died"
    lease_end = execution_property(execution, LEASE_UNTIL)
    if lease_end is not None and lease_end < time.time():
        ended = time.strftime("%H:%M:%S", time.localtime(lease_end))
        return f"its owner (pid {pid} on {host}) stopped renewing its lease, which ended at {ended}"
    return None


class Heartbeat:
    """Renews an execution's lease every third of the lease while the block runs."""

    def __init__(self, store: MetadataStore, execution_id: int):
        self._store = store
        self._execution_id = execution_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{execution_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        interval = lease_seconds() / 3
        while not self._stop.wait(interval):
            try:
                if not self._store.renew_lease(self._execution_id, lease_end()):
                    return
            except Exception:  # a store hiccup: the next beat tries again, well within the lease
                log.warning("execution %d: renewing its lease failed", self._execution_id, exc_info=True)
