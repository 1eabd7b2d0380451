"""Artifact <-> MLMD proto conversion (TFX-compatible property encoding)."""

from __future__ import annotations

import functools
from typing import Any

from mlpipe.types.artifact import Artifact
from mlpipe.types.standard import STANDARD_TYPES

_STANDARD = {t.TYPE_NAME: t for t in STANDARD_TYPES}


def set_value(value_proto: Any, value: Any) -> None:
    """Write a Python value into an MLMD ``Value`` (bool as int, like TFX)."""
    if isinstance(value, bool):
        value_proto.int_value = int(value)
    elif isinstance(value, int):
        value_proto.int_value = value
    elif isinstance(value, float):
        value_proto.double_value = value
    else:
        value_proto.string_value = str(value)


def get_value(value_proto: Any) -> Any:
    kind = value_proto.WhichOneof("value")
    return getattr(value_proto, kind) if kind else None


def artifact_to_proto(artifact: Artifact, type_id: int) -> Any:
    from ml_metadata.proto import metadata_store_pb2

    proto = metadata_store_pb2.Artifact(type_id=type_id, uri=artifact.uri)
    if artifact.id is not None:
        proto.id = artifact.id
    proto.state = metadata_store_pb2.Artifact.State.Value(artifact.state)
    for k, v in artifact.properties.items():
        set_value(proto.properties[k], v)
    for k, v in artifact.custom_properties.items():
        set_value(proto.custom_properties[k], v)
    return proto


@functools.cache
def _generic_class(type_name: str, properties: tuple[tuple[str, str], ...]) -> type[Artifact]:
    """A stand-in class for a type recorded by code this process cannot import (e.g. a custom type)."""
    return type(type_name, (Artifact,), {"TYPE_NAME": type_name, "PROPERTIES": dict(properties)})


def artifact_from_proto(proto: Any, type_proto: Any, cls: type[Artifact] | None = None) -> Artifact:
    """Rebuild an Artifact of ``cls`` (or the standard/stand-in class for the type's name)."""
    from ml_metadata.proto import metadata_store_pb2

    if cls is None:
        cls = _STANDARD.get(type_proto.name)
        if cls is None:
            props = tuple(
                sorted(
                    (k, metadata_store_pb2.PropertyType.Name(v))
                    for k, v in type_proto.properties.items()
                    if v in (metadata_store_pb2.INT, metadata_store_pb2.DOUBLE, metadata_store_pb2.STRING)
                )
            )
            cls = _generic_class(type_proto.name, props)
    artifact = cls(uri=proto.uri, id=proto.id, state=metadata_store_pb2.Artifact.State.Name(proto.state))
    for k, v in proto.properties.items():
        if k in cls.PROPERTIES:
            artifact.properties[k] = get_value(v)
    for k, v in proto.custom_properties.items():
        artifact.custom_properties[k] = get_value(v)
    return artifact
