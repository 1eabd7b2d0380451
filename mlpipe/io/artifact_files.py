"""Where a node's files are written and how they are put in place, on a local root or in a bucket.

The launcher's guarantee is the same on both: an output is visible only once MLMD publishes it.
Locally the executor writes into a hidden staging directory beside the final one and a rename puts
it in place. A bucket has no rename, so the executor writes into a local scratch directory, and the
files are uploaded under the artifact's own final prefix (``<root>/<node>/<key>/<execution id>``,
never shared with another execution) while the artifact is still PENDING in MLMD; only the MLMD
transaction that follows makes it LIVE. A failure deletes that prefix; a worker killed mid-upload
leaves it for the launcher that takes over its expired lease to delete.

Inputs in a bucket are read from local copies (:mod:`.objstore_cache`), because TF 2.16, TFDV, TFT
and TFMA read through ``tf.io.gfile``, which has no ``s3://`` filesystem without tensorflow-io.
"""

from __future__ import annotations

import glob
import os
import shutil

from mlpipe.io.objstore import delete_tree, list_objects, upload_tree
from mlpipe.io.objstore_cache import localize_tree, scratch_dir, scratch_root
from mlpipe.io.uris import is_remote

EMPTY_MARKER = ".mlpipe-empty"  # the one object of an artifact that has no files (e.g. a model not pushed)


def exists(uri: str) -> bool:
    """Whether anything is stored at ``uri`` (a directory, or objects under the prefix)."""
    return bool(list_objects(uri)) if is_remote(uri) else os.path.exists(uri)


def remove(uri: str) -> None:
    """Delete ``uri`` and everything under it; nothing there is not an error."""
    if is_remote(uri):
        delete_tree(uri)
    else:
        shutil.rmtree(uri, ignore_errors=True)


def staging_dir(node_dir: str, execution_id: int) -> str:
    """A local directory for an execution's outputs until they are put in place."""
    if is_remote(node_dir):
        return scratch_dir(f"{os.path.basename(node_dir)}-{execution_id}-")
    return os.path.join(node_dir, ".staging", str(execution_id))


def remove_staging(node_dir: str, execution_id: int) -> None:
    """Remove a dead execution's staging directory: beside the root, or (bucket) in this machine's
    scratch area; a worker on another machine took its scratch copy with it."""
    if is_remote(node_dir):
        pattern = os.path.join(
            glob.escape(scratch_root()), f"{glob.escape(os.path.basename(node_dir))}-{execution_id}-*"
        )
        for path in glob.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)
    else:
        shutil.rmtree(os.path.join(node_dir, ".staging", str(execution_id)), ignore_errors=True)


def put_in_place(local_dir: str, uri: str) -> None:
    """Make ``local_dir``'s files the contents of ``uri`` (which must not exist yet)."""
    if is_remote(uri):
        if not any(files for _, _, files in os.walk(local_dir)):  # a prefix exists only through objects
            open(os.path.join(local_dir, EMPTY_MARKER), "wb").close()
        upload_tree(local_dir, uri)
        shutil.rmtree(local_dir, ignore_errors=True)
    else:
        os.makedirs(os.path.dirname(uri), exist_ok=True)
        os.rename(local_dir, uri)


def readable_path(uri: str) -> str:
    """A local path with the contents of a LIVE artifact's ``uri`` (itself, when it is local)."""
    return localize_tree(uri) if is_remote(uri) else uri
