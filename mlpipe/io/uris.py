"""Which artifact locations mlpipe can read and write: local paths, ``s3://`` and ``gs://``, nothing else.

``os.path.abspath("hdfs://nn/root")`` is ``$PWD/hdfs:/nn/root``: without this check a pipeline given
a URI it cannot handle would write into a local folder named ``hdfs:`` and record that path in MLMD,
exit 0, and leave the user believing their artifacts are elsewhere. So every location a user gives
(pipeline root, Pusher destination, ``input_base``, a served model's base path) goes through
:func:`location` when it is defined: a local path becomes absolute, an object-store URI is kept as a
URI (``s3://bucket/key``, no trailing slash), and any other scheme is a DefinitionError.
"""

from __future__ import annotations

import os
import posixpath
import re

from mlpipe.errors import DefinitionError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
OBJECT_STORE_SCHEMES = ("s3", "gs")


def scheme(location: str | os.PathLike[str]) -> str | None:
    """The URI scheme of ``location`` in lower case (``"s3"``), or None for a plain path."""
    match = _SCHEME.match(os.fspath(location))
    return match.group(1).lower() if match else None


def is_remote(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is on object storage (and so needs :mod:`mlpipe.io.objstore` to reach)."""
    return scheme(location) in OBJECT_STORE_SCHEMES


def location(value: str | os.PathLike[str], what: str) -> str:
    """``value`` as mlpipe records it: an absolute local path, or ``<scheme>://<bucket>/<key>``.

    ``file://`` URIs are local paths. ``what`` names the parameter for the message (e.g.
    ``"pipeline 'taxi': root"``).
    """
    text = os.fspath(value)
    found = scheme(text)
    if found is None:
        return os.path.abspath(text)
    rest = text[_SCHEME.match(text).end() :]  # type: ignore[union-attr]
    if found == "file":
        return os.path.abspath(rest or "/")
    if found in OBJECT_STORE_SCHEMES:
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise DefinitionError(f"{what} is {text!r}: name a bucket, e.g. '{found}://my-bucket/pipelines'")
        key = posixpath.normpath(key).lstrip("/") if key.strip("/") else ""
        return f"{found}://{bucket}/{key}" if key else f"{found}://{bucket}"
    raise DefinitionError(
        f"{what} is {text!r}: mlpipe reads and writes local paths, s3:// and gs:// URIs, and "
        f"'{found}://' is none of them. Give a local directory, a bucket URI, or mount the storage "
        f"and give the mount's path."
    )


def join(base: str, *parts: str) -> str:
    """``base`` joined with ``parts``: with '/' on object storage, ``os.path.join`` locally."""
    if is_remote(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(base, *parts)
