"""The built-in model server: TF Serving's REST and gRPC APIs over the models in a directory.

For local work, notebooks, InfraValidator and tests where ``tensorflow_model_server`` is not
installed. ``start()`` loads the models before it opens the ports (as TF Serving does), so once it
returns every model with a version on disk answers requests::

    with ModelServer([ServedModel("taxi", "/serving/taxi")]) as server:
        Client(server.rest_address, model="taxi").predict(...)

Ports default to 0 (any free port); read the bound ones from ``start()`` or the properties.

Given ``model_config_file`` and ``model_config_file_poll_wait_seconds`` (TF Serving's flags), the
server rereads the file and applies a changed config as a reload (models, version labels, request
logging): this is how ``mlpipe promote`` and a labelled push reach a running server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple

from mlpipe import _tf_env  # noqa: F401  (TF_USE_LEGACY_KERAS must be set before TensorFlow loads)
from mlpipe.errors import ServingError
from mlpipe.serving.batching import Batcher, BatchingParameters
from mlpipe.serving.config import ServedModel, read_model_config
from mlpipe.serving.event_loop import LoopThread
from mlpipe.serving.http_transport import HttpLimits, HttpServer
from mlpipe.serving.inference import InferenceRunner
from mlpipe.serving.metrics import ServingMetrics
from mlpipe.serving.model_manager import ModelManager
from mlpipe.serving.request_log import RequestLogger
from mlpipe.serving.rest import RestApi

if TYPE_CHECKING:
    import grpc

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


class ServerPorts(NamedTuple):
    grpc: int
    rest: int


class ModelServer:
    """Serves ``models`` until :meth:`stop`; also a context manager.

    ``poll_wait_seconds`` is TF Serving's ``--file_system_poll_wait_seconds`` (0: look once at start).
    ``batching`` turns request batching on. ``host`` is where both APIs listen: keep the loopback
    default unless other machines must reach the server. ``allow_version_labels_for_unavailable_models``
    is TF Serving's flag of that name (see :mod:`mlpipe.serving.model_manager`); ``request_log_*``
    bound the request log files (:mod:`mlpipe.serving.request_log`).
    """

    def __init__(
        self,
        models: Sequence[ServedModel] | ServedModel,
        *,
        grpc_port: int = 0,
        rest_port: int = 0,
        host: str = "127.0.0.1",
        poll_wait_seconds: float = 1.0,
        batching: BatchingParameters | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        allow_version_labels_for_unavailable_models: bool = False,
        model_config_file: str | None = None,
        model_config_file_poll_wait_seconds: float = 0.0,
        request_log_max_records_per_file: int = 10_000,
        request_log_max_file_seconds: float = 60.0,
    ):
        self.models = [models] if isinstance(models, ServedModel) else list(models)
        if not self.models:
            raise ServingError("no models to serve; give at least one ServedModel(name, base_path)")
        if poll_wait_seconds < 0:
            raise ServingError(f"poll_wait_seconds must be >= 0, got {poll_wait_seconds}")
        self.host = host
        self.poll_wait_seconds = poll_wait_seconds
        self.batching = batching
        self.max_request_bytes = max_request_bytes
        self.allow_version_labels_for_unavailable_models = allow_version_labels_for_unavailable_models
        if model_config_file_poll_wait_seconds > 0 and model_config_file is None:
            raise ServingError("model_config_file_poll_wait_seconds needs model_config_file")
        self.model_config_file = model_config_file
        self.model_config_file_poll_wait_seconds = model_config_file_poll_wait_seconds
        self._request_log_limits = (request_log_max_records_per_file, request_log_max_file_seconds)
        self._request_log: RequestLogger | None = None
        self._config_poller: threading.Thread | None = None
        self._stop_config_poll = threading.Event()
        self._requested = ServerPorts(grpc_port, rest_port)
        self._manager: ModelManager | None = None
        self._batcher: Batcher | None = None
        self._runner: InferenceRunner | None = None
        self._loop: LoopThread | None = None
        self._grpc: grpc.aio.Server | None = None
        self._rest: HttpServer | None = None
        self.ports: ServerPorts | None = None

    def start(self) -> ServerPorts:
        """Load the models, open both APIs and start watching the directories; returns the bound ports.

        Raises ``ServingError`` if a model's versions all failed to load (a server that cannot serve
        its model should not look healthy).
        """
        if self.ports is not None:
            return self.ports
        from mlpipe.serving.grpc_service import start_grpc_server

        manager = self._manager = ModelManager(self.models, self.allow_version_labels_for_unavailable_models)
        try:
            manager.update_labels(self.models)  # as TF Serving: checked before the first load
            manager.poll()
            failures = manager.load_failures()
            if failures:
                raise ServingError("; ".join(message for _, message in failures))
            metrics = ServingMetrics()
            self._batcher = Batcher(self.batching, metrics.record_batch) if self.batching else None
            self._request_log = RequestLogger(self.models, *self._request_log_limits)
            runner = self._runner = InferenceRunner(manager, self._batcher, self._request_log, metrics)
            self._loop = LoopThread("mlpipe-serving")
            self._grpc, grpc_port = self._loop.run(
                start_grpc_server(runner, metrics, self.host, self._requested.grpc, self.max_request_bytes)
            )
            self._rest = HttpServer(
                RestApi(runner, metrics).handle, HttpLimits(max_body_bytes=self.max_request_bytes)
            )
            rest_port = self._loop.run(self._listen_rest(self._rest))
        except BaseException:
            self.stop()
            raise
        manager.start_polling(self.poll_wait_seconds)
        if self.model_config_file_poll_wait_seconds > 0:
            self._stop_config_poll.clear()
            self._config_poller = threading.Thread(
                target=self._poll_config_file, name="mlpipe-config-poller", daemon=True
            )
            self._config_poller.start()
        self.ports = ServerPorts(grpc_port, rest_port)
        log.info(
            "serving %s: gRPC %s, REST http://%s (batching %s)",
            ", ".join(model.name for model in self.models),
            self.grpc_address,
            self.rest_address,
            "on" if self.batching else "off",
        )
        return self.ports

    def stop(self, grace_seconds: float = 2.0) -> None:
        """Stop listening, let running requests finish (up to ``grace_seconds``), unload the models.

        Every logged request is written before this returns.
        """
        if self._config_poller is not None:
            self._stop_config_poll.set()
            self._config_poller.join()
        if self._loop is not None:
            if self._rest is not None:
                self._loop.run(self._rest.stop(grace_seconds))
            if self._grpc is not None:
                self._loop.run(self._grpc.stop(grace_seconds))
            if self._batcher is not None:
                self._loop.run(self._batcher.stop())
            self._loop.stop()
        if self._runner is not None:
            self._runner.close()
        if self._request_log is not None:
            self._request_log.close()
        if self._manager is not None:
            self._manager.stop()
        if self.ports is not None:
            log.info("model server stopped")
        self._manager = self._batcher = self._runner = self._loop = self._grpc = self._rest = None
        self._request_log = self._config_poller = None
        self.ports = None

    def reload(self, models: Sequence[ServedModel]) -> None:
        """Apply a new model config (TF Serving's ReloadConfig): labels are checked first, then models
        load, then request logging follows. Raises ``ServingError`` when the config is refused."""
        manager, request_log = self._manager, self._request_log
        if manager is None or request_log is None:
            raise ServingError("the model server is not running; call start() first")
        failures = manager.reload(models)
        request_log.update(models)
        self.models = list(models)
        if failures:
            raise ServingError("; ".join(message for _, message in failures))

    def _poll_config_file(self) -> None:
        """Reread ``model_config_file``; apply it when it changed, retrying a refused one each poll."""
        assert self.model_config_file is not None
        applied = self.models
        while not self._stop_config_poll.wait(self.model_config_file_poll_wait_seconds):
            try:
                models = read_model_config(self.model_config_file)
                if models == applied:
                    continue
                self.reload(models)
                applied = models
                log.info("applied the model config in %s", self.model_config_file)
            except ServingError as error:
                log.error("model config %s not applied: %s", self.model_config_file, error)

    async def _listen_rest(self, rest: HttpServer) -> int:
        try:
            return await rest.start(self.host, self._requested.rest)
        except OSError as error:
            raise ServingError(
                f"cannot listen for REST on {_address(self.host, self._requested.rest)}: "
                f"{error.strerror or error}"
            ) from None

    @property
    def rest_address(self) -> str:
        """``host:port`` of the REST API (give it to ``Client``)."""
        return _address(self.host, self._started().rest)

    @property
    def grpc_address(self) -> str:
        """``host:port`` of the gRPC API (give it to ``Client(..., protocol="grpc")``)."""
        return _address(self.host, self._started().grpc)

    def _started(self) -> ServerPorts:
        if self.ports is None:
            raise ServingError("the model server is not running; call start() first")
        return self.ports

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
