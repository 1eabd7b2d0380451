"""``gs://`` through google-cloud-storage, the client already pinned with Beam's GCP extras.

gcsfs (fsspec's GCS filesystem) would need google-cloud-storage 3 and protobuf 5+, which the pinned
TensorFlow/ml-metadata stack cannot take, so this talks to the official client directly. Credentials
are Google's Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's login, a
workload identity); ``STORAGE_EMULATOR_HOST`` points it at an emulator, which takes no credentials.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mlpipe.io.objstore import StoredObject


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


class GcsStore:
    def __init__(self) -> None:
        from google.cloud import storage  # type: ignore[attr-defined]  # a namespace package mypy misreads

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            self._client: Any = storage.Client.create_anonymous_client()
        else:
            self._client = storage.Client()

    def objects(self, prefix: str) -> list[StoredObject]:
        bucket, key = _split(prefix)
        root = key.rstrip("/") + "/" if key else ""
        return [
            StoredObject(blob.name[len(root) :], int(blob.size or 0), str(blob.etag or ""))
            for blob in self._client.list_blobs(bucket, prefix=root)
            if not blob.name.endswith("/")
        ]

    def children(self, prefix: str) -> list[str]:
        bucket, key = _split(prefix)
        root = key.rstrip("/") + "/" if key else ""
        pages = self._client.list_blobs(bucket, prefix=root, delimiter="/")
        names = [blob.name[len(root) :] for blob in pages]  # consumes the pages, filling .prefixes
        names += [p[len(root) :].rstrip("/") for p in pages.prefixes]
        return sorted(n for n in names if n)

    def download(self, uris: Sequence[str], paths: Sequence[str]) -> None:
        for uri, path in zip(uris, paths, strict=True):
            bucket, key = _split(uri)
            self._client.bucket(bucket).blob(key).download_to_filename(path)

    def upload(self, paths: Sequence[str], uris: Sequence[str]) -> None:
        for path, uri in zip(paths, uris, strict=True):
            bucket, key = _split(uri)
            self._client.bucket(bucket).blob(key).upload_from_filename(path)

    def delete_prefix(self, prefix: str) -> None:
        bucket, key = _split(prefix)
        blobs = list(self._client.list_blobs(bucket, prefix=key.rstrip("/") + "/"))
        if blobs:
            self._client.bucket(bucket).delete_blobs(blobs)

    def create_exclusive(self, uri: str, data: bytes) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        bucket, key = _split(uri)
        try:
            self._client.bucket(bucket).blob(key).upload_from_string(data, if_generation_match=0)
        except PreconditionFailed:
            return False
        return True
