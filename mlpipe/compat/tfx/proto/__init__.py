"""``tfx.proto``: the configuration messages TFX pipelines build, as real protobuf messages.

Field names and numbers are TFX's, so ``json_format.MessageToJson`` and text format read and
write the same forms TFX users have. Components take them (or the equivalent dicts) and keep
them in the pipeline IR as JSON.
"""

from typing import Any

from google.protobuf import json_format

from mlpipe.compat.tfx.proto.bulk_inferrer_pb2 import (
    ClassifyOutput,
    DataSpec,
    ModelSpec,
    OutputColumnsSpec,
    OutputExampleSpec,
    PredictOutput,
    PredictOutputCol,
    RegressOutput,
)  # fmt: skip
from mlpipe.compat.tfx.proto.example_gen_pb2 import CustomConfig, Input, Output, PayloadFormat, SplitConfig
from mlpipe.compat.tfx.proto.infra_validator_pb2 import (
    KubernetesConfig,
    LocalDockerConfig,
    RequestSpec,
    ServingSpec,
    TensorFlowServing,
    TensorFlowServingRequestSpec,
    ValidationSpec,
)  # fmt: skip
from mlpipe.compat.tfx.proto.pusher_pb2 import PushDestination, Versioning
from mlpipe.compat.tfx.proto.range_config_pb2 import RangeConfig, RollingRange, StaticRange
from mlpipe.compat.tfx.proto.trainer_pb2 import EvalArgs, TrainArgs
from mlpipe.compat.tfx.proto.transform_pb2 import SplitsConfig
from mlpipe.compat.tfx.proto.tuner_pb2 import TuneArgs
from mlpipe.compat.tfx.unsupported import module_getattr

Filesystem = PushDestination.Filesystem

__all__ = [
    "ClassifyOutput", "CustomConfig", "DataSpec", "EvalArgs", "Filesystem", "Input", "KubernetesConfig",
    "LocalDockerConfig", "ModelSpec", "Output", "OutputColumnsSpec", "OutputExampleSpec", "PayloadFormat",
    "PredictOutput", "PredictOutputCol", "PushDestination", "RangeConfig", "RegressOutput", "RequestSpec",
    "RollingRange", "ServingSpec", "SplitConfig", "SplitsConfig", "StaticRange", "TensorFlowServing",
    "TensorFlowServingRequestSpec", "TrainArgs", "TuneArgs", "ValidationSpec", "Versioning", "to_dict",
]  # fmt: skip


def to_dict(value: Any) -> Any:
    """A proto message as the JSON dict mlpipe components take (TFX's field names); dicts, None and
    other values unchanged."""
    if hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    return value


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.proto", name)
