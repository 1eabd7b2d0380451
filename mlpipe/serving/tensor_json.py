"""TF Serving's JSON tensor encoding: request ``instances``/``inputs`` to arrays, outputs back to JSON.

The rules are TF Serving's REST API rules, so a request body that works here works against the real
server: row format (``instances``, one entry per example, stacked on a new first dimension) and
columnar format (``inputs``); bytes as ``{"b64": "..."}``; one output answers bare values, several
answer objects keyed by output name; string outputs whose name ends in ``_bytes`` answer base64.
Values are converted to the signature's dtype strictly: a string never becomes a number, a float
never becomes an integer. Nothing here imports TensorFlow; the gRPC client reuses it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlpipe.serving.status import invalid_argument

Tensors = dict[str, np.ndarray]
STRING = np.dtype(object)
MAX_RANK = 32  # numpy's limit on dimensions


def is_b64(value: Any) -> bool:
    """Whether a JSON value is a ``{"b64": ...}`` bytes object."""
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def decode_instances(instances: Any, dtypes: Mapping[str, np.dtype]) -> Tensors:
    """Arrays from a row-format ``instances`` list, for a signature with input ``dtypes``."""
    if not isinstance(instances, list):
        raise invalid_argument("'instances' must be a JSON list, one entry per example")
    if not instances:
        raise invalid_argument("'instances' is an empty list; send at least one example")
    named = [isinstance(item, dict) and not is_b64(item) for item in instances]
    if all(named):
        for index, item in enumerate(instances):
            _check_names(item.keys(), dtypes, f"instances[{index}]")
        return {
            name: array_from_json([item[name] for item in instances], dtype, f"'instances' input {name!r}")
            for name, dtype in dtypes.items()
        }
    if any(named):
        raise invalid_argument("'instances' mixes objects and plain values; use one form for every example")
    if len(dtypes) != 1:
        raise invalid_argument(
            f"the signature has {len(dtypes)} inputs ({', '.join(sorted(dtypes))}); each of 'instances' "
            "must be an object naming them"
        )
    ((name, dtype),) = dtypes.items()
    return {name: array_from_json(instances, dtype, f"'instances' input {name!r}")}


def decode_columnar(inputs: Any, dtypes: Mapping[str, np.dtype]) -> Tensors:
    """Arrays from a columnar-format ``inputs`` value, for a signature with input ``dtypes``."""
    if isinstance(inputs, dict) and not is_b64(inputs):
        _check_names(inputs.keys(), dtypes, "'inputs'")
        return {
            name: array_from_json(inputs[name], dtype, f"'inputs' input {name!r}")
            for name, dtype in dtypes.items()
        }
    if len(dtypes) != 1:
        raise invalid_argument(
            f"the signature has {len(dtypes)} inputs ({', '.join(sorted(dtypes))}); 'inputs' must be an "
            "object naming them"
        )
    ((name, dtype),) = dtypes.items()
    return {name: array_from_json(inputs, dtype, f"'inputs' input {name!r}")}


def array_from_json(value: Any, dtype: np.dtype, what: str) -> np.ndarray:
    """A rectangular array of ``dtype`` from nested JSON lists; ``what`` names it in errors."""
    if dtype == STRING:
        return _string_array(value, what)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise invalid_argument(
            f"{what} is ragged: every list at one depth must have the same length"
        ) from None
    kind = array.dtype.kind
    if array.size == 0:
        return array.astype(dtype)
    if dtype.kind == "b":
        allowed = "b"
    elif dtype.kind in "iu":
        allowed = "iu"
    elif dtype.kind in "fc":
        allowed = "iuf"
    else:
        raise invalid_argument(f"{what}: dtype {dtype} cannot be sent as JSON")
    if kind not in allowed:
        raise invalid_argument(
            f"{what}: expected {_kind_name(dtype)} values for dtype {dtype}, got {_found(array)}"
        )
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            raise invalid_argument(f"{what}: a value is out of range for {dtype}")
    elif dtype.kind == "f":
        _check_lossless(array, dtype, what)
    return array.astype(dtype, copy=False)


def _check_lossless(array: np.ndarray, dtype: np.dtype, what: str) -> None:
    """Refuse numbers ``dtype`` cannot hold, as TF Serving's ``IsLosslessDecimal`` does.

    ``tensorflow_serving/util/json_tensor.cc``: NaN and infinities pass; an integer must be at most
    ``2**digits - 1`` in magnitude (16,777,215 for float32); any other number must lie within the
    type's finite range. Python's parser turns integers mixed with fractions in one list into
    floats, so there only the range is checked (TF Serving would also check those integers).
    """
    if array.dtype.kind in "iu":
        limit = 2 ** (np.finfo(dtype).nmant + 1) - 1
        bad = (array > limit) | (array < -limit)
    else:
        info = np.finfo(dtype)
        with np.errstate(invalid="ignore"):
            bad = np.isfinite(array) & ((array > info.max) | (array < info.min))
    if bad.any():
        value = array.flat[int(np.flatnonzero(bad)[0])].item()
        name = {4: "float", 8: "double"}.get(dtype.itemsize, str(dtype))
        raise invalid_argument(
            f"{what}: Cannot convert JSON value: {value!r} to {name} without loss of precision."
        )


def _string_array(value: Any, what: str) -> np.ndarray:
    """An object array of bytes from strings and ``{"b64": ...}`` leaves; checks rectangularity."""
    flat: list[bytes] = []
    shape: list[int] = []

    def walk(node: Any, depth: int) -> None:
        if isinstance(node, list):
            if depth >= MAX_RANK:
                raise invalid_argument(f"{what} is nested deeper than {MAX_RANK} dimensions")
            if depth == len(shape):
                if flat:
                    raise invalid_argument(f"{what} is ragged: lists and values mix at depth {depth}")
                shape.append(len(node))
            elif depth > len(shape) or shape[depth] != len(node):
                raise invalid_argument(
                    f"{what} is ragged: every list at depth {depth} must have the same length"
                )
            for child in node:
                walk(child, depth + 1)
            return
        if depth != len(shape):
            raise invalid_argument(f"{what} is ragged: lists and values mix at depth {depth}")
        if isinstance(node, str):
            flat.append(node.encode("utf-8"))
        elif is_b64(node):
            flat.append(decode_b64(node["b64"], what))
        else:
            raise invalid_argument(
                f'{what}: expected strings or {{"b64": ...}} objects, got {type(node).__name__}'
            )

    walk(value, 0)
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape)


def decode_b64(text: Any, what: str) -> bytes:
    """The bytes of a ``{"b64": text}`` value; ``what`` names it in errors."""
    if not isinstance(text, str):
        raise invalid_argument(f"{what}: the value of 'b64' must be a string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument(f"{what}: 'b64' value is not valid base64") from None


def _check_names(names: Any, dtypes: Mapping[str, np.dtype], what: str) -> None:
    given = set(names)
    if given == set(dtypes):
        return
    extra = sorted(given - set(dtypes))
    missing = sorted(set(dtypes) - given)
    raise invalid_argument(
        f"{what}: input names do not match the signature's inputs {sorted(dtypes)}"
        + (f"; unknown: {extra}" if extra else "")
        + (f"; missing: {missing}" if missing else "")
    )


def _kind_name(dtype: np.dtype) -> str:
    return {"b": "true/false", "i": "integer", "u": "integer", "f": "number", "c": "number"}[dtype.kind]


def _found(array: np.ndarray) -> str:
    kind = array.dtype.kind
    names = {
        "U": "strings",
        "S": "strings",
        "O": "mixed or non-numeric values",
        "b": "true/false",
        "f": "floats",
    }
    return names.get(kind, str(array.dtype))


def encode_rows(outputs: Tensors) -> list[Any]:
    """Row-format ``predictions``: one entry per example; bare values if there is one output."""
    sizes = {name: array.shape[0] if array.ndim else None for name, array in outputs.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise invalid_argument(
            f"outputs have different batch sizes {sizes}; request the columnar format ('inputs') instead"
        )
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        return to_json(array, name)
    columns = {name: to_json(array, name) for name, array in outputs.items()}
    rows = next(iter(outputs.values())).shape[0]  # every output's, checked above
    return [{name: column[i] for name, column in columns.items()} for i in range(rows)]


def encode_columns(outputs: Tensors) -> Any:
    """Columnar ``outputs``: the bare value if there is one output, else an object by output name."""
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        return to_json(array, name)
    return {name: to_json(array, name) for name, array in outputs.items()}


def to_json(array: np.ndarray, name: str) -> Any:
    """Nested lists of JSON values; bytes become text, or ``{"b64"}`` for ``*_bytes`` outputs and non-UTF-8."""
    values = array.tolist()
    if array.dtype.kind not in "OSU":
        return values
    as_b64 = name.endswith("_bytes")
    return _map_leaves(values, lambda leaf: _bytes_to_json(leaf, as_b64))


def _bytes_to_json(value: Any, as_b64: bool) -> Any:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not as_b64:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(value).decode("ascii")}


def _map_leaves(value: Any, function: Any) -> Any:
    if isinstance(value, list):
        return [_map_leaves(item, function) for item in value]
    return function(value)


def to_jsonable(value: Any) -> Any:
    """A request value ready for ``json.dumps``: bytes become ``{"b64"}``, numpy values Python ones."""
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return value
