"""TF Serving's REST API (``/v1/models/...``): routing, JSON in and out (the transport is ``http_transport``).

Routing mirrors TF Serving: a POST must match ``/v1/models/{name}[/versions/{v}|/labels/{l}]:{predict|
classify|regress}`` and a GET ``/v1/models/{name}[/versions/{v}|/labels/{l}][/metadata]``; anything
else under ``/v1/`` is a 400 "Malformed request" (this is how a version and a label together, a
wrong method or a path like ``/v1/models/../x`` are refused); other paths are 404. Every error is
``{"error": "..."}`` with TF Serving's HTTP status for its code.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from typing import Any

from mlpipe.serving.examples import example_from_features
from mlpipe.serving.inference import InferenceRunner, ModelSpec
from mlpipe.serving.metrics import PROMETHEUS_PATH, ServingMetrics
from mlpipe.serving.status import ServingRequestError, invalid_argument
from mlpipe.serving.tensor_json import decode_columnar, decode_instances, encode_columns, encode_rows

log = logging.getLogger(__name__)

_TARGET = r"/v1/models/([^/:]+)(?:/versions/([0-9]+)|/labels/([^/:]+))?"  # RE2's \d is ASCII only
_POST_PATH = re.compile(_TARGET + r":(predict|classify|regress)", re.IGNORECASE)
_GET_PATH = re.compile(_TARGET + r"(/metadata)?", re.IGNORECASE)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
JSON_TYPE = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class RestApi:
    """Answers one REST request: method, path and body in; HTTP status, content type and body out."""

    def __init__(self, runner: InferenceRunner, metrics: ServingMetrics):
        self.runner = runner
        self.metrics = metrics

    async def handle(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
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
            spec_version = _version_number(version) if version is not None else None
            if method == "POST":
                api = action.lower()
                result = await self._post(api, model_name, spec_version, label, body)
            elif action:
                api = "metadata"
                result = self._metadata(ModelSpec(model_name, spec_version, label))
            else:
                api = "status"
                result = self._status(model_name, spec_version, label)
            status, payload = 200, result
        except ServingRequestError as error:
            code, status, payload = error.code, error.http_status, {"error": error.message}
        except Exception as error:  # a bug must answer 500, not end the connection
            log.exception("REST %s %s failed", method, path)
            code, status, payload = (
                "INTERNAL",
                500,
                {"error": f"internal error: {type(error).__name__}: {error}"},
            )
        if model_name in self.runner.manager:  # unknown names from requests must not grow the metrics
            self.metrics.record(model_name, api, "REST", code, time.perf_counter() - started)
        return status, JSON_TYPE, json.dumps(payload).encode("utf-8")

    async def _post(self, api: str, name: str, version: int | None, label: str | None, body: bytes) -> Any:
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
                return {"predictions": encode_rows(await self.runner.predict(servable, signature, inputs))}
            inputs = decode_columnar(document["inputs"], dtypes)
            return {"outputs": encode_columns(await self.runner.predict(servable, signature, inputs))}
        examples = _serialized_examples(document)
        if api == "classify":
            results = await self.runner.classify(servable, signature, examples)
            return {"results": [[[label, score] for label, score in row] for row in results]}
        return {"results": await self.runner.regress(servable, signature, examples)}

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


def _version_number(text: str) -> int:
    """A version from the path; beyond int64 is a malformed request, as TF Serving's ``SimpleAtoi``
    into an int64 makes it (``model_servers/http_rest_api_handler.cc``), not a missing version."""
    version = int(text)
    if version > INT64_MAX:
        raise invalid_argument(f"Failed to convert version: {text} to numeric.")
    return version


class _NumberTooBig(ValueError):
    pass


def _json_float(text: str) -> float:
    """A JSON number with a fraction or exponent, read as RapidJSON reads it for TF Serving.

    TF Serving parses with ``kParseNanAndInfFlag`` (``util/json_tensor.cc``, ``ParseJson``): the
    tokens ``NaN``, ``Infinity`` and ``-Infinity`` are values (Python's parser takes the same three),
    but a number too large for a double is a parse error, not infinity.
    """
    value = float(text)
    if math.isinf(value):
        raise _NumberTooBig(f"Number too big to be stored in double: {text:.40}")
    return value


def _json_int(text: str) -> int | float:
    """A JSON integer as RapidJSON reads it: int64 or uint64, else a double (or too big for one)."""
    value = int(text)
    if -INT64_MAX - 1 <= value <= UINT64_MAX:
        return value
    try:
        return float(value)
    except OverflowError:
        raise _NumberTooBig(f"Number too big to be stored in double: {text:.40}") from None


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        # The hooks cost ~10% of the parse on a body of floats, ~2x on one of integers: the price of
        # TF Serving's answers for 1e400 and integers beyond uint64.
        document = json.loads(body, parse_float=_json_float, parse_int=_json_int)
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
