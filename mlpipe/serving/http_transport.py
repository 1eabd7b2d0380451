"""HTTP/1.1 on an asyncio event loop: the transport under the REST API.

One loop serves every connection. A request waiting for its model call or for its batch holds no
thread, so 32 concurrent clients cost one thread instead of 32 that wake, take the GIL and hand off
to the batch thread for every request; that hand-off cost more than the model and kept batching
from paying (see ``bench/serving.py``).

Framing is what TF Serving's clients send: ``Content-Length`` bodies, keep-alive (HTTP/1.1 by
default, HTTP/1.0 on request), ``Expect: 100-continue``. Chunked bodies are refused with 411, any
other ``Transfer-Encoding`` with 501. Malformed HTTP is answered with ``{"error": ...}`` and the
connection is closed; the server goes on.

The parser is strict where a lenient one lets a proxy and this server frame the same bytes
differently (request smuggling): a bare CR or LF in the head, a header name that is not an RFC 9110
token, a control character in a value, a ``Content-Length`` that is not ASCII digits or a
``Transfer-Encoding`` are refused, never guessed at. ``tests/serving/test_http_parser_vs_h11.py``
holds it to h11's reading of the same bytes. It is hand-written for speed: served through h11,
the same REST API answers 0.3-0.4 ms slower at p50 and 10-30% fewer requests/s at 32 clients
(``bench/serving.py``, ``rest_h11``; numbers in ``docs/serving.md``).

Every connection is bounded (``HttpLimits``): head size and header count, a deadline for the whole
head (slowly sent headers cannot hold a connection), a timeout between body reads, an idle timeout
between requests and a cap on open connections. An error answer is followed by a lingering close:
the server stops writing, reads and drops what the client still sends (up to ``linger_seconds``),
then closes, so a client that sends its whole body before it reads gets the 413 instead of a reset.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # RFC 9110 5.6.2
_METHOD = re.compile(_TOKEN)
_TARGET = re.compile(r"[\x21-\x7e]+")  # visible ASCII: clients percent-encode the rest
_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
# RFC 9110 5.5: a value is visible ASCII, obs-text (0x80-0xff), spaces and tabs; no other controls.
_HEADER_LINE = re.compile(r"(" + _TOKEN + r"):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")
_DIGITS = re.compile(r"[0-9]+")


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    """What one connection may take: sizes, counts and times, each answered with its own status.

    ``max_body_bytes`` -> 413; ``max_head_bytes`` and ``max_headers`` -> 431;
    ``max_connections`` (open at once) -> 503; ``head_timeout_seconds`` (from a request's first byte
    to the end of its headers) and ``body_timeout_seconds`` (between two reads of a body) -> 408.
    ``idle_timeout_seconds`` closes a kept-alive connection that sends no next request.
    """

    max_body_bytes: int
    max_head_bytes: int = 65536
    max_headers: int = 100
    max_connections: int = 1024
    head_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 300.0
    linger_seconds: float = 5.0


class MalformedRequest(Exception):
    """Malformed HTTP: answered with ``status`` and a JSON error, then the connection closes."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
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

    def __init__(self, handler: Handler, limits: HttpLimits):
        self.handler = handler
        self.limits = limits
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._reaper: asyncio.TimerHandle | None = None
        self._date = (0, "")

    async def start(self, host: str, port: int) -> int:
        """Bind and listen; returns the bound port. Raises OSError if the address cannot be bound."""
        loop = asyncio.get_running_loop()
        # A backlog of 128: many clients connecting at once must not be refused.
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=128)
        self._reaper = loop.call_later(self.limits.idle_timeout_seconds / 10, self._close_idle)
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
        """Close kept-alive connections that waited longer than the idle timeout for a request.

        One sweep every tenth of the timeout costs less than a timer per request.
        """
        timeout = self.limits.idle_timeout_seconds
        deadline = time.monotonic() - timeout
        for connection in list(self._connections):
            if connection.answering is None and not connection.buffer and connection.last_active < deadline:
                connection.close()
        self._reaper = asyncio.get_running_loop().call_later(timeout / 10, self._close_idle)

    def http_date(self) -> str:
        now = int(time.time())
        if self._date[0] != now:  # formatting costs more than a request's parsing; once a second
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]


class _Connection(asyncio.Protocol):
    """One client connection: parses requests as bytes arrive, answers them one at a time, in order."""

    def __init__(self, server: HttpServer):
        self.server = server
        self.limits = server.limits
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answering: asyncio.Task | None = None  # the handler of the request being answered
        self.continued = False  # whether "100 Continue" was sent for the request being received
        self.last_active = time.monotonic()
        self.request_started = 0.0  # when the first byte of the request being received came
        self.timer: asyncio.TimerHandle | None = None  # the head or body deadline, or the lingering close
        self.lingering = False  # answered an error: reading and dropping until the close
        self.client_done = False  # the client closed its side: answer what is complete, then close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        full = len(self.server._connections) >= self.limits.max_connections
        self.server._connections.add(self)
        if full:
            self._fail(503, f"the server has {self.limits.max_connections} open connections; retry later")

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        self._cancel_timer()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # the answer is sent; what the client still sends is dropped
        if not self.buffer:
            self.request_started = time.monotonic()
        self.buffer += data
        self.last_active = time.monotonic()
        if self.answering is None:
            self._next_request()
        elif len(self.buffer) > self.limits.max_head_bytes + self.limits.max_body_bytes:
            assert self.transport is not None  # asyncio delivers data to open connections only
            self.transport.pause_reading()  # pipelined requests pile up: let TCP push back

    def eof_received(self) -> bool:
        """Keep the connection open only to answer the request being answered (and complete ones
        after it); a half-sent request can never complete, so it is dropped at once."""
        self.client_done = True
        return self.answering is not None and not self.lingering

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
        while self.transport is not None and not self.lingering:
            while self.buffer[:2] == b"\r\n":  # RFC 9112: ignore empty lines before a request line
                del self.buffer[:2]
            if not self.buffer:
                self._cancel_timer()
                if self.client_done:
                    self.close()
                return
            try:
                framed = frame_request(self.buffer, self.limits)
            except MalformedRequest as error:
                self._fail(error.status, error.message)
                return
            if framed is None or len(self.buffer) < framed[1] + framed[2]:
                if self.client_done:
                    self.close()  # the rest of the request can no longer come
                    return
            if framed is None:
                self._wait("head")
                return
            request, start, length = framed
            if len(self.buffer) < start + length:
                # Wait for the rest of the body; the head is parsed again then (cheap, and rare).
                if request.expects_continue and not self.continued:
                    self.continued = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self._wait("body")
                return
            self._cancel_timer()
            body = bytes(self.buffer[start : start + length])
            del self.buffer[: start + length]
            self.request_started = time.monotonic()
            self.continued = False
            if request.method != "HEAD":
                self.answering = asyncio.ensure_future(
                    self.server.handler(request.method, request.target, body)
                )
                self.answering.add_done_callback(functools.partial(self._answered, request))
                return
            self._answer(request, 400, "application/json", b"")

    def _wait(self, part: str) -> None:
        """Arm the deadline for the rest of the head or body (one timer, only while a request is partial)."""
        if part == "head":
            due = self.request_started + self.limits.head_timeout_seconds
        else:
            due = self.last_active + self.limits.body_timeout_seconds
        self._cancel_timer()
        self.timer = asyncio.get_running_loop().call_at(
            _loop_time(due), functools.partial(self._timed_out, part)
        )

    def _timed_out(self, part: str) -> None:
        self.timer = None
        if self.transport is None or self.lingering or self.answering is not None:
            return
        if part == "body" and time.monotonic() - self.last_active < self.limits.body_timeout_seconds:
            self._wait("body")  # bytes came since the timer was armed
            return
        if part == "head":
            message = f"request headers not received within {self.limits.head_timeout_seconds:g} s"
        else:
            message = f"request body stalled: no bytes for {self.limits.body_timeout_seconds:g} s"
        self._fail(408, message)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _answered(self, request: Request, task: asyncio.Task) -> None:
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
            self.request_started = time.monotonic()  # a pipelined request's head deadline starts now
            self.transport.resume_reading()
            self._next_request()

    def _answer(self, request: Request, status: int, content_type: str, payload: bytes) -> None:
        keep_alive = request.keep_alive
        self._write(status, content_type, payload, keep_alive)
        self.last_active = time.monotonic()
        if not keep_alive:
            assert self.transport is not None  # _write checked it
            self.transport.close()
            self.transport = None  # nothing more is read or answered on this connection

    def _fail(self, status: int, message: str) -> None:
        """Answer a JSON error and close, since the rest of the stream cannot be framed.

        The close lingers: the write side shuts at once, what the client still sends (the rest of
        an oversized body) is read and dropped until it closes or ``linger_seconds`` pass. Closing
        with unread bytes would reset the connection, and the client would never read the answer.
        """
        log.debug("HTTP %d: %s", status, message)
        self._write(status, "application/json", json.dumps({"error": message}).encode(), keep_alive=False)
        self.buffer.clear()
        assert self.transport is not None  # _write checked it
        self.lingering = True
        self._cancel_timer()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.transport.resume_reading()
        self.timer = asyncio.get_running_loop().call_later(self.limits.linger_seconds, self.close)

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


def _loop_time(monotonic: float) -> float:
    """``time.monotonic()`` value -> the running loop's clock (the same clock on CPython, kept apart)."""
    return asyncio.get_running_loop().time() + (monotonic - time.monotonic())


def frame_request(buffer: bytearray, limits: HttpLimits) -> tuple[Request, int, int] | None:
    """The request at the start of ``buffer``: (request, where its body starts, body length).

    None while the head is incomplete; raises ``MalformedRequest`` as soon as the bytes so far
    cannot start a valid request. The body may still be arriving: the caller compares lengths.
    """
    end = buffer.find(b"\r\n\r\n")
    head_end = end if end >= 0 else min(len(buffer), limits.max_head_bytes)
    _check_line_ends(buffer, head_end, complete=end >= 0)
    if max(end, len(buffer) if end < 0 else 0) > limits.max_head_bytes:
        raise MalformedRequest(431, f"request line and headers exceed {limits.max_head_bytes} bytes")
    if end < 0:
        return None
    request = parse_head(bytes(buffer[: end + 4]), limits)
    return request, end + 4, body_length(request, limits)


def _check_line_ends(buffer: bytearray, end: int, complete: bool) -> None:
    """Refuse a bare CR or LF in ``buffer[:end]`` (the head): RFC 9112 2.2 lets a recipient end a
    line at a bare LF, and a proxy that does so frames the stream differently from one that does not.
    """
    crlf = buffer.count(b"\r\n", 0, end)
    if buffer.count(b"\n", 0, end) != crlf:
        raise MalformedRequest(400, "bare LF in the request head: every line must end with CRLF")
    carriage_returns = buffer.count(b"\r", 0, end)
    if not complete and buffer.endswith(b"\r") and end == len(buffer):
        carriage_returns -= 1  # the first half of a CRLF still on its way
    if carriage_returns != crlf:
        raise MalformedRequest(400, "bare CR in the request head: every line must end with CRLF")


def parse_head(head: bytes, limits: HttpLimits) -> Request:
    """The request line and headers of ``head`` (ending in CRLF CRLF, line ends already checked)."""
    lines = head[:-4].decode("latin-1").split("\r\n")
    words = lines[0].split(" ")
    if len(words) != 3:
        if len(words) == 2 and words[0] == "GET":
            raise MalformedRequest(400, "Bad HTTP/0.9 request type ('GET')")
        raise MalformedRequest(400, f"Bad request syntax ({lines[0]!r})")
    method, target, version_text = words
    if _METHOD.fullmatch(method) is None or _TARGET.fullmatch(target) is None:
        raise MalformedRequest(400, f"Bad request syntax ({lines[0]!r})")
    version = _VERSION.fullmatch(version_text)
    if version is None:
        raise MalformedRequest(400, f"Bad request version ({version_text!r})")
    major, minor = int(version.group(1)), int(version.group(2))
    if major != 1:
        raise MalformedRequest(505, f"Invalid HTTP version ({version_text})")
    if method not in METHODS:
        raise MalformedRequest(501, f"Unsupported method ({method!r})")
    if len(lines) - 1 > limits.max_headers:
        raise MalformedRequest(431, f"Too many headers: more than {limits.max_headers}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            raise MalformedRequest(
                400,
                f"Malformed header line {line!r}: expected a token name, ':' and a value without "
                "control characters",
            )
        key, value = match.group(1).lower(), match.group(2)
        if key in headers:
            if key == "content-length" and headers[key] != value:
                raise MalformedRequest(400, "invalid Content-Length header: conflicting values")
            if key == "transfer-encoding":
                value = f"{headers[key]}, {value}"
        headers[key] = value
    return Request(method, target, (major, minor), headers)


def body_length(request: Request, limits: HttpLimits) -> int:
    """The body's length from ``Content-Length`` (0 without one); raises for anything else."""
    headers = request.headers
    coding = headers.get("transfer-encoding")
    if coding is not None:
        if coding.lower() == "chunked":
            raise MalformedRequest(411, "chunked request bodies are not supported; send a Content-Length")
        raise MalformedRequest(501, f"Transfer-Encoding {coding!r} is not supported; send a Content-Length")
    text = headers.get("content-length", "0")
    if _DIGITS.fullmatch(text) is None:
        raise MalformedRequest(400, f"invalid Content-Length header {text!r}: expected ASCII digits")
    if len(text) > 18 or int(text) > limits.max_body_bytes:  # 18 digits: int() stays cheap
        raise MalformedRequest(
            413, f"request body of {text} bytes exceeds the limit of {limits.max_body_bytes} bytes"
        )
    return int(text)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
