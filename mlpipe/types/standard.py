"""The standard artifact types, with TFX's names and properties so MLMD records stay TFX-compatible."""

from __future__ import annotations

import json
from typing import Any

from mlpipe.types.artifact import Artifact, PropertyType, ValueArtifact

_SPAN_SPLITS: dict[str, PropertyType] = {"span": "INT", "split_names": "STRING"}


class Examples(Artifact):
    TYPE_NAME = "Examples"
    PROPERTIES = {"span": "INT", "version": "INT", "split_names": "STRING"}


class ExampleStatistics(Artifact):
    TYPE_NAME = "ExampleStatistics"
    PROPERTIES = dict(_SPAN_SPLITS)


class ExampleAnomalies(Artifact):
    TYPE_NAME = "ExampleAnomalies"
    PROPERTIES = dict(_SPAN_SPLITS)


class Schema(Artifact):
    TYPE_NAME = "Schema"


class TransformGraph(Artifact):
    TYPE_NAME = "TransformGraph"


class TransformCache(Artifact):
    TYPE_NAME = "TransformCache"


class Model(Artifact):
    TYPE_NAME = "Model"


class ModelRun(Artifact):
    TYPE_NAME = "ModelRun"


class ModelEvaluation(Artifact):
    TYPE_NAME = "ModelEvaluation"


class _Blessing(Artifact):
    """A verdict recorded twice, as TFX does: a custom property ``blessed`` and a marker file."""

    @property
    def blessed(self) -> bool:
        return bool(self.custom_properties.get("blessed", 0))


class ModelBlessing(_Blessing):
    TYPE_NAME = "ModelBlessing"


class InfraBlessing(_Blessing):
    TYPE_NAME = "InfraBlessing"


class PushedModel(Artifact):
    TYPE_NAME = "PushedModel"


class HyperParameters(Artifact):
    TYPE_NAME = "HyperParameters"


class TunerResults(Artifact):
    TYPE_NAME = "TunerResults"


class InferenceResult(Artifact):
    TYPE_NAME = "InferenceResult"


class String(ValueArtifact):
    TYPE_NAME = "String"


class Integer(ValueArtifact):
    TYPE_NAME = "Integer"

    def _decode(self, data: bytes) -> int:
        return int(data.decode())


class Float(ValueArtifact):
    TYPE_NAME = "Float"

    def _encode(self, value: Any) -> bytes:
        return repr(float(value)).encode()

    def _decode(self, data: bytes) -> float:
        return float(data.decode())


class Boolean(ValueArtifact):
    TYPE_NAME = "Boolean"

    def _encode(self, value: Any) -> bytes:
        return b"1" if value else b"0"

    def _decode(self, data: bytes) -> bool:
        return data.strip() in (b"1", b"true", b"True")


class Bytes(ValueArtifact):
    TYPE_NAME = "Bytes"

    def _encode(self, value: Any) -> bytes:
        return bytes(value)

    def _decode(self, data: bytes) -> bytes:
        return data


class JsonValue(ValueArtifact):
    TYPE_NAME = "JsonValue"

    def _encode(self, value: Any) -> bytes:
        return json.dumps(value, sort_keys=True).encode()

    def _decode(self, data: bytes) -> Any:
        return json.loads(data)


STANDARD_TYPES: tuple[type[Artifact], ...] = (
    Examples, ExampleStatistics, ExampleAnomalies, Schema, TransformGraph, TransformCache, Model,
    ModelRun, ModelEvaluation, ModelBlessing, InfraBlessing, PushedModel, HyperParameters,
    TunerResults, InferenceResult, String, Integer, Float, Boolean, Bytes, JsonValue,
)  # fmt: skip
