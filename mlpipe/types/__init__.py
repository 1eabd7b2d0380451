"""Artifact types and channels (the vocabulary shared by definitions, runners and storage)."""

from mlpipe.types.artifact import Artifact, ValueArtifact
from mlpipe.types.channel import Channel
from mlpipe.types.standard import (
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
)

__all__ = [
    "Artifact", "ValueArtifact", "Channel", "Boolean", "Bytes", "ExampleAnomalies", "Examples",
    "ExampleStatistics", "Float", "HyperParameters", "InferenceResult", "InfraBlessing", "Integer",
    "JsonValue", "Model", "ModelBlessing", "ModelEvaluation", "ModelRun", "PushedModel", "Schema",
    "String", "TransformCache", "TransformGraph", "TunerResults",
]  # fmt: skip
