"""TF Serving's gRPC API: ``tensorflow.serving.PredictionService`` and ``ModelService``.

The servicers subclass the tensorflow-serving-api base classes and register with their
``add_*_to_server`` functions, so the wire contract is the published one. Errors abort the call with
the canonical code (the name of :class:`ServingRequestError`'s code).

The server is ``grpc.aio``: handlers are coroutines on the serving event loop (shared with REST), so
a request waiting for its model call or batch holds no thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mlpipe import _tf_env  # noqa: F401  (TF_USE_LEGACY_KERAS must be set before TensorFlow loads)

# isort: split
import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
    status_pb2,
)

from mlpipe.errors import ServingError
from mlpipe.serving.config import models_from_proto
from mlpipe.serving.inference import InferenceRunner, ModelSpec
from mlpipe.serving.metrics import ServingMetrics
from mlpipe.serving.status import ServingRequestError, invalid_argument
from mlpipe.serving.tensor_proto import to_ndarray, to_tensor_proto

log = logging.getLogger(__name__)

_ERROR_CODES = status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"].enum_type.values_by_name
_Response = TypeVar("_Response")


class _Servicer:
    """Shared request bookkeeping: metrics, and errors turned into gRPC status codes."""

    def __init__(self, runner: InferenceRunner, metrics: ServingMetrics):
        self.runner = runner
        self.metrics = metrics

    async def _call(
        self,
        api: str,
        model_name: str,
        context: grpc.aio.ServicerContext,
        answer: Callable[[], Awaitable[_Response]],
    ) -> _Response:
        started = time.perf_counter()
        try:
            response = await answer()
        except ServingRequestError as error:
            self._record(model_name, api, error.code, started)
            await context.abort(grpc.StatusCode[error.code], error.message)
        except Exception as error:  # a bug must answer INTERNAL, not hang the client
            log.exception("gRPC %s for model %r failed", api, model_name)
            self._record(model_name, api, "INTERNAL", started)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}: {error}")
        self._record(model_name, api, "OK", started)
        return response

    def _record(self, model_name: str, api: str, code: str, started: float) -> None:
        if model_name in self.runner.manager:  # unknown names from requests must not grow the metrics
            self.metrics.record(model_name, api, "GRPC", code, time.perf_counter() - started)


class PredictionServicer(_Servicer, prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress and GetModelMetadata."""

    async def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        return await self._call("predict", request.model_spec.name, context, lambda: self._predict(request))

    async def Classify(
        self, request: classification_pb2.ClassificationRequest, context: grpc.aio.ServicerContext
    ) -> classification_pb2.ClassificationResponse:
        return await self._call("classify", request.model_spec.name, context, lambda: self._classify(request))

    async def Regress(
        self, request: regression_pb2.RegressionRequest, context: grpc.aio.ServicerContext
    ) -> regression_pb2.RegressionResponse:
        return await self._call("regress", request.model_spec.name, context, lambda: self._regress(request))

    async def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return await self._call("metadata", request.model_spec.name, context, lambda: self._metadata(request))

    async def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        servable, signature = self.runner.resolve(_model_spec(request.model_spec))
        inputs = {name: to_ndarray(proto, f"input {name!r}") for name, proto in request.inputs.items()}
        outputs = await self.runner.predict(servable, signature, inputs, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, servable.name, servable.version, signature.name)
        for name, array in outputs.items():
            response.outputs[name].CopyFrom(to_tensor_proto(array))
        return response

    async def _classify(
        self, request: classification_pb2.ClassificationRequest
    ) -> classification_pb2.ClassificationResponse:
        servable, signature = self.runner.resolve(_model_spec(request.model_spec))
        results = await self.runner.classify(servable, signature, _serialized_examples(request.input))
        response = classification_pb2.ClassificationResponse()
        _fill_spec(response.model_spec, servable.name, servable.version, signature.name)
        for row in results:
            classifications = response.result.classifications.add()
            for label, score in row:
                classifications.classes.add(label=label, score=score)
        return response

    async def _regress(self, request: regression_pb2.RegressionRequest) -> regression_pb2.RegressionResponse:
        servable, signature = self.runner.resolve(_model_spec(request.model_spec))
        values = await self.runner.regress(servable, signature, _serialized_examples(request.input))
        response = regression_pb2.RegressionResponse()
        _fill_spec(response.model_spec, servable.name, servable.version, signature.name)
        for value in values:
            response.result.regressions.add(value=value)
        return response

    async def _metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        fields = list(request.metadata_field)
        if not fields:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        unsupported = [field for field in fields if field != "signature_def"]
        if unsupported:
            raise invalid_argument(f"Metadata field {unsupported[0]} is not supported; use signature_def")
        spec = _model_spec(request.model_spec)
        servable = self.runner.manager.resolve(spec.name, spec.version, spec.label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _fill_spec(response.model_spec, servable.name, servable.version, "")
        response.metadata["signature_def"].Pack(servable.signature_def_map)
        return response


class ModelServicer(_Servicer, model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest."""

    async def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.aio.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        return await self._call("status", request.model_spec.name, context, lambda: self._status(request))

    async def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.aio.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        return await self._call("reload", "", context, lambda: self._reload(request))

    async def _status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = _model_spec(request.model_spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in self.runner.manager.status(spec.name, spec.version, spec.label):
            entry = response.model_version_status.add(
                version=status.version,
                state=get_model_status_pb2.ModelVersionStatus.State.Value(status.state),
            )
            entry.status.error_code = _ERROR_CODES[status.error_code].number
            entry.status.error_message = status.error_message
        return response

    async def _reload(
        self, request: model_management_pb2.ReloadConfigRequest
    ) -> model_management_pb2.ReloadConfigResponse:
        try:
            models = models_from_proto(request.config)
        except ServingError as error:
            raise invalid_argument(str(error)) from None
        # Loading models takes seconds: off the event loop, so other requests go on meanwhile.
        loop = asyncio.get_running_loop()
        failures = await loop.run_in_executor(None, self.runner.manager.reload, models)
        if self.runner.request_log is not None:
            self.runner.request_log.update(models)
        if failures:
            code, message = failures[0]
            raise ServingRequestError(code, message)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = _ERROR_CODES["OK"].number
        return response


def _model_spec(spec: Any) -> ModelSpec:
    if not spec.name:
        raise invalid_argument("Missing model name in request: set model_spec.name")
    choice = spec.WhichOneof("version_choice")
    return ModelSpec(
        name=spec.name,
        version=spec.version.value if choice == "version" else None,
        label=spec.version_label if choice == "version_label" else None,
        signature_name=spec.signature_name,
    )


def _fill_spec(spec: Any, name: str, version: int, signature_name: str) -> None:
    spec.name = name
    spec.version.value = version
    spec.signature_name = signature_name


def _serialized_examples(request_input: Any) -> list[bytes]:
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        return [example.SerializeToString() for example in request_input.example_list.examples]
    if kind == "example_list_with_context":
        with_context = request_input.example_list_with_context
        # Serialized protos concatenate as a merge: each example's features override the context's.
        prefix = with_context.context.SerializeToString()
        return [prefix + example.SerializeToString() for example in with_context.examples]
    return []


async def start_grpc_server(
    runner: InferenceRunner, metrics: ServingMetrics, host: str, port: int, max_message_bytes: int
) -> tuple[grpc.aio.Server, int]:
    """A started gRPC server with both services, on the running event loop; returns it and its port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(runner, metrics), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(runner, metrics), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        raise ServingError(f"cannot listen for gRPC on {address}: {error}") from None
    if bound == 0:
        raise ServingError(
            f"cannot listen for gRPC on {address}: the port is in use or the host is not local"
        )
    await server.start()
    return server, bound
