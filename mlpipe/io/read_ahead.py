"""An iterator whose next item is computed in a second thread while the caller uses this one.

For two-stage loops whose stages release the GIL at different times (Transform: TensorFlow runs
the graph on one batch while the previous batch's outputs are encoded), so both cores work.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

T = TypeVar("T")

_END = object()


def read_ahead(items: Iterable[T], name: str = "read-ahead") -> Generator[T, None, None]:
    """``items`` in order, one computed ahead. Only one ``next`` runs at a time (a generator
    cannot be resumed from two threads), an exception raised by ``items`` is raised here, and
    closing this iterator early waits for the item in work, then stops."""
    iterator = iter(items)
    with ThreadPoolExecutor(1, thread_name_prefix=name) as pool:
        pending = pool.submit(next, iterator, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, iterator, _END)
            yield cast(T, item)
