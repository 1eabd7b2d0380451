"""numpy arrays to and from ``TensorProto``, the tensor type of TF Serving's gRPC messages.

``tf.make_tensor_proto`` and ``tf.make_ndarray`` cost a few hundred microseconds per call, a large
share of a small request. The dtypes requests actually use (numbers, booleans, strings) take a
direct path here: raw bytes in ``tensor_content`` out, ``tensor_content`` or the typed ``*_val``
fields in (a short typed field is padded with its last value, as TensorFlow does). Anything else
goes through TensorFlow's own functions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlpipe import _tf_env  # noqa: F401  (TF_USE_LEGACY_KERAS must be set before TensorFlow loads)

# isort: split
from tensorflow.core.framework import tensor_pb2, types_pb2

from mlpipe.serving.status import invalid_argument

_NUMERIC: dict[int, tuple[np.dtype[Any], str]] = {
    types_pb2.DT_FLOAT: (np.dtype(np.float32), "float_val"),
    types_pb2.DT_DOUBLE: (np.dtype(np.float64), "double_val"),
    types_pb2.DT_INT32: (np.dtype(np.int32), "int_val"),
    types_pb2.DT_INT64: (np.dtype(np.int64), "int64_val"),
    types_pb2.DT_INT16: (np.dtype(np.int16), "int_val"),
    types_pb2.DT_INT8: (np.dtype(np.int8), "int_val"),
    types_pb2.DT_UINT8: (np.dtype(np.uint8), "int_val"),
    types_pb2.DT_UINT16: (np.dtype(np.uint16), "int_val"),
    types_pb2.DT_UINT32: (np.dtype(np.uint32), "uint32_val"),
    types_pb2.DT_UINT64: (np.dtype(np.uint64), "uint64_val"),
    types_pb2.DT_BOOL: (np.dtype(np.bool_), "bool_val"),
}
_DTYPE_ENUM = {numpy_dtype: enum for enum, (numpy_dtype, _) in _NUMERIC.items()}


def to_ndarray(proto: tensor_pb2.TensorProto, what: str) -> np.ndarray:
    """The array a ``TensorProto`` holds; ``what`` (e.g. "input 'x'") names it in errors."""
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if proto.tensor_shape.unknown_rank or any(size < 0 for size in shape):
        raise invalid_argument(f"{what} has an unknown shape; a request tensor needs a full shape")
    size = math.prod(shape)
    if proto.dtype == types_pb2.DT_STRING:
        return _filled(list(proto.string_val), size, shape, np.dtype(object), what)
    if proto.dtype not in _NUMERIC:
        return _via_tensorflow(proto, what)
    dtype, field = _NUMERIC[proto.dtype]
    if proto.tensor_content:
        if len(proto.tensor_content) != size * dtype.itemsize:
            raise invalid_argument(
                f"{what}: tensor_content holds {len(proto.tensor_content)} bytes, shape {list(shape)} of "
                f"{dtype} needs {size * dtype.itemsize}"
            )
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape).copy()
    return _filled(getattr(proto, field), size, shape, dtype, what)


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A ``TensorProto`` of ``array`` (strings as bytes)."""
    proto = tensor_pb2.TensorProto()
    if array.dtype == object or array.dtype.kind == "S":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel().tolist()
        )
    elif array.dtype in _DTYPE_ENUM:
        proto.dtype = _DTYPE_ENUM[array.dtype]
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    else:
        import tensorflow as tf

        return tf.make_tensor_proto(array)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


def _filled(values: Any, size: int, shape: tuple[int, ...], dtype: np.dtype, what: str) -> np.ndarray:
    count = len(values)
    if count > size or (count == 0 and size > 0 and dtype == np.dtype(object)):
        raise invalid_argument(f"{what} holds {count} values for shape {list(shape)}")
    if dtype == np.dtype(object):
        array = np.empty(size, dtype=object)
        array[:count] = list(values)
        array[count:] = values[-1] if count else b""
        return array.reshape(shape)
    array = np.zeros(size, dtype=dtype)
    if count:
        array[:count] = values
        array[count:] = values[-1]
    return array.reshape(shape)


def _via_tensorflow(proto: tensor_pb2.TensorProto, what: str) -> np.ndarray:
    import tensorflow as tf

    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as error:
        raise invalid_argument(f"{what} is not a valid TensorProto: {error}") from None
