"""A local copy of each artifact tree on object storage, downloaded once per machine and reused.

TF, TFDV, TFT, TFMA and the pinned Beam read local files (TF 2.16 has no ``s3://`` filesystem of its
own), so a node whose inputs are in a bucket reads local copies. A LIVE artifact never changes (it
lives under its producing execution's own prefix and is written before MLMD publishes it), so its
URI is a sufficient cache key: the copy is made once, by whichever process gets there first (into a
hidden sibling, then renamed), and every later node on the machine reuses it.

``MLPIPE_OBJSTORE_CACHE`` sets the directory (default ``~/.cache/mlpipe/objstore``); deleting it is
always safe between runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile

from mlpipe.errors import DataError
from mlpipe.io.objstore import download_tree, local_copies

log = logging.getLogger("mlpipe.objstore")


def cache_root() -> str:
    return os.environ.get("MLPIPE_OBJSTORE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "mlpipe", "objstore"
    )


def localize_tree(uri: str) -> str:
    """A local directory holding the objects under ``uri/``; downloaded only on first use."""
    root = cache_root()
    target = os.path.join(root, "trees", hashlib.sha256(uri.encode()).hexdigest()[:32])
    if os.path.isdir(target):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = tempfile.mkdtemp(prefix=".partial-", dir=os.path.dirname(target))
    try:
        found = download_tree(uri, partial)
        if not found:  # a LIVE artifact always has an object (mlpipe.io.artifact_files.EMPTY_MARKER)
            raise DataError(
                f"{uri} holds no objects: its files were deleted from the bucket after it was published; "
                f"rerun its producer node with caching off (mlpipe run ... --no-cache) to make it again"
            )
        try:
            os.rename(partial, target)
        except OSError:  # another process finished the same copy first: theirs is as good
            if not os.path.isdir(target):
                raise
        log.info("downloaded %s (%d objects) to %s", uri, len(found), target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def localize_file(uri: str) -> str:
    """A local copy of one object (a module file), named as in the bucket; fetched on every call,
    because unlike an artifact it may change, and kept under its content's hash."""
    root = cache_root()
    os.makedirs(os.path.join(root, "files"), exist_ok=True)
    partial = tempfile.mkdtemp(prefix=".partial-", dir=os.path.join(root, "files"))
    try:
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        [[fetched]] = local_copies({"file": [uri]}, partial).values()
        with open(fetched, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:32]
        target = os.path.join(root, "files", digest, name)
        if not os.path.isfile(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(fetched, target)
        return target
    except FileNotFoundError:
        raise DataError(f"{uri} does not exist; upload it or fix the path") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def scratch_root() -> str:
    return os.path.join(cache_root(), "scratch")


def scratch_dir(prefix: str) -> str:
    """A new private local directory under the cache root, for a node's outputs before upload."""
    root = scratch_root()
    os.makedirs(root, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=root)
