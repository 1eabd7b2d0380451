"""A client for TF Serving's APIs (the real server or mlpipe's), over REST or gRPC.

Both protocols answer in the REST API's JSON shapes (``predict`` returns what ``predictions`` or
``outputs`` holds, ``status``/``metadata`` the REST documents), so code using the client does not
change with the protocol::

    Client("localhost:8501", model="taxi").predict_examples([{"trip_miles": 1.5, "company": "x"}])
    Client("localhost:8500", model="taxi", protocol="grpc").status()

The REST path imports neither TensorFlow nor gRPC. The gRPC path learns each signature's input
dtypes once from the model's metadata, to build tensors the server accepts.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import numpy as np

from mlpipe import _tf_env  # noqa: F401  (TF_USE_LEGACY_KERAS must be set before TensorFlow loads)
from mlpipe.errors import ServingError
from mlpipe.serving.status import CODE_OF_HTTP_STATUS, ServingRequestError
from mlpipe.serving.tensor_json import (
    STRING,
    decode_columnar,
    decode_instances,
    encode_columns,
    encode_rows,
    to_jsonable,
)

Protocol = Literal["rest", "grpc"]


class Client:
    """Talks to one model of a TF Serving-compatible server; thread-safe.

    ``address`` is ``host:port`` (REST also accepts ``http://host:port``). ``version`` or ``label``
    pins requests to one version; by default the server picks the latest. Errors raise
    ``ServingRequestError`` with the server's code and message.
    """

    def __init__(
        self,
        address: str,
        model: str,
        *,
        protocol: Protocol = "rest",
        version: int | None = None,
        label: str | None = None,
        timeout: float = 30.0,
    ):
        if version is not None and label is not None:
            raise ServingError("give a version or a label, not both")
        if protocol not in ("rest", "grpc"):
            raise ServingError(f"protocol must be 'rest' or 'grpc', got {protocol!r}")
        self.address = address
        self.model = model
        self.protocol = protocol
        self.version = version
        self.label = label
        self.timeout = timeout
        self._transport: _RestTransport | _GrpcTransport = (
            _RestTransport(address, timeout) if protocol == "rest" else _GrpcTransport(address, timeout)
        )

    def predict(
        self, instances: Sequence[Any] | None = None, *, inputs: Any = None, signature_name: str = ""
    ) -> Any:
        """Row format (``instances``) answers ``predictions``; columnar (``inputs``) answers ``outputs``."""
        if (instances is None) == (inputs is None):
            raise ServingError("give either instances (row format) or inputs (columnar format)")
        return self._transport.predict(self, instances, inputs, signature_name)

    def predict_examples(self, examples: Sequence[Mapping[str, Any]], *, signature_name: str = "") -> Any:
        """Predict on a signature taking serialized tf.Examples (TFX's ``serving_default``).

        Each example is a dict of raw feature values (see :func:`mlpipe.serving.serialize_example`).
        """
        from mlpipe.serving.examples import serialize_example

        return self.predict(
            [serialize_example(example) for example in examples], signature_name=signature_name
        )

    def classify(
        self,
        examples: Sequence[Mapping[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
        signature_name: str = "",
    ) -> list[list[tuple[str, float]]]:
        """(label, score) pairs per example; examples are dicts of feature values."""
        return self._transport.infer(self, "classify", examples, context, signature_name)

    def regress(
        self,
        examples: Sequence[Mapping[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
        signature_name: str = "",
    ) -> list[float]:
        """One value per example; examples are dicts of feature values."""
        return self._transport.infer(self, "regress", examples, context, signature_name)

    def status(self) -> dict[str, Any]:
        """``{"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {...}}]}``."""
        return self._transport.status(self)

    def metadata(self) -> dict[str, Any]:
        """``{"model_spec": {...}, "metadata": {"signature_def": {"signature_def": {...}}}}``."""
        return self._transport.metadata(self)

    def wait_until_available(self, timeout: float = 60.0) -> int:
        """Block until a version is AVAILABLE (e.g. right after starting a server); return it."""
        deadline = time.monotonic() + timeout
        last: object = "no answer"
        while True:
            try:
                states = self.status()["model_version_status"]
                available = [int(s["version"]) for s in states if s["state"] == "AVAILABLE"]
                if available:
                    return max(available)
                last = states
            except ServingRequestError as error:
                if error.code not in ("NOT_FOUND", "UNAVAILABLE"):
                    raise
                last = error
            if time.monotonic() >= deadline:
                raise ServingError(
                    f"model {self.model!r} at {self.address} has no AVAILABLE version after {timeout}s; last "
                    f"answer: {last}"
                )
            time.sleep(0.1)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _RestTransport:
    def __init__(self, address: str, timeout: float):
        scheme, _, hostport = address.rpartition("://")
        if scheme not in ("", "http", "https"):
            raise ServingError(f"REST address {address!r} must be host:port or http(s)://host:port")
        self.address = address
        self.hostport = hostport.rstrip("/")
        self.https = scheme == "https"
        self.timeout = timeout
        self._local = threading.local()

    def predict(self, client: Client, instances: Any, inputs: Any, signature_name: str) -> Any:
        body: dict[str, Any] = (
            {"instances": to_jsonable(instances)}
            if instances is not None
            else {"inputs": to_jsonable(inputs)}
        )
        if signature_name:
            body["signature_name"] = signature_name
        answer = self._call("POST", _path(client) + ":predict", body)
        return answer["predictions"] if instances is not None else answer["outputs"]

    def infer(self, client: Client, api: str, examples: Any, context: Any, signature_name: str) -> Any:
        body: dict[str, Any] = {"examples": to_jsonable(list(examples))}
        if context is not None:
            body["context"] = to_jsonable(context)
        if signature_name:
            body["signature_name"] = signature_name
        results = self._call("POST", f"{_path(client)}:{api}", body)["results"]
        if api == "classify":
            return [[(label, float(score)) for label, score in row] for row in results]
        return [float(value) for value in results]

    def status(self, client: Client) -> dict[str, Any]:
        return self._call("GET", _path(client))

    def metadata(self, client: Client) -> dict[str, Any]:
        return self._call("GET", _path(client) + "/metadata")

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        payload = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        status, data = self._send(method, path, payload, headers)
        try:
            document = json.loads(data) if data else {}
        except ValueError:
            document = {"error": data[:200].decode("utf-8", "replace")}
        if status != 200:
            message = document.get("error", "") if isinstance(document, dict) else str(document)
            raise ServingRequestError(CODE_OF_HTTP_STATUS.get(status, "UNKNOWN"), message, http_status=status)
        return document

    def _send(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        reused = getattr(self._local, "connection", None) is not None
        try:
            return self._exchange(method, path, payload, headers)
        except (http.client.HTTPException, OSError) as error:
            if not reused or isinstance(error, TimeoutError):
                raise self._failure(error) from None
        try:  # the kept-alive connection may have been closed by the server while idle: retry once
            return self._exchange(method, path, payload, headers)
        except (http.client.HTTPException, OSError) as error:
            raise self._failure(error) from None

    def _exchange(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        connection = getattr(self._local, "connection", None) or self._connect()
        self._local.connection = connection
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except BaseException:
            connection.close()
            self._local.connection = None
            raise
        if response.will_close:
            connection.close()
            self._local.connection = None
        return response.status, data

    def _failure(self, error: BaseException) -> ServingRequestError:
        if isinstance(error, TimeoutError):
            return ServingRequestError(
                "DEADLINE_EXCEEDED", f"no answer from {self.address} within {self.timeout}s", http_status=504
            )
        return ServingRequestError("UNAVAILABLE", f"cannot reach {self.address}: {error}", http_status=503)

    def _connect(self) -> http.client.HTTPConnection:
        factory = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        connection = factory(self.hostport, timeout=self.timeout)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection


def _path(client: Client) -> str:
    path = f"/v1/models/{quote(client.model, safe='')}"
    if client.version is not None:
        path += f"/versions/{client.version}"
    elif client.label is not None:
        path += f"/labels/{quote(client.label, safe='')}"
    return path


class _GrpcTransport:
    def __init__(self, address: str, timeout: float):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.address = address
        self.timeout = timeout
        limit = 64 * 1024 * 1024
        self._channel = grpc.insecure_channel(
            address,
            options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
        )
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._dtypes: dict[str, dict[str, np.dtype]] = {}

    def predict(self, client: Client, instances: Any, inputs: Any, signature_name: str) -> Any:
        from tensorflow_serving.apis import predict_pb2

        from mlpipe.serving.tensor_proto import to_ndarray, to_tensor_proto

        dtypes = self._input_dtypes(client, signature_name)
        if instances is not None:
            arrays = decode_instances(to_jsonable(instances), dtypes)
        else:
            arrays = decode_columnar(to_jsonable(inputs), dtypes)
        request = predict_pb2.PredictRequest()
        self._fill_spec(client, request.model_spec, signature_name)
        for name, array in arrays.items():
            request.inputs[name].CopyFrom(to_tensor_proto(array))
        response = self._rpc(self._predictions.Predict, request)
        outputs = {name: to_ndarray(proto, f"output {name!r}") for name, proto in response.outputs.items()}
        return encode_rows(outputs) if instances is not None else encode_columns(outputs)

    def infer(self, client: Client, api: str, examples: Any, context: Any, signature_name: str) -> Any:
        from tensorflow_serving.apis import classification_pb2, regression_pb2

        from mlpipe.serving.examples import example_from_features

        request = (
            classification_pb2.ClassificationRequest
            if api == "classify"
            else regression_pb2.RegressionRequest
        )()
        self._fill_spec(client, request.model_spec, signature_name)
        protos = [example_from_features(example, f"examples[{i}]") for i, example in enumerate(examples)]
        if context is not None:
            request.input.example_list_with_context.context.CopyFrom(
                example_from_features(context, "context")
            )
            request.input.example_list_with_context.examples.extend(protos)
        else:
            request.input.example_list.examples.extend(protos)
        if api == "classify":
            response = self._rpc(self._predictions.Classify, request)
            return [[(c.label, c.score) for c in row.classes] for row in response.result.classifications]
        response = self._rpc(self._predictions.Regress, request)
        return [r.value for r in response.result.regressions]

    def status(self, client: Client) -> dict[str, Any]:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(client, request.model_spec, "")
        response = self._rpc(self._models.GetModelStatus, request)
        return json_format.MessageToDict(
            response, preserving_proto_field_name=True, including_default_value_fields=True
        )

    def metadata(self, client: Client) -> dict[str, Any]:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_spec(client, request.model_spec, "")
        response = self._rpc(self._predictions.GetModelMetadata, request)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)
        return {
            "model_spec": {
                "name": response.model_spec.name,
                "signature_name": response.model_spec.signature_name,
                "version": str(response.model_spec.version.value),
            },
            "metadata": {
                "signature_def": json_format.MessageToDict(
                    signature_defs, preserving_proto_field_name=True, including_default_value_fields=True
                )
            },
        }

    def close(self) -> None:
        self._channel.close()

    def _input_dtypes(self, client: Client, signature_name: str) -> dict[str, np.dtype]:
        import tensorflow as tf

        key = signature_name or "serving_default"
        if key not in self._dtypes:
            signatures = self.metadata(client)["metadata"]["signature_def"]["signature_def"]
            if key not in signatures:
                raise ServingRequestError(
                    "FAILED_PRECONDITION",
                    f'Serving signature key "{key}" not found in model {client.model!r}; signatures: {sorted(signatures)}',
                )
            dtypes = {}
            for name, info in signatures[key]["inputs"].items():
                dtype = tf.dtypes.as_dtype(_dtype_enum(info["dtype"]))
                dtypes[name] = STRING if dtype == tf.string else np.dtype(dtype.as_numpy_dtype)
            self._dtypes[key] = dtypes
        return self._dtypes[key]

    def _fill_spec(self, client: Client, spec: Any, signature_name: str) -> None:
        spec.name = client.model
        if client.version is not None:
            spec.version.value = client.version
        elif client.label is not None:
            spec.version_label = client.label
        if signature_name:
            spec.signature_name = signature_name

    def _rpc(self, method: Any, request: Any) -> Any:
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise ServingRequestError(error.code().name, error.details() or "") from None


def _dtype_enum(name: str) -> int:
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Value(name)
