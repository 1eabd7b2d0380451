"""A load generator for unary gRPC calls, framed by hand over one HTTP/2 connection.

The serving benchmark measures the server, so its clients must cost the 2 shared cores as little as
possible: REST requests go over raw keep-alive sockets, and this does the same for gRPC. grpcio's
client spends about 0.4 ms of CPU and adds about 0.4-0.5 ms of latency per call here (its C core,
completion queue and Python callbacks), which a client on another machine would not take from the
server. Here each call is two pre-encoded frames (HEADERS with a never-indexed header block, so
it can be re-sent unchanged, and DATA with the length-prefixed message), and a response is done
when its trailers arrive; ``grpc-status`` other than 0, RST_STREAM or a response without trailers
counts as an error. Only what a gRPC server sends to such a client is handled: SETTINGS and PING
(acknowledged), WINDOW_UPDATE (the connection's send window is respected), GOAWAY (an error).
"""

from __future__ import annotations

import socket
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
DEFAULT_WINDOW, MAX_WINDOW = 65_535, 2**31 - 1


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload


class Http2GrpcConnection:
    """One HTTP/2 connection sending the same unary call (``path``, ``message``) on new streams."""

    def __init__(self, address: str, path: str, message: bytes):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", address),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        self._header_block = hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(*h) for h in headers])
        self._body = b"\x00" + struct.pack(">I", len(message)) + message  # not compressed, length
        self._decoder = hpack.Decoder()  # the server's header blocks, in order (HPACK is stateful)
        self._next_stream = 1
        self._received = bytearray()
        self._open_headers: dict[int, tuple[bytearray, bool]] = {}  # stream -> (block, ends stream)
        self.send_window = DEFAULT_WINDOW  # the server's connection window for our DATA
        # the largest receive windows, so the server never waits for a WINDOW_UPDATE from us
        self.sock.sendall(
            PREFACE
            + _frame(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW))
            + _frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", MAX_WINDOW - DEFAULT_WINDOW))
        )

    def can_send(self, calls: int) -> int:
        """How many of ``calls`` fit in the server's connection window now."""
        return min(calls, self.send_window // len(self._body))

    def send(self, calls: int) -> list[int]:
        """Start ``calls`` calls in one write; their stream ids."""
        out, streams = bytearray(), []
        for _ in range(calls):
            stream, self._next_stream = self._next_stream, self._next_stream + 2
            out += _frame(HEADERS, END_HEADERS, stream, self._header_block)
            out += _frame(DATA, END_STREAM, stream, self._body)
            streams.append(stream)
        self.send_window -= calls * len(self._body)
        self.sock.sendall(out)
        return streams

    def receive(self) -> list[tuple[int, bool]]:
        """Block for the next bytes from the server; the calls they complete, as (stream, ok)."""
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._received += chunk
        done: list[tuple[int, bool]] = []
        replies = bytearray()
        view, at = self._received, 0
        while len(view) - at >= 9:
            length = int.from_bytes(view[at : at + 3], "big")
            if len(view) - at < 9 + length:
                break
            kind, flags = view[at + 3], view[at + 4]
            stream = int.from_bytes(view[at + 5 : at + 9], "big") & MAX_WINDOW
            payload = bytes(view[at + 9 : at + 9 + length])
            at += 9 + length
            if kind in (HEADERS, CONTINUATION):
                self._headers(kind, flags, stream, payload, done)
            elif kind == DATA and flags & END_STREAM:
                done.append((stream, False))  # a gRPC response ends with trailers, not data
            elif kind == SETTINGS and not flags & ACK:
                replies += _frame(SETTINGS, ACK, 0)
            elif kind == PING and not flags & ACK:
                replies += _frame(PING, ACK, 0, payload)
            elif kind == WINDOW_UPDATE and stream == 0:
                self.send_window += int.from_bytes(payload, "big") & MAX_WINDOW
            elif kind == RST_STREAM:
                done.append((stream, False))
            elif kind == GOAWAY:
                raise ConnectionError(f"GOAWAY from the server: {payload[8:]!r}")
        del self._received[:at]
        if replies:
            self.sock.sendall(replies)
        return done

    def _headers(self, kind: int, flags: int, stream: int, payload: bytes, done: list) -> None:
        if kind == HEADERS:
            if flags & PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & PRIORITY:
                payload = payload[5:]
            self._open_headers[stream] = (bytearray(payload), bool(flags & END_STREAM))
        else:
            self._open_headers[stream][0].extend(payload)
        if flags & END_HEADERS:
            block, ends_stream = self._open_headers.pop(stream)
            headers = dict(self._decoder.decode(bytes(block)))
            if ends_stream:  # the trailers (or a trailers-only error response)
                done.append((stream, headers.get("grpc-status") == "0"))

    def close(self) -> None:
        self.sock.close()


def run_calls(
    connection: Http2GrpcConnection, concurrency: int, total: int
) -> tuple[list[float], int, float]:
    """``total`` calls, ``concurrency`` in flight; (latencies in s, errors, elapsed s)."""
    started_at: dict[int, float] = {}
    latencies: list[float] = []
    errors = sent = 0
    began = time.perf_counter()
    while sent < total or started_at:
        calls = connection.can_send(min(concurrency - len(started_at), total - sent))
        if calls > 0:
            now = time.perf_counter()
            for stream in connection.send(calls):
                started_at[stream] = now
            sent += calls
        for stream, ok in connection.receive():
            latencies.append(time.perf_counter() - started_at.pop(stream))
            errors += not ok
    return latencies, errors, time.perf_counter() - began
