"""Whole directory trees on object storage: upload, download, list, delete.

A bucket has no directories and no rename, so an artifact on ``s3://`` or ``gs://`` is the set of
objects under its URI's prefix, and what makes it visible is MLMD (the launcher publishes it only
after :func:`upload_tree` returned). The one job here is moving trees between a local directory and
a prefix, whichever store holds it; talking to a store is :mod:`.objstore_s3` (s3fs) or
:mod:`.objstore_gcs` (google-cloud-storage). Credentials and endpoints come from those libraries'
usual places (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``~/.aws``; ``GOOGLE_APPLICATION_CREDENTIALS``,
``STORAGE_EMULATOR_HOST``) and are never passed through, stored or logged by mlpipe.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mlpipe.io.uris import scheme


@dataclass(frozen=True)
class StoredObject:
    """One object under a prefix: its key relative to the prefix, its size and its version tag."""

    key: str
    size: int
    etag: str


class ObjectStore(Protocol):
    """The few operations trees need; URIs are ``<scheme>://<bucket>/<key>``."""

    def objects(self, prefix: str) -> list[StoredObject]:
        """Every object under ``prefix/`` (keys relative to it); empty if there is none."""

    def children(self, prefix: str) -> list[str]:
        """The names one level below ``prefix/`` (object names and common prefixes)."""

    def download(self, uris: Sequence[str], paths: Sequence[str]) -> None:
        """Copy each object to the local file beside it (parent directories exist)."""

    def upload(self, paths: Sequence[str], uris: Sequence[str]) -> None:
        """Copy each local file to the object beside it; all are written when this returns."""

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under ``prefix/``; nothing there is not an error."""

    def create_exclusive(self, uri: str, data: bytes) -> bool:
        """Write ``uri`` only if no object is there (one atomic request); whether this call wrote it."""


def store_for(uri: str) -> ObjectStore:
    """The client for ``uri``'s scheme (one per process and scheme: connections are reused)."""
    found = scheme(uri)
    if found not in _STORES:
        if found == "s3":
            from mlpipe.io.objstore_s3 import S3Store

            _STORES[found] = S3Store()
        elif found == "gs":
            from mlpipe.io.objstore_gcs import GcsStore

            _STORES[found] = GcsStore()
        else:
            raise ValueError(f"{uri!r} is not an object-store URI (s3:// or gs://)")
    return _STORES[found]


_STORES: dict[str | None, ObjectStore] = {}


def upload_tree(local_dir: str, uri: str, last: Sequence[str] = ()) -> int:
    """Upload every file under ``local_dir`` to ``uri/<relative path>``; return the bytes sent.

    Files named in ``last`` (relative paths) go after all others, so a reader that waits for them
    (TF Serving waits for ``saved_model.pb``) never sees the tree half-written.
    """
    files = []
    for directory, _, names in os.walk(local_dir):
        for name in names:
            files.append(os.path.relpath(os.path.join(directory, name), local_dir).replace(os.sep, "/"))
    first = [f for f in files if f not in last]
    final = [f for f in files if f in last]
    store = store_for(uri)
    for batch in (first, final):
        if batch:
            store.upload([os.path.join(local_dir, f) for f in batch], [f"{uri}/{f}" for f in batch])
    return sum(os.path.getsize(os.path.join(local_dir, f)) for f in files)


def download_tree(uri: str, local_dir: str) -> list[StoredObject]:
    """Download every object under ``uri/`` into ``local_dir`` (created, even when empty)."""
    os.makedirs(local_dir, exist_ok=True)
    store = store_for(uri)
    found = store.objects(uri)
    paths = [os.path.join(local_dir, *o.key.split("/")) for o in found]
    for path in paths:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    if found:
        store.download([f"{uri}/{o.key}" for o in found], paths)
    return found


def create_exclusive(uri: str, data: bytes) -> bool:
    """Create the object ``uri`` unless it exists, atomically; True if this call created it."""
    return store_for(uri).create_exclusive(uri, data)


def delete_tree(uri: str) -> None:
    """Delete every object under ``uri/``."""
    store_for(uri).delete_prefix(uri)


def list_objects(uri: str) -> list[StoredObject]:
    """Every object under ``uri/``, keys relative to it."""
    return store_for(uri).objects(uri)


def list_children(uri: str) -> list[str]:
    """Names one level below ``uri/``: what ``os.listdir`` is for a local directory."""
    return store_for(uri).children(uri)


def local_copies(files: dict[str, list[str]], directory: str) -> dict[str, list[str]]:
    """``files`` (group -> paths or URIs) with each object downloaded under ``directory``.

    For readers that only open local files (CSV, Parquet, TFRecord readers of the pinned stack):
    ``s3://b/k`` becomes ``directory/s3/b/k``; local paths are returned as they are.
    """
    out: dict[str, list[str]] = {}
    for group, paths in files.items():
        remote = [p for p in paths if scheme(p) in ("s3", "gs")]
        local = {p: os.path.join(directory, *p.replace("://", "/", 1).split("/")) for p in remote}
        for path in local.values():
            os.makedirs(os.path.dirname(path), exist_ok=True)
        by_store: dict[str, list[str]] = {}
        for uri in remote:
            by_store.setdefault(uri.split("://", 1)[0], []).append(uri)
        for uris in by_store.values():
            store_for(uris[0]).download(uris, [local[u] for u in uris])
        out[group] = [local.get(p, p) for p in paths]
    return out
