"""Edge cases of the REST API answered as TF Serving answers them (rules cited in the code under test).

Oracles: TF Serving's source (``tensorflow_serving/util/json_tensor.cc``,
``model_servers/http_rest_api_handler.cc``) for what is refused and with which message, and the
SavedModel called in this process for what is accepted.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tests.serving.raw_http import exchange


def _scale(loaded, x: float) -> float:
    import tensorflow as tf

    return float(loaded["multi"].signatures["scale"](x=tf.constant(x, tf.float32))["scaled"].numpy())


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN"])
def test_nan_and_infinity_tokens_are_float_inputs_and_come_back_as_tokens(server, loaded, token):
    body = b'{"signature_name": "scale", "inputs": %s}' % token.encode()
    request = b"POST /v1/models/multi:predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    response = exchange(server.rest_address, request + body)
    assert response.status == 200, response
    expected = _scale(loaded, float(token))
    assert math.isnan(expected) if token == "NaN" else math.isinf(expected)
    # TF Serving's WriteDecimal writes these exact tokens; JSON parsers that accept them read them back.
    assert response.body.replace(b" ", b"") == b'{"outputs":%s}' % token.encode()


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ('{"instances": [[1e400, 0, 0]]}', r"^JSON Parse error: Number too big to be stored in double"),
        ('{"instances": [[-1e400, 0, 0]]}', r"^JSON Parse error: Number too big to be stored in double"),
        (
            '{"inputs": [[1' + "0" * 400 + ", 0, 0]]}",
            r"^JSON Parse error: Number too big to be stored in double",
        ),
        (
            '{"instances": [[1e39, 0, 0]]}',
            r"Cannot convert JSON value: 1e\+39 to float without loss of precision",
        ),
        ('{"inputs": [[0, -3.5e38, 0]]}', r"Cannot convert JSON value: -3\.5e\+38 to float without loss"),
        ('{"instances": [[16777217, 0, 0]]}', r"Cannot convert JSON value: 16777217 to float without loss"),
        ('{"instances": [[-16777217, 0, 0]]}', r"Cannot convert JSON value: -16777217 to float without loss"),
    ],
)
def test_numbers_a_float_cannot_hold_are_a_400_not_infinity(rest, body, pattern):
    status, answer = rest("POST", "/v1/models/linear/versions/1:predict", body)
    assert status == 400, answer
    assert re.search(pattern, answer["error"]), answer["error"]


@pytest.mark.parametrize("value", [3.4e38, 16777215, -16777215, 1e-50])
def test_numbers_a_float_holds_are_served(rest, loaded, value):
    import tensorflow as tf

    status, answer = rest("POST", "/v1/models/linear/versions/1:predict", {"instances": [[value, 0, 0]]})
    assert status == 200, answer
    x = tf.constant([[value, 0, 0]], tf.float32)
    expected = loaded["linear_v1"].signatures["serving_default"](x=x)["y"].numpy()
    np.testing.assert_array_equal(np.asarray(answer["predictions"], np.float32), expected)


@pytest.mark.parametrize(
    ("features", "pattern"),
    [
        ({"trip_miles": 1e39}, r"Cannot convert JSON value: 1e\+39 to float without loss of precision"),
        ({"trip_miles": 1.0, "hour": 2**63}, r"Feature: hour has uint64 element\. Only int64 is supported\."),
        ({"trip_miles": 1.0, "hour": 2**64 - 1}, r"Feature: hour has uint64 element"),
    ],
)
def test_example_features_follow_the_same_number_rules(rest, features, pattern):
    status, answer = rest(
        "POST", "/v1/models/taxi:regress", {"signature_name": "value", "examples": [features]}
    )
    assert status == 400, answer
    assert re.search(pattern, answer["error"]), answer["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models/linear/versions/9223372036854775808"),
        ("GET", "/v1/models/linear/versions/99999999999999999999/metadata"),
        ("POST", "/v1/models/linear/versions/99999999999999999999:predict"),
    ],
)
def test_a_version_beyond_int64_is_a_400(rest, method, path):
    body = {"instances": [[1, 2, 3]]} if method == "POST" else None
    status, answer = rest(method, path, body)
    assert status == 400, answer
    version = re.search(r"versions/(\d+)", path).group(1)
    assert answer["error"] == f"Failed to convert version: {version} to numeric."


def test_the_largest_int64_version_is_a_well_formed_request_for_a_missing_version(rest):
    status, answer = rest("GET", "/v1/models/linear/versions/9223372036854775807")
    assert status == 404, answer
