"""The loaded versions of every served model, kept in step with the model directories.

Each poll lists a model's base path, picks the versions its policy wants, loads the new ones and
only then unloads the ones no longer wanted: availability is preserved, so a request never finds no
version during a switch. A version that fails to load is marked END with the error in its status and
the previous version keeps serving; the failed one is retried only when its directory changes (e.g.
a copy that was still in progress). States and their order follow TF Serving's
``ModelVersionStatus``.

Version labels follow TF Serving's ``ServerCore::UpdateModelVersionLabelMap``: every config (the
first one and each reload) is checked before its models are added, and a label may only point at a
version that is AVAILABLE, so a version cannot be loaded and labelled in one config change (the
change is refused with FAILED_PRECONDITION and nothing of it applies). With
``allow_version_labels_for_unavailable_models`` a label that is new, or keeps its version, may
point at a version still loading; moving an existing label still needs its new version loaded, so
no request for the label ever finds no version during a rollout.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from mlpipe.io.artifact_files import readable_path
from mlpipe.io.uris import is_remote
from mlpipe.serving.config import ServedModel
from mlpipe.serving.layout import SAVED_MODEL_FILES, version_dirs
from mlpipe.serving.servable import Servable, ServableLoadError, load_servable
from mlpipe.serving.status import ServingRequestError, invalid_argument, not_found

log = logging.getLogger(__name__)

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass(frozen=True)
class VersionStatus:
    """One entry of a model's status: TF Serving's ``ModelVersionStatus``."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


class _Version:
    __slots__ = ("version", "path", "state", "error_code", "error_message", "stamp", "servable")

    def __init__(self, version: int, path: str, stamp: tuple[int, ...]):
        self.version = version
        self.path = path
        self.state = START
        self.error_code = "OK"
        self.error_message = ""
        self.stamp = stamp
        self.servable: Servable | None = None


class _Model:
    __slots__ = ("config", "versions", "available", "warned_empty")

    def __init__(self, config: ServedModel):
        self.config = config
        self.versions: dict[int, _Version] = {}
        self.available: dict[int, Servable] = {}
        self.warned_empty = False


class ModelManager:
    """Owns the loaded versions of the configured models; thread-safe.

    Requests call :meth:`resolve` and :meth:`status`; the poller thread (or a config reload) calls
    :meth:`poll`, which does the slow loading outside the lock requests take.
    """

    def __init__(
        self, models: Sequence[ServedModel], allow_version_labels_for_unavailable_models: bool = False
    ):
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._models = {model.name: _Model(model) for model in _unique(models)}
        self._allow_unavailable_labels = allow_version_labels_for_unavailable_models
        self._labels: dict[str, dict[str, int]] | None = None  # None until a config's labels are accepted
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is a configured model (with or without a loaded version)."""
        with self._lock:
            return name in self._models

    def poll(self) -> None:
        """Bring every model in line with its directory once (load new versions, unload old ones)."""
        with self._poll_lock:
            with self._lock:
                models = list(self._models.values())
            for model in models:
                self._poll_model(model)

    def reload(self, models: Sequence[ServedModel]) -> list[tuple[str, str]]:
        """Replace the whole set of served models, as TF Serving's config reload does, and load them.

        Models left out are unloaded; a model whose base path changed is served afresh. Returns
        :meth:`load_failures` afterwards.
        """
        wanted = {model.name: model for model in _unique(models)}
        with self._poll_lock:
            self.update_labels(list(wanted.values()))
            with self._lock:
                for name, model in list(self._models.items()):
                    if name not in wanted or wanted[name].base_path != model.config.base_path:
                        self._unload_all(model)
                        del self._models[name]
                for name, config in wanted.items():
                    if name in self._models:
                        self._models[name].config = config
                    else:
                        self._models[name] = _Model(config)
                current = list(self._models.values())
            for model in current:
                self._poll_model(model)
        return self.load_failures()

    def update_labels(self, models: Sequence[ServedModel]) -> None:
        """Accept the version labels of ``models`` (a whole config), or refuse them all.

        Raises FAILED_PRECONDITION, with TF Serving's message, for a label on a version that is not
        AVAILABLE (unless allowed, see the module docstring); the labels in force then stay.
        """
        with self._lock:
            current = self._labels or {}
            accepted: dict[str, dict[str, int]] = {}
            for model in models:
                served = self._models.get(model.name)
                for label, version in model.version_labels.items():
                    unchanged_or_new = current.get(model.name, {}).get(label, version) == version
                    available = served is not None and version in served.available
                    if not available and not (self._allow_unavailable_labels and unchanged_or_new):
                        raise ServingRequestError(
                            "FAILED_PRECONDITION",
                            f"Request to assign label to version {version} of model {model.name}, which is "
                            "not currently available for inference",
                        )
                    accepted.setdefault(model.name, {})[label] = version
            self._labels = accepted

    def load_failures(self) -> list[tuple[str, str]]:
        """(code, message) for each model that has no available version because loading failed."""
        failures = []
        with self._lock:
            for model in self._models.values():
                if model.available:
                    continue
                for record in sorted(model.versions.values(), key=lambda r: -r.version):
                    if record.error_code != "OK":
                        message = (
                            f"model {model.config.name!r} version {record.version} ({record.path}) failed to "
                            f"load: {record.error_message}"
                        )
                        failures.append((record.error_code, message))
                        break
        return failures

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The loaded version a request asks for: a version, a label, or (neither) the latest."""
        with self._lock:
            model = self._models.get(name)
            if model is None:
                raise not_found(
                    f"Servable not found for request: Latest({name}); no model {name!r} is served"
                )
            if label is not None:
                version = self._label_version(model, label)
            if version is None:
                if not model.available:
                    raise not_found(
                        f"Servable not found for request: Latest({name}); no version is available yet"
                    )
                return model.available[max(model.available)]
            servable = model.available.get(version)
            if servable is None:
                raise not_found(
                    f"Servable not found for request: Specific({name}, {version}); available versions: "
                    f"{sorted(model.available) or 'none'}"
                )
            return servable

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        """Status of every known version of ``name`` (newest first), or of one version/label."""
        with self._lock:
            model = self._models.get(name)
            if model is None or not model.versions:
                raise not_found(f"Could not find any versions of model {name}")
            if label is not None:
                version = self._label_version(model, label)
            if version is not None:
                if version not in model.versions:
                    raise not_found(f"Could not find version {version} of model {name}")
                records = [model.versions[version]]
            else:
                records = sorted(model.versions.values(), key=lambda r: -r.version)
            return [VersionStatus(r.version, r.state, r.error_code, r.error_message) for r in records]

    def start_polling(self, interval_seconds: float) -> None:
        """Poll every ``interval_seconds`` in a background thread (0: never, as TF Serving's flag)."""
        if interval_seconds <= 0 or self._poller is not None:
            return
        self._poller = threading.Thread(
            target=self._poll_forever, args=(interval_seconds,), name="mlpipe-model-poller", daemon=True
        )
        self._poller.start()

    def stop(self) -> None:
        """Stop polling and unload every version."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        with self._poll_lock, self._lock:
            for model in self._models.values():
                self._unload_all(model)

    def _poll_forever(self, interval_seconds: float) -> None:
        while not self._stop.wait(interval_seconds):
            try:
                self.poll()
            except Exception:
                log.exception("polling the model directories failed; retrying in %ss", interval_seconds)

    def _poll_model(self, model: _Model) -> None:
        config = model.config
        dirs = version_dirs(config.base_path)
        if not dirs:
            if not model.warned_empty:
                log.warning(
                    "no versions of model %r found under %s; waiting for an integer-named SavedModel directory",
                    config.name,
                    config.base_path,
                )
                model.warned_empty = True
            return
        model.warned_empty = False
        wanted = config.version_policy.select(dirs)
        for version in sorted(wanted, reverse=True):
            if self._stop.is_set():
                return
            stamp = _dir_stamp(dirs[version])
            record = model.versions.get(version)
            if record is not None and (
                record.state in (LOADING, AVAILABLE) or (record.error_code != "OK" and record.stamp == stamp)
            ):
                continue
            self._load(model, version, dirs[version], stamp)
        with self._lock:
            if not any(version in model.available for version in wanted):
                return  # keep serving what is loaded rather than nothing
            for version in list(model.available):
                if version not in wanted:
                    self._unload(model, model.versions[version])

    def _load(self, model: _Model, version: int, path: str, stamp: tuple[int, ...]) -> None:
        record = _Version(version, path, stamp)
        with self._lock:
            model.versions[version] = record
            record.state = LOADING
        try:
            servable = load_servable(model.config.name, version, readable_path(path))
        except ServableLoadError as error:
            self._fail(model, record, error.code, error.message)
        except Exception as error:  # a model may fail in any way; the server must keep serving
            self._fail(model, record, "UNKNOWN", f"{type(error).__name__}: {error}")
        else:
            with self._lock:
                record.servable = servable
                record.state = AVAILABLE
                model.available[version] = servable

    def _fail(self, model: _Model, record: _Version, code: str, message: str) -> None:
        log.error(
            "model %r version %d at %s failed to load: %s: %s",
            model.config.name,
            record.version,
            record.path,
            code,
            message,
        )
        with self._lock:
            record.state = END
            record.error_code = code
            record.error_message = message

    def _unload(self, model: _Model, record: _Version) -> None:
        """Drop a version (lock held); requests still running on it keep their reference."""
        record.state = UNLOADING
        model.available.pop(record.version, None)
        record.servable = None
        record.state = END
        log.info("unloaded model %r version %d", model.config.name, record.version)

    def _unload_all(self, model: _Model) -> None:
        for version in list(model.available):
            self._unload(model, model.versions[version])

    def _label_version(self, model: _Model, label: str) -> int:
        """TF Serving's ``GetModelVersionForLabel`` (lock held)."""
        if self._labels is None:
            raise ServingRequestError("UNAVAILABLE", f"Model labels does not init yet.{label}")
        labels = self._labels.get(model.config.name, {})
        try:
            return labels[label]
        except KeyError:
            raise invalid_argument(
                f"Unrecognized servable version label: {label} (model {model.config.name!r} has labels "
                f"{sorted(labels) or 'none'})"
            ) from None


def _dir_stamp(path: str) -> tuple[int, ...]:
    """Changes when a version directory's contents change at the top level, to retry a failed load."""
    if is_remote(path):
        return ()  # a bucket version is listed only once complete (layout.version_dirs), never changes
    stamps = []
    for file in (path, *(os.path.join(path, name) for name in SAVED_MODEL_FILES)):
        try:
            stamps.append(os.stat(file).st_mtime_ns)
        except FileNotFoundError:
            stamps.append(0)
    return tuple(stamps)


def _unique(models: Sequence[ServedModel]) -> list[ServedModel]:
    names = [model.name for model in models]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ServingRequestError("INVALID_ARGUMENT", f"model names must be unique; repeated: {duplicates}")
    return list(models)
