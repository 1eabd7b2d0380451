"""TF Serving's directory layout: ``<base>/<model_name>/<version>/`` SavedModel directories.

A server treats every child of a model's base path whose name is an integer as a version and may
load it the moment it appears, so a version must appear complete or not at all. ``publish_version``
copies into a non-numeric sibling (``.tmp-<version>-<pid>``, which servers ignore), flushes it to
disk and renames it into place: one atomic step. Versions are immutable; publishing never replaces
one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil

from mlpipe.errors import ServingError

log = logging.getLogger(__name__)

_VERSION_NAME = re.compile(r"[0-9]+", re.ASCII)
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


def is_saved_model_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a SavedModel (the only format served: no pickles, no HDF5)."""
    return any(os.path.isfile(os.path.join(path, name)) for name in SAVED_MODEL_FILES)


def version_dirs(model_base_path: str | os.PathLike[str]) -> dict[int, str]:
    """Version -> directory for every integer-named child directory of ``model_base_path``.

    Other children (temporary copies, plain files) are ignored, as TF Serving
    ignores them. Leading zeros are allowed; if two names parse to the same version the
    lexicographically first wins and the clash is logged. A missing base path has no versions.
    """
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


def list_versions(model_base_path: str | os.PathLike[str]) -> list[int]:
    """The versions present under ``model_base_path``, ascending."""
    return sorted(version_dirs(model_base_path))


def publish_version(
    saved_model_dir: str | os.PathLike[str],
    model_base_path: str | os.PathLike[str],
    version: int | None = None,
) -> int:
    """Copy a SavedModel into ``model_base_path`` as a new version, atomically; return the version.

    ``version`` defaults to one more than the highest version present (1 for an empty directory).
    Raises ``ServingError`` if ``saved_model_dir`` is not a SavedModel or the version exists.
    """
    source = os.fspath(saved_model_dir)
    base = os.fspath(model_base_path)
    if not is_saved_model_dir(source):
        raise ServingError(
            f"{source!r} is not a SavedModel directory (no saved_model.pb); export the model with "
            "tf.saved_model.save before publishing it"
        )
    os.makedirs(base, exist_ok=True)
    existing = version_dirs(base)
    if version is None:
        version = max(existing, default=0) + 1
    if version < 0:
        raise ServingError(f"version must be >= 0 to be served, got {version}")
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
        try:
            os.rename(staging, target)
        except OSError as error:
            raise ServingError(
                f"cannot publish version {version} at {target!r}: {error.strerror} (another publisher "
                "may have taken this version; publish again)"
            ) from None
        _fsync_path(base)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("published %s as version %d at %s", source, version, target)
    return version


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
