"""The REST API served through h11 (a well-kept HTTP/1.1 parser) instead of the hand-written transport.

``bench/serving.py`` serves the same ``RestApi`` handler through both and reports them side by side
(``rest_h11``), which is how the built-in server's choice of parser is decided: h11 frames every
request by the RFC, and costs what the numbers say. Same behaviour as the built-in transport for
the benchmark's traffic: keep-alive, pipelined requests answered in order, JSON errors.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import h11

Handler = Callable[[str, str, bytes], Awaitable[tuple[int, str, bytes]]]


class H11Server:
    """Listens on one address and answers each request with ``handler``, parsing with h11."""

    def __init__(self, handler: Handler, max_body_bytes: int):
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _H11Connection(self), host, port, backlog=128)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class _H11Connection(asyncio.Protocol):
    def __init__(self, server: H11Server):
        self.server = server
        self.connection = h11.Connection(h11.SERVER)
        self.transport: asyncio.Transport | None = None
        self.request: h11.Request | None = None
        self.body = bytearray()
        self.answering = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.connection.receive_data(data)
        if not self.answering:
            self._next_event()

    def _next_event(self) -> None:
        while self.transport is not None:
            try:
                event = self.connection.next_event()
            except h11.RemoteProtocolError as error:
                self._fail(error.error_status_hint, str(error))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.request, self.body = event, bytearray()
            elif isinstance(event, h11.Data):
                self.body += event.data
                if len(self.body) > self.server.max_body_bytes:
                    self._fail(413, "request body exceeds the limit")
                    return
            elif isinstance(event, h11.EndOfMessage):
                self.answering = True
                request = self.request
                task = asyncio.ensure_future(
                    self.server.handler(request.method.decode(), request.target.decode(), bytes(self.body))
                )
                task.add_done_callback(self._answered)
                return
            elif isinstance(event, h11.ConnectionClosed):
                self.transport.close()
                return

    def _answered(self, task: asyncio.Task) -> None:
        self.answering = False
        if self.transport is None or task.cancelled():
            return
        status, content_type, payload = task.result()
        self._send(status, content_type, payload)
        if self.connection.our_state is h11.MUST_CLOSE:
            self.transport.close()
            return
        self.connection.start_next_cycle()
        self._next_event()

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
        data = self.connection.send(h11.Response(status_code=status, headers=headers))
        data += self.connection.send(h11.Data(data=payload))
        data += self.connection.send(h11.EndOfMessage())
        self.transport.write(data)

    def _fail(self, status: int, message: str) -> None:
        if self.connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._send(status, "application/json", json.dumps({"error": message}).encode())
        self.transport.close()
        self.transport = None
