"""Serialized ``PredictionLog`` records built from a batch of model outputs, without protobuf per row.

BulkInferrer's in-process path logs what tfx_bsl's RunInference logs for a ``predict`` signature
(``_PredictModelHandler._post_process``): for each example a ``PredictionLog`` whose
``predict_log.request`` holds the serialized example as a DT_STRING tensor of shape [1] under the
signature's input alias, and whose ``predict_log.response.outputs[alias]`` is row i of each output
as ``tf.make_tensor_proto`` makes it (shape [1] + the row's shape), both with the signature's name
in ``model_spec``. tfx_bsl builds these with protobuf messages and ``make_tensor_proto`` row by row
(~60 us a row for the one-output taxi model); here the wire bytes are put together directly: the
parts that are the same for every row once, each row's output values sliced from one ``tobytes``
of the batch. Output kinds this fast path does not cover (strings, integers held in varints, empty
rows) go through ``make_tensor_proto`` per row, as tfx_bsl does. The records parse equal to
tfx_bsl's (tests/components/test_bulk_inferrer_streaming.py compares them); field order within a
message may differ, which protobuf parsing ignores.

Nothing here imports TensorFlow unless the per-row fallback is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# tensorflow/core/framework/types.proto
_DT = {
    np.dtype("float32"): 1,
    np.dtype("float64"): 2,
    np.dtype("int32"): 3,
    np.dtype("uint8"): 4,
    np.dtype("int16"): 5,
    np.dtype("int8"): 6,
    np.dtype("int64"): 9,
    np.dtype("uint16"): 17,
    np.dtype("float16"): 19,
}
# make_tensor_proto's tensor_content types (tensor_util._TENSOR_CONTENT_TYPES) among _DT: a row of
# more than one value is its raw little-endian bytes in TensorProto.tensor_content (field 4).
_CONTENT = {
    np.dtype(t) for t in ("float16", "float32", "float64", "int32", "uint8", "int16", "int8", "int64")
}
# a row of one value: packed float_val (field 5) or double_val (field 6), fixed width
_SINGLE = {np.dtype("float32"): 5, np.dtype("float64"): 6}
DT_STRING = 7


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _shape(dims: tuple[int, ...]) -> bytes:
    """TensorShapeProto: one ``dim { size }`` (field 2, size field 1) per dimension."""
    return b"".join(_field(2, b"\x08" + _varint(d)) for d in dims)


def _tensor_header(dtype_enum: int, dims: tuple[int, ...]) -> bytes:
    """TensorProto's dtype (field 1) and tensor_shape (field 2)."""
    return b"\x08" + _varint(dtype_enum) + _field(2, _shape(dims))


def _map_entry_prefix(key: str, value_length: int) -> bytes:
    """A map<string, TensorProto> entry up to its value's bytes: key (1), then value (2)'s tag+length."""
    return _field(1, key.encode()) + b"\x12" + _varint(value_length)


class PredictLogEncoder:
    """Encodes batches for one predict signature: its input alias, name and output aliases."""

    def __init__(self, input_alias: str, signature_name: str):
        self.model_spec = _field(3, signature_name.encode())  # ModelSpec.signature_name
        self.input_prefix = _field(1, input_alias.encode())  # the inputs entry's key
        self.input_header = _tensor_header(DT_STRING, (1,))

    def encode(self, serialized_examples: list[bytes], outputs: Mapping[str, np.ndarray]) -> list[bytes]:
        """One serialized PredictionLog per example, in order; ``outputs`` are the signature's
        outputs for the batch (first dimension = batch size, as tfx_bsl requires)."""
        batch = len(serialized_examples)
        for alias, output in outputs.items():
            if output.ndim < 1 or output.shape[0] != batch:
                raise ValueError(
                    f"output {alias!r} of shape {output.shape} does not have the batch size {batch} "
                    "as its first dimension"
                )
        # PredictResponse: outputs map entries (field 1), then model_spec (field 2)
        responses = [b""] * batch
        for alias, output in outputs.items():
            entries = _output_entries(alias, output)
            responses = [r + e for r, e in zip(responses, entries, strict=True)]
        response_tail = _field(2, self.model_spec)
        request_head = _field(1, self.model_spec)  # PredictRequest.model_spec, then inputs (field 2)
        header, prefix = self.input_header, self.input_prefix
        logs = []
        for example, response in zip(serialized_examples, responses, strict=True):
            tensor = header + b"\x42" + _varint(len(example)) + example  # string_val (8)
            entry = prefix + b"\x12" + _varint(len(tensor)) + tensor
            request = request_head + b"\x12" + _varint(len(entry)) + entry
            response = response + response_tail
            predict_log = (
                b"\x0a" + _varint(len(request)) + request + b"\x12" + _varint(len(response)) + response
            )
            logs.append(b"\x32" + _varint(len(predict_log)) + predict_log)  # PredictionLog.predict_log (6)
        return logs


def _output_entries(alias: str, output: np.ndarray) -> list[bytes]:
    """For each row of ``output``, the response's ``outputs`` map entry (field 1, with its tag)."""
    batch = output.shape[0]
    dtype = output.dtype.newbyteorder("<") if output.dtype.byteorder == ">" else output.dtype
    row_size = int(np.prod(output.shape[1:], dtype=np.int64))
    fast = dtype in _DT and ((row_size > 1 and dtype in _CONTENT) or (row_size == 1 and dtype in _SINGLE))
    if not fast:
        return [_field(1, _entry(alias, t)) for t in _fallback(output)]
    values = np.ascontiguousarray(output, dtype=dtype.newbyteorder("<")).tobytes()
    width = row_size * dtype.itemsize
    field = 4 if row_size > 1 else _SINGLE[dtype]  # tensor_content, or float_val / double_val
    tensor_head = (
        _tensor_header(_DT[dtype], (1, *output.shape[1:])) + bytes([field << 3 | 2]) + _varint(width)
    )
    entry_head = _map_entry_prefix(alias, len(tensor_head) + width)
    head = b"\x0a" + _varint(len(entry_head) + len(tensor_head) + width) + entry_head + tensor_head
    return [head + values[i * width : (i + 1) * width] for i in range(batch)]


def _entry(alias: str, tensor: bytes) -> bytes:
    return _map_entry_prefix(alias, len(tensor)) + tensor


def _fallback(output: np.ndarray) -> list[bytes]:
    """Each row's TensorProto as tfx_bsl makes it (``make_tensor_proto``, row by row; a [n] string
    output, on which tfx_bsl fails, gives shape [1] tensors)."""
    import tensorflow as tf

    protos: list[bytes] = []
    for i in range(output.shape[0]):
        values: Any = np.asarray(output[i], dtype=output.dtype)  # a row of [n] strings is bytes: an array
        proto = tf.make_tensor_proto(
            values=values,
            dtype=tf.as_dtype(values.dtype).as_datatype_enum,
            shape=np.expand_dims(values, axis=0).shape,
        )
        protos.append(proto.SerializeToString())
    return protos
