"""The serving benchmark's hand-framed HTTP/2 gRPC client, against the built-in server.

The benchmark's gRPC numbers are only as good as this client: every call it counts must be a
Predict the server answered OK, and every failure must count as an error.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from tests.serving.conftest import requests_counted
from tests.serving.test_grpc import predict_request

CLIENT_FILE = Path(__file__).parents[2] / "bench" / "http2_grpc_client.py"
PREDICT = "/tensorflow.serving.PredictionService/Predict"


def _client_module():
    spec = importlib.util.spec_from_file_location("http2_grpc_client", CLIENT_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_call_is_a_predict_the_server_answered_and_failures_are_errors(server, rest):
    client = _client_module()
    ok = predict_request("linear", {"x": np.ones((1, 3), np.float32)}).SerializeToString()
    unknown_version = predict_request("linear", {"x": np.ones((1, 3), np.float32)}, version=9)

    before = requests_counted(rest, "linear")
    connection = client.Http2GrpcConnection(server.grpc_address, PREDICT, ok)
    try:
        latencies, errors, elapsed = client.run_calls(connection, concurrency=8, total=300)
    finally:
        connection.close()
    assert (len(latencies), errors) == (300, 0)
    assert 0 < max(latencies) <= elapsed
    assert requests_counted(rest, "linear") == before + 300

    failed_before = requests_counted(rest, "linear", "NOT_FOUND")
    connection = client.Http2GrpcConnection(server.grpc_address, PREDICT, unknown_version.SerializeToString())
    try:
        latencies, errors, _ = client.run_calls(connection, concurrency=4, total=20)
    finally:
        connection.close()
    assert (len(latencies), errors) == (20, 20)
    assert requests_counted(rest, "linear", "NOT_FOUND") == failed_before + 20
