"""Which models a server serves: ``models.config`` read and written as TF Serving's own proto.

The file is a text-format ``tensorflow.serving.ModelServerConfig``. It is parsed and printed with
the tensorflow-serving-api protos and ``google.protobuf.text_format`` (never string templates), so a
file mlpipe writes is one ``tensorflow_model_server --model_config_file`` accepts, and the reverse.
Inside mlpipe a model is a :class:`ServedModel` value; the proto stays at the file boundary.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.config.file_system_storage_path_source_pb2 import FileSystemStoragePathSourceConfig

from mlpipe.errors import ServingError
from mlpipe.io.uris import is_remote

PLATFORM = "tensorflow"
# The one log collector of the built-in server: TFRecord files of PredictionLog (open-source TF Serving
# registers no collector of its own; this name is what mlpipe writes and accepts, besides empty).
LOG_COLLECTOR_TYPE = "tfrecord"
_LABEL = re.compile(r"[a-zA-Z0-9_]+")
_MODEL_NAME = re.compile(r"[^/:\s]+")


@dataclass(frozen=True)
class VersionPolicy:
    """Which of the versions found on disk are served (TF Serving's ``ServableVersionPolicy``).

    ``latest`` serves the ``num_versions`` highest versions, ``all`` every version, ``specific``
    exactly ``versions`` (those present on disk).
    """

    kind: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("latest", "all", "specific"):
            raise ServingError(f"version policy {self.kind!r} is unknown; use latest, all or specific")
        if self.kind == "latest" and self.num_versions < 1:
            raise ServingError(f"version policy latest needs num_versions >= 1, got {self.num_versions}")
        if self.kind == "specific" and not self.versions:
            raise ServingError("version policy specific needs at least one version")

    @classmethod
    def latest(cls, num_versions: int = 1) -> VersionPolicy:
        return cls("latest", num_versions=num_versions)

    @classmethod
    def all(cls) -> VersionPolicy:
        return cls("all")

    @classmethod
    def specific(cls, *versions: int) -> VersionPolicy:
        return cls("specific", versions=tuple(sorted(set(versions))))

    def select(self, on_disk: Iterable[int]) -> set[int]:
        """The versions to serve out of those present on disk."""
        present = sorted(set(on_disk))
        if self.kind == "latest":
            return set(present[-self.num_versions :])
        if self.kind == "all":
            return set(present)
        return set(present) & set(self.versions)


@dataclass(frozen=True)
class RequestLogging:
    """TF Serving's ``logging_config`` of one model: which share of requests to log, and where.

    ``filename_prefix`` is the path prefix of the log files (``<prefix>-<time>-<pid>-<n>.tfrecord``,
    each a TFRecord file of ``tensorflow.serving.PredictionLog``); ``sampling_rate`` is the share of
    requests logged, 0 to 1 (TF Serving logs none at 0).
    """

    filename_prefix: str
    sampling_rate: float

    def __post_init__(self) -> None:
        if not self.filename_prefix:
            raise ServingError("logging_config needs log_collector_config.filename_prefix (where logs go)")
        if not 0.0 <= self.sampling_rate <= 1.0:
            raise ServingError(
                f"logging_config sampling_rate must be between 0 and 1, got {self.sampling_rate}"
            )


@dataclass(frozen=True)
class ServedModel:
    """One model of the server: its name in requests and the directory holding its versions.

    ``base_path`` is TF Serving's ``base_path``: the directory whose integer-named children are the
    versions (``<base>/<model_name>`` in mlpipe's push layout), not the directory above it.
    """

    name: str
    base_path: str
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    version_labels: Mapping[str, int] = field(default_factory=dict)
    logging: RequestLogging | None = None

    def __post_init__(self) -> None:
        if not _MODEL_NAME.fullmatch(self.name or ""):
            raise ServingError(
                f"model name {self.name!r} cannot be used in request paths; use a non-empty name "
                "without '/', ':' or spaces"
            )
        if not self.base_path:
            raise ServingError(
                f"model {self.name!r} has an empty base_path; give the model's version directory"
            )
        for label, version in self.version_labels.items():
            if not _LABEL.fullmatch(label):
                raise ServingError(f"model {self.name!r}: version label {label!r} must match [a-zA-Z0-9_]+")
            if not isinstance(version, int) or version < 0:
                raise ServingError(
                    f"model {self.name!r}: label {label!r} must name a version >= 0, got {version!r}"
                )


def models_from_proto(config: model_server_config_pb2.ModelServerConfig) -> list[ServedModel]:
    """``ServedModel`` values from a ``ModelServerConfig`` proto (as read from a file or a reload RPC)."""
    if config.WhichOneof("config") == "custom_model_config":
        raise ServingError("custom_model_config is not supported; use model_config_list")
    models: list[ServedModel] = []
    seen: set[str] = set()
    for entry in config.model_config_list.config:
        if entry.model_platform not in ("", PLATFORM):
            raise ServingError(
                f"model {entry.name!r}: model_platform {entry.model_platform!r} is not supported; "
                f"use {PLATFORM!r}"
            )
        if entry.name in seen:
            raise ServingError(
                f"model {entry.name!r} appears twice in model_config_list; names must be unique"
            )
        seen.add(entry.name)
        models.append(
            ServedModel(
                name=entry.name,
                base_path=entry.base_path,
                version_policy=_policy_from_proto(entry.model_version_policy),
                version_labels=dict(entry.version_labels),
                logging=_logging_from_proto(entry),
            )
        )
    return models


def models_to_proto(models: Sequence[ServedModel]) -> model_server_config_pb2.ModelServerConfig:
    """A ``ModelServerConfig`` proto for ``models``, with absolute base paths."""
    config = model_server_config_pb2.ModelServerConfig()
    config_list = config.model_config_list
    for model in models:
        entry = config_list.config.add()
        entry.name = model.name
        entry.base_path = model.base_path if is_remote(model.base_path) else os.path.abspath(model.base_path)
        entry.model_platform = PLATFORM
        policy = entry.model_version_policy
        if model.version_policy.kind == "latest":
            policy.latest.num_versions = model.version_policy.num_versions
        elif model.version_policy.kind == "all":
            policy.all.SetInParent()
        else:
            policy.specific.versions.extend(model.version_policy.versions)
        for label, version in sorted(model.version_labels.items()):
            entry.version_labels[label] = version
        if model.logging is not None:
            entry.logging_config.log_collector_config.type = LOG_COLLECTOR_TYPE
            entry.logging_config.log_collector_config.filename_prefix = model.logging.filename_prefix
            entry.logging_config.sampling_config.sampling_rate = model.logging.sampling_rate
    return config


def parse_model_config(text: str, source: str = "<string>") -> list[ServedModel]:
    """Models from the text of a ``models.config`` file; ``source`` names it in error messages."""
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ServingError(
            f"{source}: not a text-format tensorflow.serving.ModelServerConfig: {error}"
        ) from None
    try:
        return models_from_proto(config)
    except ServingError as error:
        raise ServingError(f"{source}: {error}") from None


def format_model_config(models: Sequence[ServedModel]) -> str:
    """The text of a ``models.config`` file serving ``models``."""
    return text_format.MessageToString(models_to_proto(models))


def read_model_config(path: str | os.PathLike[str]) -> list[ServedModel]:
    """Models from a ``models.config`` file, as ``tensorflow_model_server --model_config_file`` reads it."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as error:
        raise ServingError(f"cannot read model config file {os.fspath(path)!r}: {error.strerror}") from None
    return parse_model_config(text, source=os.fspath(path))


def write_model_config(models: Sequence[ServedModel], path: str | os.PathLike[str]) -> None:
    """Write ``models.config`` atomically, so a server reloading it never reads half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".models.config-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(format_model_config(models))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _logging_from_proto(entry: model_server_config_pb2.ModelConfig) -> RequestLogging | None:
    if not entry.HasField("logging_config"):
        return None
    collector = entry.logging_config.log_collector_config
    if collector.type not in ("", LOG_COLLECTOR_TYPE):
        raise ServingError(
            f"model {entry.name!r}: log_collector_config type {collector.type!r} is not supported; use "
            f"{LOG_COLLECTOR_TYPE!r} (PredictionLog TFRecord files at filename_prefix)"
        )
    try:
        return RequestLogging(collector.filename_prefix, entry.logging_config.sampling_config.sampling_rate)
    except ServingError as error:
        raise ServingError(f"model {entry.name!r}: {error}") from None


def _policy_from_proto(policy: FileSystemStoragePathSourceConfig.ServableVersionPolicy) -> VersionPolicy:
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return VersionPolicy.all()
    if choice == "specific":
        return VersionPolicy.specific(*policy.specific.versions)
    if choice == "latest" and policy.latest.num_versions:
        return VersionPolicy.latest(policy.latest.num_versions)
    return VersionPolicy.latest()
