"""The HTTP/1.1 transport over real sockets: framing rules, limits and timeouts, against malformed input.

The framing cases run against the shared model server; limits and timeouts against an
``HttpServer`` with small limits and an echo handler, so a test waits fractions of a second.
"""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

from mlpipe.serving.event_loop import LoopThread
from mlpipe.serving.http_transport import HttpLimits, HttpServer
from tests.serving.raw_http import closed_by_server, connect, exchange, read_response

PREDICT_BODY = b'{"instances": [[1, 0, 0]]}'


def _predict(headers: bytes, body: bytes = PREDICT_BODY) -> bytes:
    return b"POST /v1/models/linear/versions/1:predict HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


def _assert_refused(address: str, request: bytes, status: int, pattern: str) -> None:
    """``request`` gets ``status`` with a JSON error matching ``pattern``, then the connection closes."""
    with connect(address, timeout=5) as sock:
        sock.sendall(request)
        response = read_response(sock)
        assert response.status == status, response
        assert re.search(pattern, response.json()["error"]), response.json()
        assert response.headers["content-type"] == "application/json"
        assert closed_by_server(sock)


def test_a_bare_lf_in_the_head_is_refused_not_folded_into_a_header(server):
    # A proxy that ends header lines at a bare LF sees "Content-Length: 26" here; folding it into the
    # X-Pad value instead (as before) frames the stream differently from the proxy: request smuggling.
    request = _predict(b"X-Pad: a\nContent-Length: %d\r\n" % len(PREDICT_BODY))
    _assert_refused(server.rest_address, request, 400, "bare LF")
    _assert_refused(server.rest_address, b"GET /v1/models/linear HTTP/1.1\nHost: x\n\n", 400, "bare LF")
    _assert_refused(server.rest_address, _predict(b"X-Pad: a\rContent-Length: 26\r\n"), 400, "bare CR")


@pytest.mark.parametrize("value", ["\u00b2", "\u00b9\u00b3", "+26", "0x1a", "26 26", "-1", "2_6"])
def test_a_content_length_of_anything_but_ascii_digits_is_a_400(server, value):
    request = _predict(b"Content-Length: " + value.encode("latin-1") + b"\r\n")
    _assert_refused(server.rest_address, request, 400, "Content-Length")


@pytest.mark.parametrize(
    ("coding", "status"), [("gzip", 501), ("identity", 501), ("gzip, chunked", 501), ("chunked", 411)]
)
def test_a_transfer_encoding_is_never_ignored(server, coding, status):
    request = _predict(b"Transfer-Encoding: %s\r\nContent-Length: 26\r\n" % coding.encode())
    _assert_refused(server.rest_address, request, status, "Transfer-Encoding|chunked")


@pytest.mark.parametrize(
    "line",
    [b"Bad Name: 1", b"X\x00Y: 1", b"X(Y): 1", b"X-Ok: a\x00b", b"X-Ok: a\x7fb", b"\xffX: 1", b"X-Ok : 1"],
)
def test_header_names_must_be_tokens_and_values_free_of_controls(server, line):
    request = b"GET /v1/models/linear HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n"
    _assert_refused(server.rest_address, request, 400, "header")


def test_a_well_formed_request_on_the_same_server_still_answers(server):
    response = exchange(server.rest_address, _predict(b"Content-Length: %d\r\n" % len(PREDICT_BODY)))
    assert response.status == 200 and response.json() == {"predictions": [[1.5, 0.5]]}


def test_an_oversized_body_gets_a_413_with_json_even_while_the_client_sends_it(server):
    """Like most clients, this one sends the whole body before it reads: the server must read on.

    Closing right after the 413 resets the connection while the client still sends, so the client
    sees a reset instead of the answer.
    """
    limit = server.max_request_bytes
    head = b"POST /v1/models/linear:predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (limit + 1)
    with connect(server.rest_address, timeout=20) as sock:
        sock.sendall(head)
        time.sleep(0.2)  # the server has answered and, before, closed
        sock.sendall(b"0" * (8 << 20))
        response = read_response(sock)
    assert response.status == 413
    assert re.search(rf"exceeds the limit of {limit} bytes", response.json()["error"])
    assert response.headers["connection"] == "close"


# Limits and timeouts, on a small server of their own.

LIMITS = HttpLimits(
    max_body_bytes=1024,
    max_connections=2,
    head_timeout_seconds=0.5,
    body_timeout_seconds=0.5,
    linger_seconds=2.0,
)


async def _echo(method: str, target: str, body: bytes) -> tuple[int, str, bytes]:
    return (
        200,
        "application/json",
        json.dumps({"method": method, "target": target, "bytes": len(body)}).encode(),
    )


@pytest.fixture(scope="module")
def small_server():
    loop = LoopThread("test-http")
    http = HttpServer(_echo, LIMITS)
    port = loop.run(http.start("127.0.0.1", 0))
    yield f"127.0.0.1:{port}"
    loop.run(http.stop(1.0))
    loop.stop()


def test_headers_sent_too_slowly_get_a_408(small_server):
    with connect(small_server, timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n")
        for _ in range(5):  # trickling bytes must not extend the deadline
            time.sleep(0.15)
            try:
                sock.sendall(b"X-A: b\r\n")
            except OSError:
                break
        response = read_response(sock)
        assert response.status == 408 and re.search("headers", response.json()["error"])
        assert time.monotonic() - started < 2.0
        assert closed_by_server(sock)


def test_a_body_that_stops_arriving_gets_a_408(small_server):
    with connect(small_server, timeout=5) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        response = read_response(sock)
        assert response.status == 408 and re.search("body", response.json()["error"])
        assert closed_by_server(sock)


def test_connections_over_the_cap_get_a_503_and_the_rest_are_served(small_server):
    first, second = connect(small_server), connect(small_server)
    try:
        for sock in (first, second):
            sock.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).status == 200
        with connect(small_server) as third:
            response = read_response(third)
            assert response.status == 503 and re.search("connections", response.json()["error"])
            assert closed_by_server(third)
    finally:
        first.close()
    deadline = time.monotonic() + 5
    while True:  # the server sees the close asynchronously; then a new connection fits again
        with connect(small_server) as sock:
            sock.sendall(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
            response = read_response(sock)
        if response.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    second.close()
    assert response.status == 200 and response.json()["target"] == "/again"


def test_an_oversized_body_is_read_and_dropped_before_the_close(small_server):
    with connect(small_server, timeout=5) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"0" * 5000)
        response = read_response(sock)
        assert response.status == 413 and re.search("1024 bytes", response.json()["error"])
        sock.shutdown(socket.SHUT_WR)
        assert closed_by_server(sock)


def test_a_request_cut_short_by_the_client_is_dropped_at_once(small_server):
    """After the client's EOF the rest of the request cannot come: no waiting for the head timeout."""
    with connect(small_server, timeout=5) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        assert closed_by_server(sock)
        assert time.monotonic() - started < LIMITS.body_timeout_seconds


def test_a_complete_request_before_the_client_eof_is_still_answered(small_server):
    with connect(small_server, timeout=5) as sock:
        sock.sendall(b"POST /done HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        response = read_response(sock)
        assert response.status == 200 and response.json() == {"method": "POST", "target": "/done", "bytes": 3}
        assert closed_by_server(sock)
