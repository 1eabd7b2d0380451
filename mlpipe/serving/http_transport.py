"""HTTP/1.1 on an asyncio event loop: the transport under the REST API.

One loop serves every connection. A request waiting for its model call or for its batch holds no
thread, so 32 concurrent clients cost one thread instead of 32 that wake, take the GIL and hand off
to the batch thread for every request; that hand-off cost more than the model and kept batching
from paying (see ``bench/serving.py``).

Framing is what TF Serving's clients send: ``Content-Length`` bodies, keep-alive (HTTP/1.1 by
default, HTTP/1.0 on request), ``Expect: 100-continue``. Chunked bodies are refused with 411.
Malformed HTTP is answered with ``{"error": ...}`` and the connection is closed; the server goes on.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus

log = logging.getLogger(__name__)

Handler = Callable[[str, str, bytes], Awaitable[tuple[int, str, bytes]]]
"""``handler(method, target, body)`` -> (status, content type, body)."""

SERVER_NAME = "mlpipe-serving"
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"})
MAX_HEAD_BYTES = 65536  # request line and headers together
MAX_HEADERS = 100
IDLE_TIMEOUT_SECONDS = 300.0  # how long a kept-alive connection may wait for its next request
_VERSION = re.compile(r"HTTP/(\d+)\.(\d+)")


class _BadRequest(Exception):
    """Malformed HTTP: answered with ``status`` and a JSON error, then the connection closes."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Request:
    __slots__ = ("method", "target", "version", "headers")

    def __init__(self, method: str, target: str, version: tuple[int, int], headers: dict[str, str]):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers

    @property
    def expects_continue(self) -> bool:
        return self.version >= (1, 1) and self.headers.get("expect", "").lower() == "100-continue"

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version >= (1, 1):
            return "close" not in connection
        return "keep-alive" in connection


class HttpServer:
    """Listens on one address and answers each request with ``handler``; start and stop on the loop."""

    def __init__(self, handler: Handler, max_request_bytes: int):
        self.handler = handler
        self.max_request_bytes = max_request_bytes
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._reaper: asyncio.TimerHandle | None = None
        self._date = (0, "")

    async def start(self, host: str, port: int) -> int:
        """Bind and listen; returns the bound port. Raises OSError if the address cannot be bound."""
        loop = asyncio.get_running_loop()
        # A backlog of 128: many clients connecting at once must not be refused.
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=128)
        self._reaper = loop.call_later(IDLE_TIMEOUT_SECONDS / 10, self._close_idle)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self, grace_seconds: float) -> None:
        """Stop listening, close idle connections, let requests in progress answer (up to the grace)."""
        if self._server is not None:
            self._server.close()
        if self._reaper is not None:
            self._reaper.cancel()
        answering = [c.answering for c in self._connections if c.answering is not None]
        for connection in list(self._connections):
            if connection.answering is None:
                connection.close()
        if answering:
            await asyncio.wait(answering, timeout=grace_seconds)
        for connection in list(self._connections):
            connection.abort()
        if self._server is not None:
            await self._server.wait_closed()

    def _close_idle(self) -> None:
        """Close kept-alive connections that waited longer than ``IDLE_TIMEOUT_SECONDS`` for a request.

        One sweep every tenth of the timeout costs less than a timer per request.
        """
        deadline = time.monotonic() - IDLE_TIMEOUT_SECONDS
        for connection in list(self._connections):
            if connection.answering is None and connection.last_active < deadline:
                connection.close()
        self._reaper = asyncio.get_running_loop().call_later(IDLE_TIMEOUT_SECONDS / 10, self._close_idle)

    def http_date(self) -> str:
        now = int(time.time())
        if self._date[0] != now:  # formatting costs more than a request's parsing; once a second
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]


class _Connection(asyncio.Protocol):
    """One client connection: parses requests as bytes arrive, answers them one at a time, in order."""

    def __init__(self, server: HttpServer):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answering: asyncio.Task | None = None  # the handler of the request being answered
        self.continued = False  # whether "100 Continue" was sent for the request being received
        self.last_active = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.last_active = time.monotonic()
        if self.answering is None:
            self._next_request()
        elif len(self.buffer) > MAX_HEAD_BYTES + self.server.max_request_bytes:
            assert self.transport is not None  # asyncio delivers data to open connections only
            self.transport.pause_reading()  # pipelined requests pile up: let TCP push back

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.answering is not None:
            self.answering.cancel()
        if self.transport is not None:
            self.transport.abort()

    def _next_request(self) -> None:
        """Answer the complete requests in the buffer, up to the first that needs the handler."""
        while self.transport is not None:
            while self.buffer[:2] == b"\r\n":  # RFC 9112: ignore empty lines before a request line
                del self.buffer[:2]
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self._fail(431, f"request line and headers exceed {MAX_HEAD_BYTES} bytes")
                return
            try:
                request = _parse_head(bytes(self.buffer[: end + 4]))
                length = self._body_length(request)
            except _BadRequest as error:
                self._fail(error.status, error.message)
                return
            start = end + 4
            if len(self.buffer) < start + length:
                # Wait for the rest of the body; the head is parsed again then (cheap, and rare).
                if request.expects_continue and not self.continued:
                    self.continued = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            body = bytes(self.buffer[start : start + length])
            del self.buffer[: start + length]
            self.continued = False
            if request.method != "HEAD":
                self.answering = asyncio.ensure_future(
                    self.server.handler(request.method, request.target, body)
                )
                self.answering.add_done_callback(functools.partial(self._answered, request))
                return
            self._answer(request, 400, "application/json", b"")

    def _body_length(self, request: _Request) -> int:
        headers = request.headers
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise _BadRequest(411, "chunked request bodies are not supported; send a Content-Length")
        text = headers.get("content-length", "0").strip()
        if not text.isdigit():
            raise _BadRequest(400, "invalid Content-Length header")
        length = int(text)
        if length > self.server.max_request_bytes:
            raise _BadRequest(
                413,
                f"request body of {length} bytes exceeds the limit of {self.server.max_request_bytes} bytes",
            )
        return length

    def _answered(self, request: _Request, task: asyncio.Task) -> None:
        self.answering = None
        if task.cancelled() or self.transport is None:
            return
        error = task.exception()
        if error is not None:  # the handler answers its own errors; this is a bug in it
            log.error("REST %s %s failed", request.method, request.target, exc_info=error)
            message = json.dumps({"error": f"internal error: {type(error).__name__}: {error}"}).encode()
            self._answer(request, 500, "application/json", message)
        else:
            self._answer(request, *task.result())
        if self.transport is not None:
            self.transport.resume_reading()
            self._next_request()

    def _answer(self, request: _Request, status: int, content_type: str, payload: bytes) -> None:
        keep_alive = request.keep_alive
        self._write(status, content_type, payload, keep_alive)
        self.last_active = time.monotonic()
        if not keep_alive:
            assert self.transport is not None  # _write checked it
            self.transport.close()
            self.transport = None  # nothing more is read or answered on this connection

    def _fail(self, status: int, message: str) -> None:
        """Malformed HTTP: answer a JSON error and close, since the rest of the stream cannot be framed."""
        log.debug("HTTP %d: %s", status, message)
        self._write(status, "application/json", json.dumps({"error": message}).encode(), keep_alive=False)
        self.buffer.clear()
        assert self.transport is not None  # _write checked it
        self.transport.close()
        self.transport = None

    def _write(self, status: int, content_type: str, payload: bytes, keep_alive: bool) -> None:
        """Status line, headers and body in one write."""
        head = (
            f"HTTP/1.1 {status} {_reason(status)}\r\nServer: {SERVER_NAME}\r\n"
            f"Date: {self.server.http_date()}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\n"
        )
        if not keep_alive:
            head += "Connection: close\r\n"
        assert self.transport is not None  # answers are written only while the connection is open
        self.transport.write(head.encode("latin-1") + b"\r\n" + payload)


def _parse_head(head: bytes) -> _Request:
    lines = head[:-4].decode("latin-1").split("\r\n")
    words = lines[0].split()
    if len(words) != 3:
        if len(words) == 2 and words[0] == "GET":
            raise _BadRequest(400, "Bad HTTP/0.9 request type ('GET')")
        raise _BadRequest(400, f"Bad request syntax ({lines[0]!r})")
    method, target, version_text = words
    version = _VERSION.fullmatch(version_text)
    if version is None:
        raise _BadRequest(400, f"Bad request version ({version_text!r})")
    major, minor = int(version.group(1)), int(version.group(2))
    if major != 1:
        raise _BadRequest(505, f"Invalid HTTP version ({version_text})")
    if method not in METHODS:
        raise _BadRequest(501, f"Unsupported method ({method!r})")
    if len(lines) - 1 > MAX_HEADERS:
        raise _BadRequest(431, f"Too many headers: more than {MAX_HEADERS}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise _BadRequest(400, f"Malformed header line {line!r}")
        key = name.lower()
        value = value.strip()
        if key in headers and key == "content-length" and headers[key] != value:
            raise _BadRequest(400, "invalid Content-Length header: conflicting values")
        headers[key] = value
    return _Request(method, target, (major, minor), headers)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
