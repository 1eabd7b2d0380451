"""Serialized ``PredictionLog`` records built from a batch of model outputs, without protobuf per row.

BulkInferrer's in-process path logs what tfx_bsl's RunInference logs for a ``predict`` signature
(``_PredictModelHandler._post_process``): for each example a ``PredictionLog`` whose
``predict_log.request`` holds the serialized example as a DT_STRING tensor of shape [1] under the
signature's input alias, and whose ``predict_log.response.outputs[alias]`` is row i of each output
as ``tf.make_tensor_proto`` makes it (shape [1] + the row's shape), both with the signature's name
in ``model_spec``. tfx_bsl builds these with protobuf messages and ``make_tensor_proto`` row by row
(~37 us a row for the one-output taxi model); here the wire bytes are put together a batch at
a time (~1.5 us a row): the parts that are the same for every row once, the lengths and their
varints in numpy, each output's rows as one matrix, the pieces joined row-wise by Arrow. Output
kinds this fast path does not cover (strings, integers held in varints, empty rows) go through
``make_tensor_proto`` per row, as tfx_bsl does. The records parse equal to
tfx_bsl's (tests/components/test_bulk_inferrer_streaming.py compares them); field order within a
message may differ, which protobuf parsing ignores.

Nothing here imports TensorFlow unless the per-row fallback is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlpipe.io.wire import binary_offsets, varint_array, varint_bytes, varint_sizes

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


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint_bytes(number << 3 | 2) + varint_bytes(len(payload)) + payload


def _shape(dims: tuple[int, ...]) -> bytes:
    """TensorShapeProto: one ``dim { size }`` (field 2, size field 1) per dimension."""
    return b"".join(_field(2, b"\x08" + varint_bytes(d)) for d in dims)


def _tensor_header(dtype_enum: int, dims: tuple[int, ...]) -> bytes:
    """TensorProto's dtype (field 1) and tensor_shape (field 2)."""
    return b"\x08" + varint_bytes(dtype_enum) + _field(2, _shape(dims))


def _map_entry_prefix(key: str, value_length: int) -> bytes:
    """A map<string, TensorProto> entry up to its value's bytes: key (1), then value (2)'s tag+length."""
    return _field(1, key.encode()) + b"\x12" + varint_bytes(value_length)


class PredictLogEncoder:
    """Encodes batches for one predict signature: its input alias, name and output aliases."""

    def __init__(self, input_alias: str, signature_name: str):
        model_spec = _field(3, signature_name.encode())  # ModelSpec.signature_name
        self.request_head = _field(1, model_spec) + b"\x12"  # PredictRequest.model_spec, inputs (2)
        self.entry_head = _field(1, input_alias.encode()) + b"\x12"  # the inputs entry's key, value (2)
        self.tensor_head = _tensor_header(DT_STRING, (1,)) + b"\x42"  # dtype, shape [1], string_val (8)
        self.response_tail = _field(2, model_spec)  # PredictResponse.model_spec, after outputs (1)

    def encode(self, serialized_examples: list[bytes], outputs: Mapping[str, np.ndarray]) -> list[bytes]:
        """One serialized PredictionLog per example, in order; ``outputs`` are the signature's
        outputs for the batch (first dimension = batch size, as tfx_bsl requires). Built a column
        at a time: the lengths (and their varints) in numpy, the pieces joined row-wise by Arrow."""
        import pyarrow as pa

        batch = len(serialized_examples)
        for alias, output in outputs.items():
            if output.ndim < 1 or output.shape[0] != batch:
                raise ValueError(
                    f"output {alias!r} of shape {output.shape} does not have the batch size {batch} "
                    "as its first dimension"
                )
        if not outputs:
            raise ValueError("a predict signature without outputs")
        if not batch:
            return []
        examples = pa.array(serialized_examples, pa.binary())
        responses = _join(
            [*(_output_entries(alias, output) for alias, output in outputs.items()), self.response_tail]
        )
        example_length = np.diff(binary_offsets(examples))
        tensor_length = len(self.tensor_head) + varint_sizes(example_length) + example_length
        entry_length = len(self.entry_head) + varint_sizes(tensor_length) + tensor_length
        request_length = len(self.request_head) + varint_sizes(entry_length) + entry_length
        response_length = np.diff(binary_offsets(responses))
        log_length = (
            2
            + varint_sizes(request_length)
            + request_length
            + varint_sizes(response_length)
            + response_length
        )
        columns = [
            b"\x32", varint_array(log_length),  # PredictionLog.predict_log (6)
            b"\x0a", varint_array(request_length), self.request_head,  # PredictLog.request (1)
            varint_array(entry_length), self.entry_head,
            varint_array(tensor_length), self.tensor_head,
            varint_array(example_length), examples,
            b"\x12", varint_array(response_length), responses,  # PredictLog.response (2)
        ]  # fmt: skip
        logs: list[bytes] = _join(columns).to_pylist()
        return logs


def _join(columns: list[Any]) -> Any:
    """Row-wise concatenation of binary arrays and constant bytes (at least one array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    merged: list[Any] = []
    for column in columns:  # neighbouring constants become one
        if isinstance(column, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += column
        else:
            merged.append(column)
    if len(merged) == 1:
        return merged[0]
    parts = [pa.scalar(c, pa.binary()) if isinstance(c, bytes) else c for c in merged]
    return pc.binary_join_element_wise(*parts, b"", null_handling="replace", null_replacement=b"")


def _output_entries(alias: str, output: np.ndarray) -> Any:
    """For each row of ``output``, the response's ``outputs`` map entry (field 1, with its tag),
    as a binary array."""
    import pyarrow as pa

    batch = output.shape[0]
    dtype = output.dtype.newbyteorder("<") if output.dtype.byteorder == ">" else output.dtype
    row_size = int(np.prod(output.shape[1:], dtype=np.int64))
    fast = dtype in _DT and ((row_size > 1 and dtype in _CONTENT) or (row_size == 1 and dtype in _SINGLE))
    if not fast:
        return pa.array([_field(1, _entry(alias, t)) for t in _fallback(output)], pa.binary())
    values = np.ascontiguousarray(output, dtype=dtype.newbyteorder("<")).view(np.uint8).reshape(batch, -1)
    width = values.shape[1]
    field = 4 if row_size > 1 else _SINGLE[dtype]  # tensor_content, or float_val / double_val
    tensor_head = (
        _tensor_header(_DT[dtype], (1, *output.shape[1:])) + bytes([field << 3 | 2]) + varint_bytes(width)
    )
    entry_head = _map_entry_prefix(alias, len(tensor_head) + width)
    head = b"\x0a" + varint_bytes(len(entry_head) + len(tensor_head) + width) + entry_head + tensor_head
    rows = np.empty((batch, len(head) + width), dtype=np.uint8)
    rows[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    rows[:, len(head) :] = values
    offsets = np.arange(batch + 1, dtype=np.int32) * rows.shape[1]
    return pa.Array.from_buffers(
        pa.binary(), batch, [None, pa.py_buffer(offsets), pa.py_buffer(rows.tobytes())]
    )


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
