"""TF Serving's REST API (``/v1/models/...``) over a threaded HTTP/1.1 server.

Routing mirrors TF Serving: a POST must match ``/v1/models/{name}[/versions/{v}|/labels/{l}]:{predict|
classify|regress}`` and a GET ``/v1/models/{name}[/versions/{v}|/labels/{l}][/metadata]``; anything
else under ``/v1/`` is a 400 "Malformed request" (this is how a version and a label together, a
wrong method or a path like ``/v1/models/../x`` are refused); other paths are 404. Every error is
``{"error": "..."}`` with TF Serving's HTTP status for its code. Bodies are bounded by
``max_request_bytes`` (413) and must carry a Content-Length.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlpipe.errors import ServingError
from mlpipe.serving.examples import example_from_features
from mlpipe.serving.inference import InferenceRunner, ModelSpec
from mlpipe.serving.metrics import PROMETHEUS_PATH, ServingMetrics
from mlpipe.serving.status import ServingRequestError, invalid_argument
from mlpipe.serving.tensor_json import decode_columnar, decode_instances, encode_columns, encode_rows

log = logging.getLogger(__name__)

_TARGET = r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?"
_POST_PATH = re.compile(_TARGET + r":(predict|classify|regress)", re.IGNORECASE)
_GET_PATH = re.compile(_TARGET + r"(/metadata)?", re.IGNORECASE)
JSON_TYPE = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class RestApi:
    """Answers one REST request: method, path and body in; HTTP status, content type and body out."""

    def __init__(self, runner: InferenceRunner, metrics: ServingMetrics):
        self.runner = runner
        self.metrics = metrics

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        started = time.perf_counter()
        path = path.split("?", 1)[0]
        if method == "GET" and path == PROMETHEUS_PATH:
            return 200, METRICS_TYPE, self.metrics.render().encode("utf-8")
        model_name, api, code = "", "", "OK"
        try:
            if not path.lower().startswith("/v1/"):
                raise ServingRequestError(
                    "NOT_FOUND", f"no such path {path!r}; the model API is under /v1/models/"
                )
            match = _POST_PATH.fullmatch(path) if method == "POST" else None
            if match is None and method == "GET":
                match = _GET_PATH.fullmatch(path)
            if match is None:
                raise invalid_argument(f"Malformed request: {method} {path}")
            model_name, version, label, action = match.groups()
            spec_version = int(version) if version is not None else None
            if method == "POST":
                api = action.lower()
                result = self._post(api, model_name, spec_version, label, body)
            elif action:
                api = "metadata"
                result = self._metadata(ModelSpec(model_name, spec_version, label))
            else:
                api = "status"
                result = self._status(model_name, spec_version, label)
            status, payload = 200, result
        except ServingRequestError as error:
            code, status, payload = error.code, error.http_status, {"error": error.message}
        except Exception as error:  # a bug must answer 500, not kill the connection thread
            log.exception("REST %s %s failed", method, path)
            code, status, payload = (
                "INTERNAL",
                500,
                {"error": f"internal error: {type(error).__name__}: {error}"},
            )
        if model_name in self.runner.manager:  # unknown names from requests must not grow the metrics
            self.metrics.record(model_name, api, "REST", code, time.perf_counter() - started)
        return status, JSON_TYPE, json.dumps(payload).encode("utf-8")

    def _post(self, api: str, name: str, version: int | None, label: str | None, body: bytes) -> Any:
        document = _parse_json(body)
        signature_name = document.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid_argument("'signature_name' must be a string")
        servable, signature = self.runner.resolve(ModelSpec(name, version, label, signature_name))
        if api == "predict":
            has_instances, has_inputs = "instances" in document, "inputs" in document
            if has_instances and has_inputs:
                raise invalid_argument(
                    "Not formatted correctly expecting only one of 'inputs' or 'instances' keys exists"
                )
            if not has_instances and not has_inputs:
                raise invalid_argument("Missing 'inputs' or 'instances' key")
            dtypes = {key: spec.dtype for key, spec in signature.inputs.items()}
            if has_instances:
                inputs = decode_instances(document["instances"], dtypes)
                return {"predictions": encode_rows(self.runner.predict(servable, signature, inputs))}
            inputs = decode_columnar(document["inputs"], dtypes)
            return {"outputs": encode_columns(self.runner.predict(servable, signature, inputs))}
        examples = _serialized_examples(document)
        if api == "classify":
            results = self.runner.classify(servable, signature, examples)
            return {"results": [[[label, score] for label, score in row] for row in results]}
        return {"results": self.runner.regress(servable, signature, examples)}

    def _status(self, name: str, version: int | None, label: str | None) -> Any:
        statuses = self.runner.manager.status(name, version, label)
        return {
            "model_version_status": [
                {
                    "version": str(s.version),
                    "state": s.state,
                    "status": {"error_code": s.error_code, "error_message": s.error_message},
                }
                for s in statuses
            ]
        }

    def _metadata(self, spec: ModelSpec) -> Any:
        servable = self.runner.manager.resolve(spec.name, spec.version, spec.label)
        return {
            "model_spec": {"name": servable.name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": servable.signature_def_json},
        }


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise invalid_argument(f"JSON Parse error: {error}") from None
    if not isinstance(document, dict):
        raise invalid_argument("JSON Parse error: the request body must be a JSON object")
    return document


def _serialized_examples(document: dict[str, Any]) -> list[bytes]:
    """Serialized tf.Examples from ``examples`` (and ``context``, merged into each) JSON objects."""
    examples = document.get("examples")
    if not isinstance(examples, list) or not examples:
        raise invalid_argument("'examples' must be a non-empty list of objects of feature name -> value")
    context = document.get("context")
    prefix = example_from_features(context, "context").SerializeToString() if context is not None else b""
    # Serialized protos concatenate as a merge: the example's features override the context's.
    return [
        prefix + example_from_features(example, f"examples[{index}]").SerializeToString()
        for index, example in enumerate(examples)
    ]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlpipe-serving"
    disable_nagle_algorithm = True
    timeout = 300  # seconds an idle keep-alive connection stays open
    server: _HttpServer

    def _dispatch(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._reply(
                411, {"error": "chunked request bodies are not supported; send a Content-Length"}, close=True
            )
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self._reply(400, {"error": "invalid Content-Length header"}, close=True)
            return
        if length > self.server.max_request_bytes:
            self._reply(
                413,
                {
                    "error": f"request body of {length} bytes exceeds the limit of {self.server.max_request_bytes} bytes"
                },
                close=True,
            )
            return
        body = self.rfile.read(length) if length else b""
        status, content_type, payload = self.server.api.handle(self.command, self.path, body)
        self._send(status, content_type, payload, close=False)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    def do_HEAD(self) -> None:
        self._send(400, JSON_TYPE, b"", close=False)

    def _reply(self, status: int, payload: Any, close: bool) -> None:
        self._send(status, JSON_TYPE, json.dumps(payload).encode("utf-8"), close)

    def _send(self, status: int, content_type: str, payload: bytes, close: bool) -> None:
        """Status line, headers and body in one write: each socket call gives up the GIL and must win
        it back, which under many connections costs more than building the bytes."""
        self.log_request(status, len(payload))
        reason = self.responses.get(status, ("",))[0]
        head = (
            f"{self.protocol_version} {status} {reason}\r\nServer: {self.version_string()}\r\n"
            f"Date: {self.date_time_string()}\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
        )
        if close:
            head += "Connection: close\r\n"
            self.close_connection = True
        body = payload if self.command != "HEAD" else b""
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed HTTP (bad request line, huge headers, unknown method) answers JSON too."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # an unparsable request line: answer with a status line anyway
            self.request_version = "HTTP/1.0"
        self._reply(code, {"error": message or explain or "malformed HTTP request"}, close=True)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen backlog: many clients connecting at once must not be refused

    def __init__(self, address: tuple[str, int], api: RestApi, max_request_bytes: int):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.api = api
        self.max_request_bytes = max_request_bytes
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can hang without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End keep-alive connections, so no request runs after the server stopped."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class RestServer:
    """The HTTP listener: one thread accepting, one thread per client connection."""

    def __init__(self, api: RestApi, host: str, port: int, max_request_bytes: int):
        try:
            self._server = _HttpServer((host, port), api, max_request_bytes)
        except OSError as error:
            raise ServingError(
                f"cannot listen for REST on {host}:{port}: {error.strerror or error}"
            ) from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="mlpipe-rest", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_port

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        self._server.close_connections()
