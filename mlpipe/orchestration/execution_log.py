"""Per-execution log files, safe when several nodes run in threads of one process.

While a node executes, records from the executing thread (its ``logging`` calls and its
``print``s) go to ``<root>/<node>/.system/<execution_id>/executor.log`` instead of the terminal,
so the progress display stays readable and every execution keeps its own log.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class _ThreadRoutedStream(io.TextIOBase):
    """Writes go to the current thread's log file when it has one, else to the original stream."""

    def __init__(self, original: TextIO, local: threading.local):
        self.original = original
        self._local = local

    def write(self, s: str) -> int:
        target = getattr(self._local, "stream", None) or self.original
        return target.write(s)

    def flush(self) -> None:
        target = getattr(self._local, "stream", None) or self.original
        target.flush()

    def isatty(self) -> bool:
        return False if getattr(self._local, "stream", None) else self.original.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # typeshed: a plain attribute; here the wrapped stream's
        return getattr(self.original, "encoding", "utf-8")


_local = threading.local()
_install_lock = threading.Lock()
_active = 0


def _install() -> None:
    global _active
    with _install_lock:
        if _active == 0:
            if not isinstance(sys.stdout, _ThreadRoutedStream):
                sys.stdout = _ThreadRoutedStream(sys.stdout, _local)
            if not isinstance(sys.stderr, _ThreadRoutedStream):
                sys.stderr = _ThreadRoutedStream(sys.stderr, _local)
        _active += 1


def _uninstall() -> None:
    global _active
    with _install_lock:
        _active -= 1
        if _active == 0:
            for name in ("stdout", "stderr"):
                stream = getattr(sys, name)
                if isinstance(stream, _ThreadRoutedStream):
                    setattr(sys, name, stream.original)


def tell_user(line: str) -> None:
    """Writes ``line`` to the terminal (the task log on Airflow/Kubeflow), past this thread's log capture."""
    stream = sys.stderr
    original = stream.original if isinstance(stream, _ThreadRoutedStream) else stream
    original.write(line.rstrip("\n") + "\n")
    original.flush()


@contextmanager
def capture_to(path: str, logger: logging.Logger) -> Iterator[TextIO]:
    """Route this thread's prints and log records to ``path`` for the duration of the block."""
    thread_id = threading.get_ident()
    with open(path, "a", buffering=1) as f:
        handler = logging.StreamHandler(f)
        handler.setFormatter(_FORMAT)
        handler.addFilter(lambda record: record.thread == thread_id)
        root = logging.getLogger()
        root.addHandler(handler)
        logger.setLevel(logging.INFO)
        _install()
        _local.stream = f
        try:
            yield f
        finally:
            _local.stream = None
            _uninstall()
            root.removeHandler(handler)
