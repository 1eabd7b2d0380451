"""The REST client's transport: unreachable servers, dropped keep-alive connections, argument checks."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from mlpipe.errors import ServingError
from mlpipe.serving import Client, ServingRequestError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_is_unavailable():
    client = Client(f"127.0.0.1:{free_port()}", model="taxi", timeout=2)
    with pytest.raises(ServingRequestError) as raised:
        client.status()
    assert (raised.value.code, raised.value.http_status) == ("UNAVAILABLE", 503)
    with pytest.raises(ServingError, match="has no AVAILABLE version after 0.3s"):
        client.wait_until_available(timeout=0.3)


def test_a_connection_closed_by_the_server_is_retried_once():
    """A server that closes every connection after one answer (as an idle keep-alive timeout would)."""
    listener = socket.create_server(("127.0.0.1", 0))
    answers = []

    def serve() -> None:
        for _ in range(2):
            connection, _ = listener.accept()
            with connection:
                request = connection.recv(65536)
                body = json.dumps({"model_version_status": [{"version": str(len(answers) + 1)}]}).encode()
                answers.append(request.split(b"\r\n", 1)[0])
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )

    thread = threading.Thread(target=serve)
    thread.start()
    client = Client(f"127.0.0.1:{listener.getsockname()[1]}", model="taxi", timeout=5)
    assert client.status()["model_version_status"][0]["version"] == "1"
    assert client.status()["model_version_status"][0]["version"] == "2"
    thread.join(5)
    listener.close()
    assert answers == [b"GET /v1/models/taxi HTTP/1.1"] * 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Client("h:1", model="m", version=1, label="a"), "a version or a label, not both"),
        (lambda: Client("h:1", model="m", protocol="soap"), "protocol must be"),
        (lambda: Client("ftp://h:1", model="m"), "must be host:port"),
        (lambda: Client("h:1", model="m").predict([1], inputs=[1]), "either instances"),
    ],
)
def test_bad_arguments_are_refused(make, message):
    with pytest.raises(ServingError, match=message):
        make()
