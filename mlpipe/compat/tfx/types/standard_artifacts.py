"""``tfx.types.standard_artifacts``: mlpipe's artifact classes, which carry TFX's MLMD type names."""

from typing import Any

from mlpipe.compat.tfx.unsupported import module_getattr
from mlpipe.types import (
    Boolean,
    Bytes,
    ExampleAnomalies,
    Examples,
    ExampleStatistics,
    Float,
    HyperParameters,
    InferenceResult,
    InfraBlessing,
    Integer,
    JsonValue,
    Model,
    ModelBlessing,
    ModelEvaluation,
    ModelRun,
    PushedModel,
    Schema,
    String,
    TransformCache,
    TransformGraph,
    TunerResults,
)  # fmt: skip

__all__ = [
    "Boolean", "Bytes", "ExampleAnomalies", "ExampleStatistics", "Examples", "Float", "HyperParameters",
    "InferenceResult", "InfraBlessing", "Integer", "JsonValue", "Model", "ModelBlessing", "ModelEvaluation",
    "ModelRun", "PushedModel", "Schema", "String", "TransformCache", "TransformGraph", "TunerResults",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.types.standard_artifacts", name)
