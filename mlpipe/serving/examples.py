"""tf.Example from plain feature values, for models whose signature parses serialized examples.

TFX models serve ``serving_default`` over serialized ``tf.Example`` strings and TF Serving's
``:classify``/``:regress`` take examples as JSON objects, so both the server and the client turn
``{"feature": value}`` into ``tf.Example`` with the same rules: strings and bytes (or
``{"b64": ...}``) become ``bytes_list``; integers and booleans ``int64_list``; any float in the value
makes it a ``float_list``. A value is a scalar or a flat list; ``None`` or ``[]`` leaves the feature
out (a missing value). Send ``1.0``, not ``1``, for a float feature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mlpipe import _tf_env  # noqa: F401  (TF_USE_LEGACY_KERAS must be set before TensorFlow loads)
from mlpipe.serving.status import invalid_argument
from mlpipe.serving.tensor_json import decode_b64, is_b64

FLOAT32_MAX = 3.4028234663852886e38


def example_from_features(features: Mapping[str, Any], what: str = "example") -> Any:
    """A ``tf.train.Example`` proto from feature values; ``what`` names it in errors."""
    from tensorflow.core.example import example_pb2

    if not isinstance(features, Mapping):
        raise invalid_argument(
            f"{what} must be an object of feature name -> value, got {type(features).__name__}"
        )
    example = example_pb2.Example()
    feature_map = example.features.feature
    for name, value in features.items():
        if not isinstance(name, str):
            raise invalid_argument(f"{what}: feature names must be strings, got {name!r}")
        values = _flat_values(value, f"{what} feature {name!r}")
        if not values:
            continue
        kind = _kind(values, f"{what} feature {name!r}")
        if kind == "bytes":
            feature_map[name].bytes_list.value.extend(
                _to_bytes(v, f"{what} feature {name!r}") for v in values
            )
        elif kind == "int":
            feature_map[name].int64_list.value.extend(_int64(v, name, what) for v in values)
        else:
            feature_map[name].float_list.value.extend(_float32(v, what) for v in values)
    return example


def serialize_example(features: Mapping[str, Any]) -> bytes:
    """A serialized ``tf.Example`` from raw feature values, e.g. one taxi trip as a dict."""
    return example_from_features(features).SerializeToString()


def _flat_values(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, list | tuple):
        if any(isinstance(v, list | tuple) for v in value):
            raise invalid_argument(
                f"{what}: a feature value must be a scalar or a flat list, not nested lists"
            )
        return list(value)
    return [value]


def _kind(values: list[Any], what: str) -> str:
    if all(isinstance(v, str | bytes) or is_b64(v) for v in values):
        return "bytes"
    if all(isinstance(v, bool | int) for v in values):
        return "int"
    if all(isinstance(v, bool | int | float) for v in values):
        return "float"
    raise invalid_argument(f"{what}: values must be all strings/bytes or all numbers, got {values!r:.200}")


def _int64(value: int, name: str, what: str) -> int:
    """TF Serving's rule for integer features (``util/json_tensor.cc``, ``AddValueToFeature``)."""
    if -(2**63) <= value < 2**63:
        return int(value)
    if 0 <= value < 2**64:
        raise invalid_argument(f"Feature: {name} has uint64 element. Only int64 is supported. ({what})")
    raise invalid_argument(f"{what}: {value} is out of the int64 range of an integer feature")


def _float32(value: float, what: str) -> float:
    """A float feature value: NaN and infinities pass, finite ones beyond float32's range are an error
    (TF Serving's ``IsLosslessDecimal<float>`` on every double in an example)."""
    if isinstance(value, float) and math.isfinite(value) and abs(value) > FLOAT32_MAX:
        raise invalid_argument(
            f"{what}: Cannot convert JSON value: {value!r} to float without loss of precision."
        )
    return float(value)


def _to_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return decode_b64(value["b64"], what)
