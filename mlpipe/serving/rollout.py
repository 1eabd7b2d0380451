"""Canary and stable versions: labels in ``models.config``, moved by a push, a promote or a rollback.

Labels live where TF Serving keeps them: ``version_labels`` of the model's entry in the text-format
``models.config`` beside the model directories (``<serving>/models.config`` for versions under
``<serving>/<model>/``). A labelled model is served with a ``specific`` version policy listing
exactly its labelled versions, so pushing a canary adds one version next to the stable one instead
of replacing it (a ``latest`` policy would unload stable).

Each step is one config change a server applies on its next reread
(``--model_config_file_poll_wait_seconds``), within TF Serving's rule that a label cannot move onto a
version that is not loaded yet:

- ``push_label``: a new version under a label nobody holds (``canary``, or ``stable`` the first
  time). The server must run with ``--allow_version_labels_for_unavailable_models``, which allows
  exactly this; a label already held is refused here, before anything is published.
- ``promote``: ``stable`` moves to the canary's version, which is loaded (it served the canary); the
  ``canary`` label and the old stable version go.
- ``rollback``: the ``canary`` label and its version go; stable is untouched.
- ``promote_model``: ``promote`` in a pipeline (``Pusher(promote=True)``), only if the live canary
  is the pipeline's model, compared file by file, so a rerun that trained a new model promotes nothing.

Changes hold an exclusive lock on ``models.config.lock`` and write atomically, so a Pusher and a
person promoting at the same time do not lose each other's edit.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from mlpipe.errors import ServingError
from mlpipe.serving.config import ServedModel, VersionPolicy, read_model_config, write_model_config

CONFIG_FILE = "models.config"
CANARY = "canary"
STABLE = "stable"


def config_path_for(model_base_path: str) -> str:
    """The ``models.config`` that carries the labels of the model whose versions are in ``model_base_path``."""
    return os.path.join(os.path.dirname(os.path.abspath(model_base_path)), CONFIG_FILE)


def check_label_free(config_path: str, model_name: str, label: str) -> None:
    """Raise ``ServingError`` if ``label`` of ``model_name`` already points at a version."""
    with _locked(config_path, create=True):
        _check_free(_read(config_path), model_name, label, config_path)


def push_label(
    config_path: str, model_name: str, model_base_path: str, version: int, label: str
) -> ServedModel:
    """Label a newly published ``version`` and serve it beside the other labelled versions."""
    with _locked(config_path, create=True):
        models = _read(config_path)
        _check_free(models, model_name, label, config_path)
        entry = _entry(models, model_name)
        if entry is None:
            entry = ServedModel(model_name, os.path.abspath(model_base_path), VersionPolicy.specific(version))
            models.append(entry)
        elif os.path.abspath(entry.base_path) != os.path.abspath(model_base_path):
            raise ServingError(
                f"{config_path}: model {model_name!r} is served from {entry.base_path!r}, not from "
                f"{model_base_path!r}; push to the directory the config names"
            )
        labels = {**entry.version_labels, label: version}
        return _replace(models, config_path, entry, labels)


def promote(
    config_path: str, model_name: str, from_label: str = CANARY, to_label: str = STABLE
) -> tuple[int | None, int]:
    """Point ``to_label`` at ``from_label``'s version and drop ``from_label``; returns (old, new) version."""
    with _locked(config_path):
        models = _read(config_path)
        entry = _labelled_entry(models, model_name, from_label, config_path)
        labels = dict(entry.version_labels)
        version = labels.pop(from_label)
        previous = labels.get(to_label)
        labels[to_label] = version
        _replace(models, config_path, entry, labels)
        return previous, version


def promote_model(
    config_path: str, model_name: str, saved_model_dir: str, from_label: str = CANARY, to_label: str = STABLE
) -> int | None:
    """Promote ``from_label``'s version if it holds the SavedModel ``saved_model_dir`` (same files, same
    bytes); returns the promoted version, or None when the live ``from_label`` is another model."""
    from mlpipe.serving.layout import version_dirs

    with _locked(config_path):
        models = _read(config_path)
        entry = _labelled_entry(models, model_name, from_label, config_path)
        version = entry.version_labels[from_label]
        live = version_dirs(entry.base_path).get(version)
        if live is None or _tree_digest(live) != _tree_digest(saved_model_dir):
            return None
        labels = dict(entry.version_labels)
        labels[to_label] = labels.pop(from_label)
        _replace(models, config_path, entry, labels)
        return version


def rollback(config_path: str, model_name: str, label: str = CANARY) -> int:
    """Drop ``label`` and stop serving its version (unless another label holds it); returns the version."""
    with _locked(config_path):
        models = _read(config_path)
        entry = _labelled_entry(models, model_name, label, config_path)
        labels = dict(entry.version_labels)
        version = labels.pop(label)
        if not labels:
            raise ServingError(
                f"{config_path}: {label!r} is the only label of model {model_name!r}; rolling it back would "
                "leave nothing to serve (push the version to return to under another label first)"
            )
        _replace(models, config_path, entry, labels)
        return version


def _replace(
    models: list[ServedModel], config_path: str, entry: ServedModel, labels: dict[str, int]
) -> ServedModel:
    updated = dataclasses.replace(
        entry, version_labels=labels, version_policy=VersionPolicy.specific(*labels.values())
    )
    models[models.index(entry)] = updated
    write_model_config(models, config_path)
    return updated


def _check_free(models: list[ServedModel], model_name: str, label: str, config_path: str) -> None:
    entry = _entry(models, model_name)
    if entry is not None and label in entry.version_labels:
        raise ServingError(
            f"{config_path}: label {label!r} of model {model_name!r} already points at version "
            f"{entry.version_labels[label]}, and TF Serving cannot move a label onto a version that is "
            f"not loaded yet; first `mlpipe promote {config_path} {model_name}` or "
            f"`mlpipe rollback {config_path} {model_name}`, or push under another label"
        )


def _labelled_entry(models: list[ServedModel], model_name: str, label: str, config_path: str) -> ServedModel:
    entry = _entry(models, model_name)
    if entry is None:
        raise ServingError(f"{config_path}: no model {model_name!r}; models: {[m.name for m in models]}")
    if label not in entry.version_labels:
        raise ServingError(
            f"{config_path}: model {model_name!r} has no {label!r} label (labels: "
            f"{dict(entry.version_labels) or 'none'}); push a version with version_label={label!r} first"
        )
    return entry


def _tree_digest(root: str) -> str:
    """A digest of every file's relative path and bytes under ``root``: a version is its SavedModel's files."""
    import hashlib

    digest = hashlib.sha256()
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            digest.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _entry(models: list[ServedModel], model_name: str) -> ServedModel | None:
    return next((model for model in models if model.name == model_name), None)


def _read(config_path: str) -> list[ServedModel]:
    return read_model_config(config_path) if os.path.exists(config_path) else []


@contextmanager
def _locked(config_path: str, create: bool = False) -> Iterator[None]:
    """Hold the config's lock; unless ``create`` (a push may write the first config), it must exist."""
    if create:
        os.makedirs(os.path.dirname(os.path.abspath(config_path)), exist_ok=True)
    elif not os.path.exists(config_path):
        raise ServingError(
            f"model config {config_path} does not exist; a Pusher with version_label writes it beside the "
            "model directory"
        )
    with open(config_path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
