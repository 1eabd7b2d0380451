"""One loaded model version (a "servable" in TF Serving's words): its signatures and how to call them.

Only SavedModels are loaded, with ``tf.saved_model.load`` and the ``serve`` tag set: no pickles, no
Python objects from the model directory. Signature metadata (dtypes, shapes, method names) comes
from the SavedModel's own ``SignatureDef`` protos, the same ones TF Serving reports, so metadata
answers match the real server's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlpipe import _tf_env  # noqa: F401  (TF_USE_LEGACY_KERAS must be set before TensorFlow loads)
from mlpipe.errors import ServingError
from mlpipe.serving.status import ServingRequestError

log = logging.getLogger(__name__)

SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"

Tensors = dict[str, np.ndarray]


class ServableLoadError(ServingError):
    """A version directory could not be loaded; ``code`` is the status code its status reports."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature: numpy dtype (``object`` for strings) and shape.

    ``shape`` is None for an unknown rank; unknown dimensions are None.
    """

    dtype: np.dtype
    dtype_name: str
    shape: tuple[int | None, ...] | None

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """Whether an array of ``shape`` fits this spec."""
        if self.shape is None:
            return True
        return len(shape) == len(self.shape) and all(
            want is None or want == got for want, got in zip(self.shape, shape, strict=True)
        )

    def describe(self) -> str:
        dims = (
            "?"
            if self.shape is None
            else "[" + ",".join("-1" if d is None else str(d) for d in self.shape) + "]"
        )
        return f"{self.dtype_name}{dims}"


@dataclass(frozen=True)
class Signature:
    """A callable signature of a loaded version, keyed by its ``SignatureDef`` input/output names."""

    name: str
    method_name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]
    function: Callable[..., Mapping[str, Any]] = field(repr=False, compare=False)


class Servable:
    """A loaded version of a model. Requests hold a reference while they run; unloading drops it."""

    def __init__(
        self,
        name: str,
        version: int,
        path: str,
        signatures: Mapping[str, Signature],
        signature_def_map: Any,
        model: Any,
    ):
        from google.protobuf import json_format

        self.name = name
        self.version = version
        self.path = path
        self.signatures = dict(signatures)
        self.signature_def_map = signature_def_map
        # TF Serving's REST metadata is this proto printed as JSON with field names and defaults.
        self.signature_def_json = json_format.MessageToDict(
            signature_def_map, preserving_proto_field_name=True, including_default_value_fields=True
        )
        self._model = model  # the loaded object owns the variables the signature functions use

    def signature(self, name: str) -> Signature:
        """The signature called ``name`` (empty means ``serving_default``)."""
        key = name or DEFAULT_SIGNATURE
        try:
            return self.signatures[key]
        except KeyError:
            raise ServingRequestError(
                "FAILED_PRECONDITION",
                f'Serving signature key "{key}" not found in model {self.name!r} version {self.version}; '
                f"signatures: {', '.join(sorted(self.signatures)) or 'none'}",
            ) from None

    def run(self, signature: Signature, inputs: Tensors) -> Tensors:
        """Call ``signature`` on already validated inputs; numpy in, numpy out."""
        import tensorflow as tf

        try:
            outputs = signature.function(**{name: tf.constant(array) for name, array in inputs.items()})
        except tf.errors.OpError as error:
            raise ServingRequestError(_code_name(error.error_code), error.message) from None
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    def __repr__(self) -> str:
        return f"Servable({self.name!r}, version={self.version}, path={self.path!r})"


def load_servable(name: str, version: int, path: str) -> Servable:
    """Load version ``version`` of model ``name`` from the SavedModel at ``path``.

    Raises ``ServableLoadError`` with the status code a TF Serving status would show.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2

    meta_graph = _serve_meta_graph(name, version, path)
    try:
        model = tf.saved_model.load(path, tags=[SERVE_TAG])
    except tf.errors.OpError as error:
        raise ServableLoadError(_code_name(error.error_code), f"loading {path}: {error.message}") from None
    except (OSError, ValueError) as error:
        raise ServableLoadError("INVALID_ARGUMENT", f"loading {path}: {error}") from None
    signature_def_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in meta_graph.signature_def.items():
        signature_def_map.signature_def[key].CopyFrom(signature_def)
    signatures = {}
    for key, function in model.signatures.items():
        signature_def = meta_graph.signature_def[key]
        signatures[key] = Signature(
            name=key,
            method_name=signature_def.method_name,
            inputs={k: _tensor_spec(v) for k, v in signature_def.inputs.items()},
            outputs={k: _tensor_spec(v) for k, v in signature_def.outputs.items()},
            function=function,
        )
    log.info(
        "loaded model %r version %d from %s (signatures: %s)",
        name,
        version,
        path,
        ", ".join(sorted(signatures)),
    )
    return Servable(name, version, path, signatures, signature_def_map, model)


def _serve_meta_graph(name: str, version: int, path: str) -> Any:
    """The MetaGraphDef tagged ``serve``, read from the SavedModel file itself."""
    from google.protobuf import message, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    pb, pbtxt = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    try:
        if os.path.isfile(pb):
            with open(pb, "rb") as f:
                saved_model.ParseFromString(f.read())
        elif os.path.isfile(pbtxt):
            with open(pbtxt, encoding="utf-8") as f:
                text_format.Parse(f.read(), saved_model)
        else:
            raise ServableLoadError(
                "NOT_FOUND",
                f"Could not find SavedModel .pb or .pbtxt at {path} (model {name!r} version {version}); "
                "only SavedModel directories are served",
            )
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as error:
        raise ServableLoadError("DATA_LOSS", f"{path}: corrupt SavedModel file: {error}") from None
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ServableLoadError(
        "NOT_FOUND",
        f"SavedModel at {path} has no MetaGraph tagged {SERVE_TAG!r} (model {name!r} version {version})",
    )


def _tensor_spec(info: Any) -> TensorSpec:
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    dtype = tf.dtypes.as_dtype(info.dtype)
    numpy_dtype = np.dtype(object) if dtype == tf.string else np.dtype(dtype.as_numpy_dtype)
    shape_proto = info.tensor_shape
    shape = (
        None if shape_proto.unknown_rank else tuple(None if d.size < 0 else d.size for d in shape_proto.dim)
    )
    return TensorSpec(numpy_dtype, types_pb2.DataType.Name(info.dtype), shape)


def _code_name(code: int) -> str:
    from tensorflow.core.protobuf import error_codes_pb2

    return error_codes_pb2.Code.Name(code)
