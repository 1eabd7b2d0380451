"""TF Serving's directory layout: ``<base>/<model_name>/<version>/`` SavedModel directories.

A server treats every child of a model's base path whose name is an integer as a version and may
load it the moment it appears, so a version must appear complete or not at all. ``publish_version``
copies into a non-numeric sibling (``.tmp-<version>-<pid>``, which servers ignore), flushes it to
disk and renames it into place: one atomic step. Versions are immutable; publishing never replaces
one.

A bucket (``s3://``, ``gs://``) has no rename, so there a version is complete once its
``saved_model.pb`` exists: ``publish_version`` uploads every other file first and that one last, and
:func:`version_dirs` lists only versions that have it. This is the convention TF Serving itself
relies on for object storage (its file-system storage path source lists integer-named children and
the SavedModel loader fails while ``saved_model.pb`` is missing, retrying on the next poll); here a
partial version is simply not there yet, so no load error is ever reported for it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import time

from mlpipe.errors import DefinitionError, ServingError
from mlpipe.io.objstore import create_exclusive, list_children, upload_tree
from mlpipe.io.uris import is_remote, join, location

log = logging.getLogger(__name__)

_VERSION_NAME = re.compile(r"[0-9]+", re.ASCII)
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
TFLITE_MODEL_DIR = "Format-TFLite"  # in a TFLiteConverter's output artifact
TFLITE_FILE = "model.tflite"  # in the artifact, and in each pushed version
CLAIM = ".mlpipe-claim"  # in a bucket: who took a version number, written before its files


def is_saved_model_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a SavedModel (the only format served: no pickles, no HDF5)."""
    return any(os.path.isfile(os.path.join(path, name)) for name in SAVED_MODEL_FILES)


def version_dirs(model_base_path: str | os.PathLike[str]) -> dict[int, str]:
    """Version -> directory for every integer-named child directory of ``model_base_path``.

    Other children (temporary copies, plain files) are ignored, as TF Serving
    ignores them. Leading zeros are allowed; if two names parse to the same version the
    lexicographically first wins and the clash is logged. A missing base path has no versions.
    In a bucket, a version whose ``saved_model.pb`` is not uploaded yet is not there yet.
    """
    if is_remote(model_base_path):
        return _bucket_version_dirs(os.fspath(model_base_path))
    try:
        names = sorted(os.listdir(model_base_path))
    except FileNotFoundError:
        return {}
    found: dict[int, str] = {}
    for name in names:
        path = os.path.join(model_base_path, name)
        if not _VERSION_NAME.fullmatch(name) or not os.path.isdir(path):
            continue
        version = int(name)
        if version in found:
            log.warning(
                "version %d of %s has two directories, %s and %s; using the first",
                version,
                model_base_path,
                found[version],
                path,
            )
            continue
        found[version] = path
    return found


def _bucket_version_dirs(base: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for name in sorted(list_children(base)):
        if _VERSION_NAME.fullmatch(name) and int(name) not in found:
            path = join(base, name)
            if any(file in SAVED_MODEL_FILES for file in list_children(path)):
                found[int(name)] = path
    return found


def base_path_location(path: str | os.PathLike[str]) -> str:
    """A model base path as served: an absolute local path or a bucket URI (other schemes fail)."""
    try:
        return location(path, "model base path")
    except DefinitionError as error:
        raise ServingError(str(error)) from None


def list_versions(model_base_path: str | os.PathLike[str]) -> list[int]:
    """The versions present under ``model_base_path``, ascending."""
    return sorted(version_dirs(model_base_path))


def publish_version(
    saved_model_dir: str | os.PathLike[str],
    model_base_path: str | os.PathLike[str],
    version: int | None = None,
    first_free: bool = False,
) -> int:
    """Copy a SavedModel into ``model_base_path`` as a new version, atomically; return the version.

    ``version`` defaults to one more than the highest version present (1 for an empty directory).
    Raises ``ServingError`` if ``saved_model_dir`` is not a SavedModel or the version exists; with
    ``first_free`` a version taken meanwhile (by a concurrent publisher) moves on to the next one.
    """
    source = os.fspath(saved_model_dir)
    base = os.fspath(model_base_path)
    if not is_saved_model_dir(source):
        raise ServingError(
            f"{source!r} is not a SavedModel directory (no saved_model.pb); export the model with "
            "tf.saved_model.save before publishing it"
        )
    if is_remote(base):
        return _publish_to_bucket(source, base, version, first_free)
    os.makedirs(base, exist_ok=True)
    existing = version_dirs(base)
    if version is None:
        version = max(existing, default=0) + 1
    if version < 0:
        raise ServingError(f"version must be >= 0 to be served, got {version}")
    while first_free and version in existing:
        version += 1
    if version in existing:
        raise ServingError(
            f"version {version} already exists at {existing[version]!r}; versions are immutable, "
            "publish under a new version number"
        )
    target = os.path.join(base, str(version))
    staging = os.path.join(base, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(source, staging)
        _fsync_tree(staging)
        while True:
            try:
                os.rename(staging, target)
                break
            except OSError as error:
                if not (first_free and os.path.isdir(target)):
                    raise ServingError(
                        f"cannot publish version {version} at {target!r}: {error.strerror} (another "
                        "publisher may have taken this version; publish again)"
                    ) from None
                version += 1
                target = os.path.join(base, str(version))
        _fsync_path(base)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("published %s as version %d at %s", source, version, target)
    return version


def _publish_to_bucket(source: str, base: str, version: int | None, first_free: bool) -> int:
    """Upload ``source`` as ``base/<version>``, ``saved_model.pb`` last: complete once that object exists.

    A version is claimed first by creating ``<version>/.mlpipe-claim`` exclusively (S3's
    ``If-None-Match: *``, GCS's generation precondition): two publishers never mix their files under
    one version, and a push killed mid-upload keeps its claim, so no later push completes it.
    """
    taken = {int(name) for name in list_children(base) if _VERSION_NAME.fullmatch(name)}
    if version is None:
        version = max(taken, default=0) + 1
    if version < 0:
        raise ServingError(f"version must be >= 0 to be served, got {version}")
    while version in taken or not create_exclusive(join(base, str(version), CLAIM), _claim_text()):
        if not first_free:
            raise ServingError(
                f"version {version} already exists at {join(base, str(version))!r}; versions are "
                "immutable, publish under a new version number"
            )
        version += 1
    target = join(base, str(version))
    size = upload_tree(source, target, last=SAVED_MODEL_FILES)
    log.info("published %s as version %d at %s (%d bytes)", source, version, target, size)
    return version


def _claim_text() -> bytes:
    return f"{socket.gethostname()} pid {os.getpid()} at {time.time():.3f}\n".encode()


def _fsync_tree(root: str) -> None:
    """Flush every file and directory under ``root``, so the rename never exposes unwritten data."""
    for directory, _, files in os.walk(root):
        for name in files:
            _fsync_path(os.path.join(directory, name))
        _fsync_path(directory)


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tflite_file(model_uri: str) -> str | None:
    """The ``.tflite`` file of a TFLiteConverter output, or None for another model."""
    path = os.path.join(model_uri, TFLITE_MODEL_DIR, TFLITE_FILE)
    return path if os.path.isfile(path) else None


def publish_tflite_version(source: str, base: str, version: int) -> int:
    """Copy ``source`` to ``base/<version>/model.tflite`` atomically, as :func:`publish_version` does
    for SavedModels: into the hidden sibling ``.tmp-<version>-<pid>`` first, then renamed into place.
    Here rather than beside the converter so that the Pusher's code (and cache key) does not
    include TensorFlow's converter."""
    target = os.path.join(base, str(version))
    if os.path.exists(target):
        raise ServingError(f"version {version} already exists at {target!r}; versions are immutable")
    staging = os.path.join(base, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    shutil.copyfile(source, os.path.join(staging, TFLITE_FILE))
    os.rename(staging, target)
    return version
