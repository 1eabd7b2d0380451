"""The REST API against TF Serving's documented shapes, and in-process SavedModel calls."""

from __future__ import annotations

import base64
import json
import re
import socket

import numpy as np
import pytest

from mlpipe.serving import Client, ServingRequestError, serialize_example
from tests.serving.conftest import requests_counted

TRIPS = [
    {"trip_miles": 2.0, "hour": 3, "company": "abc"},
    {"trip_miles": 0.5, "company": "flash cab"},
    {"trip_miles": 7.25, "hour": 23},
]


def call_signature(loaded, model, signature, **inputs):
    """The SavedModel signature called in this process: numpy outputs."""
    import tensorflow as tf

    outputs = loaded[model].signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_status_matches_tf_serving_shape(rest, server):
    status, body = rest("GET", "/v1/models/taxi")
    assert status == 200
    assert body == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def test_status_of_all_versions_newest_first_and_by_version_or_label(rest, server):
    _, every = rest("GET", "/v1/models/linear")
    assert [(s["version"], s["state"]) for s in every["model_version_status"]] == [
        ("2", "AVAILABLE"),
        ("1", "AVAILABLE"),
    ]
    _, one = rest("GET", "/v1/models/linear/versions/1")
    assert [s["version"] for s in one["model_version_status"]] == ["1"]
    _, labelled = rest("GET", "/v1/models/linear/labels/canary")
    assert [s["version"] for s in labelled["model_version_status"]] == ["2"]


def test_metadata_matches_tf_serving_shape(rest, server):
    status, body = rest("GET", "/v1/models/linear/metadata")
    assert status == 200
    assert set(body) == {"model_spec", "metadata"}
    assert body["model_spec"] == {"name": "linear", "signature_name": "", "version": "2"}
    assert set(body["metadata"]) == {"signature_def"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "__saved_model_init_op"} <= set(signatures)
    default = signatures["serving_default"]
    assert set(default) == {"inputs", "outputs", "method_name", "defaults"}
    assert default["method_name"] == "tensorflow/serving/predict"
    x = default["inputs"]["x"]
    assert set(x) == {"name", "dtype", "tensor_shape"} and isinstance(x["name"], str)
    assert x["dtype"] == "DT_FLOAT"
    assert x["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}, {"size": "3", "name": ""}],
        "unknown_rank": False,
    }
    assert default["outputs"]["y"]["tensor_shape"]["dim"][1]["size"] == "2"
    _, versioned = rest("GET", "/v1/models/linear/versions/1/metadata")
    assert versioned["model_spec"]["version"] == "1"


def test_row_and_columnar_predictions_equal_the_in_process_call(rest, server, loaded):
    x = np.array([[1.0, 2.0, 3.0], [-0.5, 0.25, 8.0]], np.float32)
    expected = call_signature(loaded, "linear_v2", "serving_default", x=x)["y"]
    _, rows = rest("POST", "/v1/models/linear:predict", {"instances": x.tolist()})
    np.testing.assert_array_equal(np.array(rows["predictions"], np.float32), expected)
    _, columns = rest("POST", "/v1/models/linear:predict", {"inputs": {"x": x.tolist()}})
    np.testing.assert_array_equal(np.array(columns["outputs"], np.float32), expected)
    _, bare = rest("POST", "/v1/models/linear:predict", {"inputs": x.tolist()})
    assert bare == columns


def test_versions_and_labels_choose_the_model(rest, server, loaded):
    x = np.array([[1.0, 1.0, 1.0]], np.float32)
    v1 = call_signature(loaded, "linear_v1", "serving_default", x=x)["y"].tolist()
    v2 = call_signature(loaded, "linear_v2", "serving_default", x=x)["y"].tolist()
    assert v1 != v2
    for path, expected in (
        ("/v1/models/linear/versions/1:predict", v1),
        ("/v1/models/linear/labels/stable:predict", v1),
        ("/v1/models/linear/labels/canary:predict", v2),
        ("/v1/models/linear:predict", v2),
    ):
        status, body = rest("POST", path, {"instances": x.tolist()})
        assert (status, body["predictions"]) == (200, expected), path


def test_several_inputs_and_outputs_answer_objects(rest, server, loaded):
    a = np.array([[1.0, 2.0], [0.5, 0.25]], np.float32)
    b = np.array([3, -1], np.int64)
    expected = call_signature(loaded, "multi", "serving_default", a=a, b=b)
    instances = [{"a": a[i].tolist(), "b": int(b[i])} for i in range(2)]
    _, rows = rest("POST", "/v1/models/multi:predict", {"instances": instances})
    assert rows["predictions"] == [
        {"total": float(expected["total"][0]), "name": "n3", "raw_bytes": {"b64": b64(b"3")}},
        {"total": float(expected["total"][1]), "name": "n-1", "raw_bytes": {"b64": b64(b"-1")}},
    ]
    _, columns = rest("POST", "/v1/models/multi:predict", {"inputs": {"a": a.tolist(), "b": b.tolist()}})
    assert columns["outputs"] == {
        "total": expected["total"].tolist(),
        "name": ["n3", "n-1"],
        "raw_bytes": [{"b64": b64(b"3")}, {"b64": b64(b"-1")}],
    }


def test_strings_and_b64_bytes_and_scalar_signatures(rest, server):
    body = {"signature_name": "length", "instances": ["héllo", {"b64": b64(b"\xff\x00")}]}
    status, answer = rest("POST", "/v1/models/multi:predict", body)
    assert (status, answer) == (200, {"predictions": [6, 2]})
    status, answer = rest("POST", "/v1/models/multi:predict", {"signature_name": "scale", "inputs": 2.0})
    assert (status, answer) == (200, {"outputs": 6.0})


def test_serialized_examples_as_b64_instances(rest, server, loaded):
    serialized = [serialize_example(trip) for trip in TRIPS]
    expected = call_signature(loaded, "taxi", "serving_default", examples=np.array(serialized, dtype=object))
    bare = {"instances": [{"b64": b64(s)} for s in serialized]}
    _, answer = rest("POST", "/v1/models/taxi:predict", bare)
    np.testing.assert_array_equal(np.array(answer["predictions"], np.float32), expected["output_0"])
    named = {"instances": [{"examples": {"b64": b64(s)}} for s in serialized]}
    _, answer_named = rest("POST", "/v1/models/taxi:predict", named)
    assert answer_named == answer
    client_answer = Client(server.rest_address, model="taxi").predict_examples(TRIPS)
    assert client_answer == answer["predictions"]


def test_classify_and_regress_take_json_examples(rest, server, loaded):
    serialized = np.array([serialize_example(trip) for trip in TRIPS], dtype=object)
    classes = call_signature(loaded, "taxi", "classes", examples=serialized)
    values = call_signature(loaded, "taxi", "value", examples=serialized)["outputs"]
    status, answer = rest(
        "POST", "/v1/models/taxi:classify", {"signature_name": "classes", "examples": TRIPS}
    )
    assert status == 200 and set(answer) == {"results"}
    assert answer["results"] == [
        [["no", float(classes["scores"][i][0])], ["yes", float(classes["scores"][i][1])]]
        for i in range(len(TRIPS))
    ]
    status, answer = rest("POST", "/v1/models/taxi:regress", {"signature_name": "value", "examples": TRIPS})
    assert (status, answer) == (200, {"results": [float(v) for v in values]})


def test_classify_on_a_tfx_serving_default_answers_its_scores(rest, server, loaded):
    serialized = np.array([serialize_example(trip) for trip in TRIPS], dtype=object)
    probabilities = call_signature(loaded, "taxi", "serving_default", examples=serialized)["output_0"]
    _, answer = rest("POST", "/v1/models/taxi:classify", {"examples": TRIPS})
    assert answer == {"results": [[["", float(p[0])]] for p in probabilities]}


def test_context_features_merge_into_each_example(rest, server, loaded):
    body = {
        "signature_name": "value",
        "context": {"company": "abcd", "hour": 2},
        "examples": [{"trip_miles": 1.0}, {"trip_miles": 2.0, "hour": 5}],
    }
    merged = [
        {"trip_miles": 1.0, "company": "abcd", "hour": 2},
        {"trip_miles": 2.0, "company": "abcd", "hour": 5},
    ]
    expected = call_signature(
        loaded, "taxi", "value", examples=np.array([serialize_example(m) for m in merged], dtype=object)
    )["outputs"]
    _, answer = rest("POST", "/v1/models/taxi:regress", body)
    assert answer == {"results": [float(v) for v in expected]}


def test_tf_serving_classify_and_regress_signatures(rest, loaded):
    examples = [{"word": "ab"}, {"word": "abcdefgh"}]
    serialized = np.array([serialize_example(e) for e in examples], dtype=object)
    scores = call_signature(loaded, "strict", "tfs_classify", inputs=serialized)["scores"]
    _, answer = rest(
        "POST", "/v1/models/strict:classify", {"signature_name": "tfs_classify", "examples": examples}
    )
    assert answer == {"results": [[["short", float(row[0])], ["long", float(row[1])]] for row in scores]}
    _, answer = rest(
        "POST", "/v1/models/strict:regress", {"signature_name": "tfs_regress", "examples": examples}
    )
    assert answer == {"results": [float(len(s)) for s in serialized]}


def _deep(n: int) -> str:
    return '{"instances": ' + "[" * n + "]" * n + "}"


def _deep_strings(n: int) -> str:
    return '{"signature_name": "length", "instances": ' + "[" * n + '"a"' + "]" * n + "}"


MALFORMED = [
    # (method, path, body, status, error pattern)
    ("POST", "/v1/models/linear:predict", "{not json", 400, "JSON Parse error"),
    ("POST", "/v1/models/linear:predict", "[1, 2]", 400, "must be a JSON object"),
    ("POST", "/v1/models/linear:predict", "", 400, "JSON Parse error"),
    ("POST", "/v1/models/linear:predict", b"\xff\xfe{}", 400, "JSON Parse error"),
    ("POST", "/v1/models/linear:predict", _deep(100_000), 400, "JSON Parse error"),
    ("POST", "/v1/models/multi:predict", _deep_strings(40), 400, "nested deeper than 32"),
    (
        "POST",
        "/v1/models/linear:predict",
        {"instances": [[1, 2, 3]], "inputs": [[1, 2, 3]]},
        400,
        "only one of",
    ),
    (
        "POST",
        "/v1/models/linear:predict",
        {"signature_name": "serving_default"},
        400,
        "Missing 'inputs' or 'instances'",
    ),
    ("POST", "/v1/models/linear:predict", {"instances": 5}, 400, "must be a JSON list"),
    ("POST", "/v1/models/linear:predict", {"instances": []}, 400, "empty list"),
    ("POST", "/v1/models/linear:predict", {"instances": [["a", "b", "c"]]}, 400, "expected number values"),
    ("POST", "/v1/models/linear:predict", {"instances": [[1, 2, 3], [1, 2]]}, 400, "ragged"),
    ("POST", "/v1/models/linear:predict", {"instances": [[1, 2]]}, 400, r"shape \[1, 2\]"),
    ("POST", "/v1/models/linear:predict", {"inputs": {"x": [[1, 2, 3]], "z": 1}}, 400, "unknown: \\['z'\\]"),
    ("POST", "/v1/models/linear:predict", {"instances": [[1, None, 3]]}, 400, "expected number values"),
    (
        "POST",
        "/v1/models/multi:predict",
        {"instances": [{"a": [1, 2], "b": 1.5}]},
        400,
        "expected integer values",
    ),
    ("POST", "/v1/models/multi:predict", {"instances": [{"a": [1, 2], "b": 2**70}]}, 400, "expected integer"),
    ("POST", "/v1/models/multi:predict", {"instances": [{"a": [1, 2]}]}, 400, "missing: \\['b'\\]"),
    (
        "POST",
        "/v1/models/multi:predict",
        {"instances": [{"a": [1, 2], "b": 1, "c": 0}]},
        400,
        "unknown: \\['c'\\]",
    ),
    ("POST", "/v1/models/multi:predict", {"instances": [{"a": [1, 2], "b": 1}, 5]}, 400, "mixes objects"),
    ("POST", "/v1/models/multi:predict", {"instances": [1, 2]}, 400, "must be an object naming them"),
    (
        "POST",
        "/v1/models/multi:predict",
        {"signature_name": "length", "instances": [["a"], "b"]},
        400,
        "ragged",
    ),
    (
        "POST",
        "/v1/models/multi:predict",
        {"signature_name": "length", "instances": [{"b64": "!!"}]},
        400,
        "not valid base64",
    ),
    (
        "POST",
        "/v1/models/multi:predict",
        {"signature_name": "length", "instances": [{"b64": 5}]},
        400,
        "must be a string",
    ),
    (
        "POST",
        "/v1/models/multi:predict",
        {"signature_name": "length", "instances": [7]},
        400,
        "expected strings",
    ),
    ("POST", "/v1/models/linear:predict", {"signature_name": "nope", "instances": [[1, 2, 3]]}, 400, "nope"),
    (
        "POST",
        "/v1/models/linear:predict",
        {"signature_name": 5, "instances": [[1, 2, 3]]},
        400,
        "signature_name",
    ),
    ("POST", "/v1/models/nope:predict", {"instances": [[1, 2, 3]]}, 404, "Servable not found"),
    (
        "POST",
        "/v1/models/linear/versions/9:predict",
        {"instances": [[1, 2, 3]]},
        404,
        r"Specific\(linear, 9\)",
    ),
    (
        "POST",
        "/v1/models/linear/labels/nope:predict",
        {"instances": [[1, 2, 3]]},
        400,
        "Unrecognized servable version label",
    ),
    (
        "POST",
        "/v1/models/linear/versions/1/labels/stable:predict",
        {"instances": [[1, 2, 3]]},
        400,
        "Malformed request",
    ),
    ("POST", "/v1/models/../linear:predict", {"instances": [[1, 2, 3]]}, 400, "Malformed request"),
    ("POST", "/v1/models/linear:explode", {"instances": [[1, 2, 3]]}, 400, "Malformed request"),
    ("POST", "/v1/models/linear", {"instances": [[1, 2, 3]]}, 400, "Malformed request"),
    ("GET", "/v1/models/linear:predict", None, 400, "Malformed request"),
    ("PUT", "/v1/models/linear", "{}", 400, "Malformed request"),
    ("DELETE", "/v1/models/linear", None, 400, "Malformed request"),
    ("GET", "/v1/models/../x", None, 400, "Malformed request"),
    ("GET", "/v1/models/linear/versions/abc", None, 400, "Malformed request"),
    ("GET", "/v1/models", None, 400, "Malformed request"),
    ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("GET", "/v1/models/linear/versions/7", None, 404, "Could not find version 7"),
    ("GET", "/v1/models/linear/versions/7/metadata", None, 404, "Servable not found"),
    ("GET", "/v1/models/linear/labels/nope", None, 400, "Unrecognized servable version label"),
    ("GET", "/v2/models/linear", None, 404, "no such path"),
    ("GET", "/", None, 404, "no such path"),
    ("POST", "/v1/models/taxi:classify", {"instances": [1]}, 400, "'examples' must be a non-empty list"),
    ("POST", "/v1/models/taxi:classify", {"examples": ["x"]}, 400, "must be an object"),
    ("POST", "/v1/models/taxi:classify", {"examples": [{"trip_miles": [[1.0]]}]}, 400, "flat list"),
    (
        "POST",
        "/v1/models/taxi:classify",
        {"examples": [{"trip_miles": [1.0, "a"]}]},
        400,
        "all strings/bytes or all numbers",
    ),
    ("POST", "/v1/models/taxi:regress", {"examples": [{"company": "x"}]}, 400, "trip_miles"),
    ("POST", "/v1/models/multi:classify", {"examples": [{"a": 1.0}]}, 400, "exactly one string input"),
    (
        "POST",
        "/v1/models/strict:regress",
        {"signature_name": "tfs_classify", "examples": [{"a": 1}]},
        400,
        "Expected regression signature method_name",
    ),
    ("POST", "/v1/models/linear:predict", {"instances": [[1, 2, 3]]}, 200, None),  # the server still answers
]


@pytest.mark.parametrize(("method", "path", "body", "expected_status", "pattern"), MALFORMED)
def test_malformed_requests_get_a_json_error_and_the_server_lives(
    rest, server, method, path, body, expected_status, pattern
):
    status, answer = rest(method, path, body)
    assert status == expected_status, answer
    if pattern is not None:
        assert isinstance(answer, dict) and set(answer) == {"error"} and isinstance(answer["error"], str)
        assert re.search(pattern, answer["error"]), answer["error"]
    alive, _ = rest("GET", "/v1/models/taxi")
    assert alive == 200


def _raw(address: str, request: bytes) -> tuple[int, dict]:
    """Send raw bytes (for requests http.client refuses to make); read one response."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _content_length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body)


def _content_length(data: bytes) -> int:
    match = re.search(rb"Content-Length: (\d+)", data)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize(
    ("request_bytes", "expected_status", "pattern"),
    [
        (
            b"POST /v1/models/linear:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n",
            413,
            "exceeds",
        ),
        (
            b"POST /v1/models/linear:predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            400,
            "Content-Length",
        ),
        (
            b"POST /v1/models/linear:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            411,
            "chunked",
        ),
        (b"GARBAGE\r\n\r\n", 400, "Bad request syntax"),
        (b"BREW /v1/models/linear HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Unsupported method"),
    ],
)
def test_transport_level_errors_answer_json(rest, server, request_bytes, expected_status, pattern):
    status, answer = _raw(server.rest_address, request_bytes)
    assert status == expected_status
    assert re.search(pattern, answer["error"])
    assert rest("GET", "/v1/models/taxi")[0] == 200


def test_a_kept_alive_connection_survives_errors(rest, server):
    client = Client(server.rest_address, model="linear")
    with pytest.raises(ServingRequestError, match="ragged"):
        client.predict([[1, 2, 3], [1]])
    assert client.predict([[0, 0, 0]]) == [[0.5, -0.5]]


def test_prometheus_metrics_count_requests(rest, server):
    before = requests_counted(rest, "taxi")
    client = Client(server.rest_address, model="taxi")
    for _ in range(3):
        client.predict_examples(TRIPS[:1])
    assert requests_counted(rest, "taxi") == before + 3
    _, text = rest("GET", "/monitoring/prometheus/metrics")
    assert b"# TYPE :tensorflow:serving:request_latency histogram" in text
    assert re.search(
        rb'request_latency_count\{model_name="taxi",API="predict",entrypoint="REST"\} [1-9]', text
    )
    assert b"batching" not in text  # batching is off: no empty batching series


def _read_responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` responses (head, body) from a raw connection, in the order they arrive."""
    data, responses = b"", []
    while len(responses) < count:
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _content_length(data):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {len(responses)} responses")
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        length = _content_length(head)
        responses.append((head, rest[:length]))
        data = rest[length:]
    return responses


def test_pipelined_requests_are_answered_in_order_and_http_1_0_closes(server):
    host, port = server.rest_address.rsplit(":", 1)

    def predict(x: float, version: str = "1.1") -> bytes:
        body = json.dumps({"instances": [[x, 0, 0]]}).encode()
        return (
            f"POST /v1/models/linear/versions/1:predict HTTP/{version}\r\nHost: x\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(predict(1) + b"\r\n" + predict(2) + predict(3))  # a stray CRLF between requests
        answers = [json.loads(body)["predictions"] for _, body in _read_responses(sock, 3)]
        assert answers == [[[1.5, 0.5]], [[2.5, 1.5]], [[3.5, 2.5]]]
        sock.sendall(predict(4, version="1.0"))
        ((head, body),) = _read_responses(sock, 1)
        assert b"Connection: close" in head and json.loads(body) == {"predictions": [[4.5, 3.5]]}
        assert sock.recv(1) == b""  # HTTP/1.0 without keep-alive: the server closed


def test_expect_100_continue_gets_an_interim_response(server):
    host, port = server.rest_address.rsplit(":", 1)
    body = json.dumps({"instances": [[1, 1, 1]]}).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/models/linear/versions/1:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        ((head, answer),) = _read_responses(sock, 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and json.loads(answer) == {"predictions": [[3.5, 2.5]]}
