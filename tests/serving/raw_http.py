"""Raw HTTP/1.1 over a socket, for requests no client library will send (malformed, slow, oversized)."""

from __future__ import annotations

import json
import socket
from typing import Any, NamedTuple


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(address: str, timeout: float = 10.0) -> socket.socket:
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


def read_response(sock: socket.socket, pending: bytearray | None = None) -> Response:
    """One response from ``sock`` (``pending`` holds bytes already read past the previous one).

    Raises ``ConnectionError`` if the server closes or resets before the response is complete.
    """
    data = pending if pending is not None else bytearray()
    while b"\r\n\r\n" not in data:
        _receive(sock, data)
    end = data.index(b"\r\n\r\n")
    lines = data[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(data) < end + 4 + length:
        _receive(sock, data)
    body = bytes(data[end + 4 : end + 4 + length])
    del data[: end + 4 + length]
    return Response(status, headers, body)


def _receive(sock: socket.socket, data: bytearray) -> None:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError(f"the server closed the connection; read so far: {bytes(data)[:200]!r}")
    data += chunk


def exchange(address: str, request: bytes) -> Response:
    """Send ``request`` on a fresh connection and read one response."""
    with connect(address) as sock:
        sock.sendall(request)
        return read_response(sock)


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed its side (reads end) instead of waiting for more requests."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
