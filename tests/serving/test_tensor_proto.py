"""numpy <-> TensorProto for gRPC, checked against TensorFlow's own conversions."""

from __future__ import annotations

import numpy as np
import pytest

from mlpipe.serving.status import ServingRequestError


def to_ndarray(proto, what):
    from mlpipe.serving.tensor_proto import to_ndarray as convert  # imports TensorFlow: not at collection

    return convert(proto, what)


def to_tensor_proto(array):
    from mlpipe.serving.tensor_proto import to_tensor_proto as convert

    return convert(array)


ARRAYS = [
    np.array([[1.5, -2.0], [3.25, 0.0]], np.float32),
    np.arange(6, dtype=np.float64).reshape(3, 2),
    np.array([1, -2, 3], np.int32),
    np.array([[2**40]], np.int64),
    np.array([0, 255], np.uint8),
    np.array([True, False]),
    np.array([b"a", b"\xff\x00", b""], dtype=object),
    np.array(7.0, np.float32),
    np.zeros((0, 3), np.float32),
    np.array([1.0, 2.0], np.float16),  # no fast path: TensorFlow converts it
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_round_trips_and_agrees_with_tensorflow(array):
    import tensorflow as tf

    proto = to_tensor_proto(array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
    back = to_ndarray(tf.make_tensor_proto(array), "input 'x'")
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_typed_value_fields_are_padded_with_the_last_value():
    import tensorflow as tf

    proto = tf.make_tensor_proto(0.0, shape=[2, 2])
    proto.ClearField("float_val")
    proto.float_val.extend([1.0, 2.0])
    np.testing.assert_array_equal(to_ndarray(proto, "input 'x'"), [[1.0, 2.0], [2.0, 2.0]])
    np.testing.assert_array_equal(to_ndarray(proto, "input 'x'"), tf.make_ndarray(proto))


def test_malformed_tensors_are_invalid_arguments():
    proto = to_tensor_proto(np.zeros((2, 2), np.float32))
    proto.tensor_content = proto.tensor_content[:-4]
    with pytest.raises(ServingRequestError, match="input 'x': tensor_content holds 12 bytes"):
        to_ndarray(proto, "input 'x'")
    proto.tensor_shape.dim[0].size = -1
    with pytest.raises(ServingRequestError, match="unknown shape"):
        to_ndarray(proto, "input 'x'")
