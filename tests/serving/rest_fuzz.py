"""Fuzz a running REST server: schemathesis from the OpenAPI description, plus raw malformed HTTP.

Shared by ``test_rest_fuzz.py`` (bounded, in CI) and ``bench/serving_fuzz.py`` (the long run).
Three sources of requests:
- schemathesis cases for every operation of ``docs/tf-serving-openapi.yaml``, positive (valid by the
  schema) and negative (violating it), each checked for a server error (5xx), and for the status,
  content type and body the description declares;
- raw HTTP/1.1 from the generator of ``test_http_parser_vs_h11.py`` (bare CR/LF, odd names and
  values, bad lengths and codings), each on its own connection: any answer but a 5xx passes, and
  501/505 are HTTP's own answers to an unknown method or coding and an unsupported version;
- TF Serving documents aimed at the models (``tf_serving_requests``): every API path, real and
  missing models, versions and labels (some beyond int64), and bodies of nested tensors with the
  numbers that break converters (NaN/Infinity tokens, 1e400, float32 overflow, 2**24 + 1, 2**63,
  huge integers), bad base64, ragged lists, wrong keys, deep nesting and bytes that are not JSON.
  schemathesis generates slowly here (about 5 cases/s), so this generator gives the volume.
After all, a valid request must still be answered correctly.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from tests.serving.raw_http import connect, read_response

SPEC = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "docs", "tf-serving-openapi.yaml")
PROTOCOL_ANSWERS = {501, 505}  # unknown method or Transfer-Encoding, HTTP version other than 1.x


@dataclass
class FuzzReport:
    requests: int = 0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    server_errors: list[str] = field(default_factory=list)  # 5xx answers: must stay empty
    nonconforming: list[str] = field(default_factory=list)  # answers that break the description
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": len(self.server_errors),
            "nonconforming": len(self.nonconforming),
            "seconds": round(self.seconds, 1),
        }


def fuzz_openapi(address: str, examples: int, seed: int, report: FuzzReport) -> None:
    """``examples`` positive and ``examples // 2`` negative cases per operation."""
    import schemathesis
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_path(SPEC)
    session = requests.Session()
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    started = time.perf_counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, count in ((GenerationMode.POSITIVE, examples), (GenerationMode.NEGATIVE, examples // 2)):
            if count:
                validate = checks if mode is GenerationMode.POSITIVE else None
                strategy = operation.as_strategy(generation_mode=mode)
                _fuzz_operation(strategy, count, seed, f"http://{address}", session, validate, report)
    report.seconds += time.perf_counter() - started


def _fuzz_operation(strategy, count, seed, base_url, session, checks, report: FuzzReport) -> None:
    """``count`` cases of one operation; failures are recorded (not raised, so not shrunk)."""

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        response = case.call(base_url=base_url, session=session, timeout=30)
        report.requests += 1
        report.statuses[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
        if response.status_code >= 500:
            report.server_errors.append(where)
        elif checks is not None:
            try:
                case.validate_response(response, checks=checks)
            except AssertionError as failure:
                report.nonconforming.append(f"{where} ({str(failure)[:300]})")

    try:
        run()
    except Unsatisfiable:  # e.g. no negative case for an operation without parameters or body
        pass


def fuzz_raw(address: str, examples: int, report: FuzzReport) -> None:
    """``examples`` malformed (or odd but valid) raw requests, each on a fresh connection."""
    from tests.serving.test_http_parser_vs_h11 import raw_requests

    started = time.perf_counter()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(raw_requests())
    def run(data: bytes) -> None:
        with connect(address, timeout=30) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)  # the request is all there is: the server must not wait
            pending = bytearray()
            while True:
                try:
                    response = read_response(sock, pending)
                except ConnectionError:
                    break
                report.requests += 1
                report.statuses[response.status] += 1
                if response.status >= 500 and response.status not in PROTOCOL_ANSWERS:
                    report.server_errors.append(f"{data!r} -> {response.status}: {response.body[:200]!r}")

    run()
    report.seconds += time.perf_counter() - started


_NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from(
        [16777215, 16777216, 16777217, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e39, -3.5e38, 3.4e38, 1e-50, 5e-324, 1.7976931348623157e308, -0.0]),
)
_PLAIN = st.floats(-1e6, 1e6, allow_nan=False)
_B64 = st.builds(
    lambda text: {"b64": text},
    st.one_of(st.sampled_from(["AAEC", "aGk=", "not base64", ""]), st.text(max_size=6)),
)
_SCALARS = st.one_of(_NUMBERS, st.booleans(), st.none(), st.text(max_size=6), _B64)
_TENSORS = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4), max_leaves=12)
_FEATURES = st.dictionaries(
    st.sampled_from(["trip_miles", "hour", "company", "x", "inputs", "a", "b", "text"]),
    st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3), _TENSORS),
    max_size=4,
)
_INPUTS = st.one_of(
    _TENSORS, st.dictionaries(st.sampled_from(["x", "a", "b", "text", "examples", "y"]), _TENSORS, max_size=3)
)
_SIGNATURES = st.sampled_from(
    ["", "serving_default", "length", "scale", "classes", "value", "tfs_classify", "tfs_regress", "nope"]
)


@st.composite
def _documents(draw) -> bytes:
    kind = draw(st.sampled_from(["instances", "inputs", "examples", "both", "junk", "deep"]))
    if kind == "junk":
        return draw(
            st.one_of(
                st.binary(max_size=40),
                st.sampled_from(
                    [
                        b"",
                        b"[]",
                        b"null",
                        b"{",
                        b'{"instances": [1e400]}',
                        b'{"inputs": NaN}',
                        b'{"inputs": Inf}',
                        b"\xff\xfe{}",
                    ]
                ),
            )
        )
    if kind == "deep":
        depth = draw(st.sampled_from([33, 1000, 100_000]))
        return b'{"instances": ' + b"[" * depth + b"1" + b"]" * depth + b"}"
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["signature_name"] = draw(st.one_of(_SIGNATURES, st.integers()))
    if kind in ("instances", "both"):
        document["instances"] = draw(st.one_of(st.lists(st.one_of(_TENSORS, _INPUTS), max_size=4), _SCALARS))
    if kind in ("inputs", "both"):
        document["inputs"] = draw(_INPUTS)
    if kind == "examples":
        document["examples"] = draw(st.one_of(st.lists(_FEATURES, max_size=3), _SCALARS))
        if draw(st.booleans()):
            document["context"] = draw(st.one_of(_FEATURES, _SCALARS))
    return json.dumps(document).encode()  # NaN and infinities as the tokens TF Serving accepts


@st.composite
def tf_serving_requests(draw) -> tuple[str, str, bytes]:
    """(method, path, body) for the TF Serving REST API: half aimed at a served model's signature
    (most answer 200), half anything the API's paths and documents allow."""
    if draw(st.booleans()):
        rows = st.lists(
            st.lists(st.one_of(_PLAIN, _PLAIN, _NUMBERS), min_size=3, max_size=3), min_size=1, max_size=4
        )
        trip = st.fixed_dictionaries(
            {"trip_miles": st.one_of(_PLAIN, _PLAIN, _NUMBERS)},
            optional={"hour": st.one_of(st.integers(0, 23), _NUMBERS), "company": st.text(max_size=5)},
        )
        version = draw(
            st.sampled_from(["", "/versions/1", "/versions/2", "/labels/stable", "/labels/canary"])
        )
        aimed = draw(
            st.sampled_from(
                [
                    (f"/v1/models/linear{version}:predict", st.fixed_dictionaries({"instances": rows})),
                    (f"/v1/models/linear{version}:predict", st.fixed_dictionaries({"inputs": rows})),
                    (
                        "/v1/models/taxi:classify",
                        st.fixed_dictionaries(
                            {
                                "signature_name": st.just("classes"),
                                "examples": st.lists(trip, min_size=1, max_size=3),
                            }
                        ),
                    ),
                    (
                        "/v1/models/taxi:regress",
                        st.fixed_dictionaries(
                            {
                                "signature_name": st.just("value"),
                                "examples": st.lists(trip, min_size=1, max_size=3),
                            }
                        ),
                    ),
                    (
                        "/v1/models/multi:predict",
                        st.fixed_dictionaries(
                            {
                                "inputs": st.fixed_dictionaries(
                                    {
                                        "a": rows.map(lambda r: [x[:2] for x in r]),
                                        "b": st.lists(
                                            st.one_of(st.integers(-9, 9), _NUMBERS), min_size=1, max_size=4
                                        ),
                                    }
                                )
                            }
                        ),
                    ),
                ]
            )
        )
        return "POST", aimed[0], json.dumps(draw(aimed[1])).encode()
    model = draw(st.sampled_from(["linear", "multi", "taxi", "strict", "nosuch", "LINEAR", "a%2Fb"]))
    where = draw(
        st.sampled_from(
            ["", "/versions/1", "/versions/2", "/versions/3", "/labels/stable", "/labels/canary", "/labels/x"]
        )
        | st.sampled_from(
            [
                "/versions/9223372036854775807",
                "/versions/9223372036854775808",
                "/versions/99999999999999999999999",
            ]
        )
        | st.sampled_from(["/versions/1/labels/stable", "/versions/", "/versions/-1", "/versions/1.0"])
    )
    if draw(st.integers(0, 4)) == 0:
        suffix = draw(st.sampled_from(["", "/metadata", "/metadata/x", ":predict"]))
        method = draw(st.sampled_from(["GET", "GET", "DELETE", "PUT"]))
        return method, f"/v1/models/{model}{where}{suffix}", b""
    action = draw(
        st.sampled_from([":predict", ":predict", ":classify", ":regress", ":PREDICT", ":explain", ""])
    )
    return "POST", f"/v1/models/{model}{where}{action}", draw(_documents())


def fuzz_documents(address: str, examples: int, seed: int, report: FuzzReport) -> None:
    """``examples`` requests from :func:`tf_serving_requests` on a kept-alive connection."""
    started = time.perf_counter()
    connection: list[socket.socket] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(tf_serving_requests())
    def run(request: tuple[str, str, bytes]) -> None:
        method, path, body = request
        data = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        if not connection:
            connection.append(connect(address, timeout=60))
        sock = connection[0]
        sock.sendall(data)
        response = read_response(sock)
        report.requests += 1
        report.statuses[response.status] += 1
        if response.status >= 500:
            report.server_errors.append(
                f"{method} {path} {body[:200]!r} -> {response.status}: {response.body[:300]!r}"
            )
        if response.headers.get("connection") == "close":
            connection.pop().close()

    try:
        run()
    finally:
        for sock in connection:
            sock.close()
    report.seconds += time.perf_counter() - started


def still_answers(address: str) -> bool:
    """A valid predict on the fuzzed server gives the model's answer (linear v1: x @ ones + bias)."""
    answer = requests.post(
        f"http://{address}/v1/models/linear/versions/1:predict", json={"instances": [[1, 2, 3]]}, timeout=30
    )
    return answer.status_code == 200 and answer.json() == {"predictions": [[6.5, 5.5]]}
