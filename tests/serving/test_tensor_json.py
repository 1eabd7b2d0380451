"""TF Serving's JSON tensor rules (no TensorFlow needed)."""

from __future__ import annotations

import numpy as np
import pytest

from mlpipe.serving.status import ServingRequestError
from mlpipe.serving.tensor_json import (
    array_from_json,
    decode_columnar,
    decode_instances,
    encode_columns,
    encode_rows,
    to_jsonable,
)

F32, I64, U8, STRING = np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.uint8), np.dtype(object)


def test_row_format_stacks_instances():
    arrays = decode_instances(
        [{"a": [1, 2], "b": "x"}, {"a": [3, 4], "b": {"b64": "eQ=="}}], {"a": F32, "b": STRING}
    )
    assert arrays["a"].dtype == F32 and arrays["a"].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert arrays["b"].tolist() == [b"x", b"y"]
    assert decode_instances([[1, 2]], {"x": I64})["x"].shape == (1, 2)


def test_columnar_format_keeps_shapes():
    assert decode_columnar(3.5, {"x": F32})["x"].shape == ()
    assert decode_columnar({"x": [[1], [2]]}, {"x": I64})["x"].shape == (2, 1)
    assert decode_columnar({"b64": "AAE="}, {"x": STRING})["x"].tolist() == b"\x00\x01"


@pytest.mark.parametrize(
    ("value", "dtype", "message"),
    [
        ([1.5], I64, "expected integer values"),
        ([True], F32, "expected number values"),
        ([256], U8, "out of range"),
        ([-1], U8, "out of range"),
        ([[1], [2, 3]], F32, "ragged"),
        ([["a"], ["b", "c"]], STRING, "ragged"),
        (["a", ["b"]], STRING, "ragged"),
        ([1, "a"], F32, "expected number values"),
        ([True, False], np.dtype(bool), None),
        ([1, 0], np.dtype(bool), "expected true/false"),
    ],
)
def test_values_convert_strictly(value, dtype, message):
    if message is None:
        assert array_from_json(value, dtype, "x").dtype == dtype
        return
    with pytest.raises(ServingRequestError, match=message):
        array_from_json(value, dtype, "x")


def test_encoding_outputs():
    outputs = {
        "score": np.array([0.5, 0.25], np.float32),
        "id_bytes": np.array([b"\x01", b"\x02"], dtype=object),
    }
    assert encode_rows(outputs) == [
        {"score": 0.5, "id_bytes": {"b64": "AQ=="}},
        {"score": 0.25, "id_bytes": {"b64": "Ag=="}},
    ]
    assert encode_columns({"label": np.array([b"ok", b"\xff"], dtype=object)}) == ["ok", {"b64": "/w=="}]
    with pytest.raises(ServingRequestError, match="different batch sizes"):
        encode_rows({"a": np.zeros(2), "b": np.zeros(3)})


def test_request_values_become_json():
    assert to_jsonable({"x": np.arange(2), "raw": b"\x00", "n": np.float32(1.5), "t": (1, 2)}) == {
        "x": [0, 1],
        "raw": {"b64": "AA=="},
        "n": 1.5,
        "t": [1, 2],
    }
