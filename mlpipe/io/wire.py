"""Pieces of the protobuf wire format and of Arrow binary arrays, computed for many values at once.

ExampleGen writes tf.Examples (:mod:`mlpipe.io.examples`) and BulkInferrer PredictionLogs
(:mod:`mlpipe.io.prediction_logs`) as bytes put together a batch at a time; both need varints of
many lengths, and binary arrays built from or read as numpy buffers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def varint_bytes(value: int) -> bytes:
    """The protobuf varint of a non-negative ``value``."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes in each value's varint, 1 to 10 (values non-negative, or uint64)."""
    import numpy as np

    values = values.astype(np.uint64, copy=False)
    sizes = np.ones(len(values), np.int64)
    top = values.max() if len(values) else 0
    for bits in range(7, 64, 7):
        limit = np.uint64(1) << np.uint64(bits)
        if top < limit:
            break
        sizes += values >= limit
    return sizes


def varint_block(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints of non-negative values (or int64 viewed as uint64: a negative one takes
    10 bytes), one per row of a matrix as wide as the longest, and each one's size."""
    import numpy as np

    values = values.astype(np.uint64, copy=False)
    sizes = varint_sizes(values)
    width = int(sizes.max()) if len(sizes) else 0
    block = np.empty((len(values), width), np.uint8)
    for i in range(width):
        rest = values >> np.uint64(7 * i) if i else values
        block[:, i] = rest  # the low 8 bits: bit 7 is set below where more bytes follow
        if i + 1 < width:
            block[:, i] |= (rest > 0x7F).view(np.uint8) << np.uint8(7)
    return block, sizes


def binary_offsets(array: pa.Array) -> np.ndarray:
    """The n + 1 value offsets of a binary or large_binary array (pyarrow 10 has no ``.offsets``
    for them)."""
    import numpy as np
    import pyarrow as pa

    kind = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    return np.frombuffer(array.buffers()[1], dtype=kind)[array.offset : array.offset + len(array) + 1]


def fixed_width_array(rows: np.ndarray, kind: pa.DataType) -> pa.Array:
    """A binary or large_binary (``kind``) array with one row of ``rows`` (an (n, width) uint8
    matrix) per element."""
    import numpy as np
    import pyarrow as pa

    n, width = rows.shape
    offset = "<i8" if pa.types.is_large_binary(kind) else "<i4"
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int64) * width).astype(offset).tobytes())
    return pa.Array.from_buffers(kind, n, [None, offsets, pa.py_buffer(rows.tobytes())])


def varint_array(values: np.ndarray) -> pa.Array:
    """The varints of non-negative ``values`` as a binary array, one element per value."""
    import numpy as np
    import pyarrow as pa

    block, sizes = varint_block(values)
    data = block[np.arange(block.shape[1]) < sizes[:, None]]  # row-major: each row's bytes in order
    offsets = np.zeros(len(sizes) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), len(sizes), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
