"""``s3://`` through s3fs (fsspec), for AWS and any S3-compatible endpoint (MinIO, Ceph, moto).

s3fs builds its client from botocore's own configuration, so the endpoint and credentials are
wherever the AWS tools look: ``AWS_ENDPOINT_URL`` (or ``endpoint_url`` in ``~/.aws/config``),
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance
roles. Listings are not cached: a server polls for new model versions and a launcher for a dead
execution's leftovers, and both must see the bucket as it is now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlpipe.io.objstore import StoredObject


def _path(uri: str) -> str:
    return uri.split("://", 1)[1]


class S3Store:
    def __init__(self) -> None:
        import s3fs

        self._fs: Any = s3fs.S3FileSystem(use_listings_cache=False, skip_instance_cache=True)

    def objects(self, prefix: str) -> list[StoredObject]:
        root = _path(prefix).rstrip("/") + "/"
        found = self._fs.find(root, detail=True)
        return [
            StoredObject(name[len(root) :], int(info.get("size") or 0), str(info.get("ETag", "")))
            for name, info in sorted(found.items())
            if name.startswith(root) and info.get("type") != "directory"
        ]

    def children(self, prefix: str) -> list[str]:
        root = _path(prefix).rstrip("/")
        try:
            return sorted(name.rstrip("/").rsplit("/", 1)[-1] for name in self._fs.ls(root, detail=False))
        except FileNotFoundError:
            return []

    def download(self, uris: Sequence[str], paths: Sequence[str]) -> None:
        self._fs.get([_path(u) for u in uris], list(paths))

    def upload(self, paths: Sequence[str], uris: Sequence[str]) -> None:
        self._fs.put(list(paths), [_path(u) for u in uris])

    def delete_prefix(self, prefix: str) -> None:
        keys = [f"{_path(prefix)}/{o.key}" for o in self.objects(prefix)]
        if keys:
            self._fs.rm(keys)

    def create_exclusive(self, uri: str, data: bytes) -> bool:
        try:
            self._fs.pipe_file(_path(uri), data, mode="create")  # a PUT with If-None-Match: *
        except (FileExistsError, PermissionError):
            return False
        return True
