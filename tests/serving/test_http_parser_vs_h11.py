"""The hand-written request parser against h11 (the oracle) on generated, often malformed, requests.

The transport is hand-written for speed (``bench/serving.py``, ``rest`` vs ``rest_h11``), so it must
never frame a request differently from a library that follows RFC 9112: whatever it accepts, h11
accepts with the same method, target, headers and body; whatever h11 refuses, it refuses. It may be
stricter (it refuses bare LF line ends, obs-fold, unknown methods, ``Transfer-Encoding`` and
``Content-Length: 5, 5``, all of which h11 reads), never more lenient.
"""

from __future__ import annotations

import h11
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlpipe.serving.http_transport import HttpLimits, MalformedRequest, frame_request

LIMITS = HttpLimits(max_body_bytes=1 << 20)

_token = st.text(alphabet="!#$%&'*+-.^_`|~abcXYZ019", min_size=1, max_size=8)
_odd = st.text(alphabet=st.characters(max_codepoint=255), max_size=6)
_names = st.one_of(
    st.sampled_from(["Content-Length", "content-length", "Transfer-Encoding", "Expect", "Connection"]),
    _token,
    _odd,
)
_values = st.one_of(
    st.sampled_from(["0", "5", "05", "5, 5", " 5 ", "\u00b2", "+5", "chunked", "gzip", "identity", ""]),
    st.text(alphabet=st.characters(max_codepoint=255), max_size=8),
)
_line_end = st.sampled_from(["\r\n"] * 8 + ["\n", "\r", "\r\r\n"])


@st.composite
def raw_requests(draw) -> bytes:
    method = draw(st.one_of(st.sampled_from(["GET", "POST", "HEAD", "PUT", "BREW"]), _odd))
    target = draw(st.one_of(st.sampled_from(["/v1/models/m:predict", "/", "*"]), _odd.map(lambda t: "/" + t)))
    version = draw(
        st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.10", "HTTP/2.0", "HTTP/1.\u00b9", "http/1.1"])
    )
    separator = draw(st.sampled_from([" "] * 6 + ["  ", "\t"]))
    lines = [separator.join([method, target, version])]
    headers = [("Host", "x")] + draw(st.lists(st.tuples(_names, _values), max_size=4))
    for name, value in headers:
        colon = draw(st.sampled_from([": ", ":", " : ", ":\t"]))
        lines.append(name + colon + value)
    head = "".join(line + draw(_line_end) for line in lines) + draw(_line_end)
    body = draw(st.binary(max_size=8))
    return head.encode("latin-1") + body


def ours(data: bytes):
    """("ok", method, target, headers, body) | ("incomplete",) | ("error", status)."""
    buffer = bytearray(data)
    try:
        framed = frame_request(buffer, LIMITS)
    except MalformedRequest as error:
        return ("error", error.status)
    if framed is None:
        return ("incomplete",)
    request, start, length = framed
    if len(buffer) < start + length:
        return ("incomplete",)
    return ("ok", request.method, request.target, request.headers, bytes(buffer[start : start + length]))


def theirs(data: bytes):
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    body = b""
    try:
        request = connection.next_event()
        if request is h11.NEED_DATA:
            return ("incomplete",)
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                return ("incomplete",)
            if isinstance(event, h11.EndOfMessage):
                break
            body += event.data
    except h11.RemoteProtocolError as error:
        return ("error", error.error_status_hint)
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key = name.decode("latin-1")
        headers[key] = value.decode("latin-1")
    return ("ok", request.method.decode(), request.target.decode("latin-1"), headers, body)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_requests())
@example(b"POST / HTTP/1.1\r\nHost: x\r\nX-Pad: a\nContent-Length: 3\r\n\r\nabc")
@example(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\nabc")
@example(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc")
@example(b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n")
@example(b"GET /\x80 HTTP/1.1\r\nHost: x\r\n\r\n")
def test_never_more_lenient_than_h11_and_frames_what_it_accepts_the_same(data):
    mine, reference = ours(data), theirs(data)
    if mine[0] == "ok":
        assert reference[0] == "ok", (mine, reference)
        assert mine == reference
    if reference[0] == "error":
        # h11 checks the request line before the head is complete; this parser checks the whole
        # head once it is: completed, the head must be refused too.
        finished = mine if mine[0] != "incomplete" else ours(data + b"\r\n\r\n")
        assert finished[0] == "error", (mine, reference)
    if mine[0] == "incomplete":
        assert reference[0] != "ok", (mine, reference)


def test_the_generator_reaches_every_outcome():
    """A generator that only made garbage would make the property above vacuous."""
    outcomes = set()

    @settings(max_examples=300, deadline=None)
    @given(raw_requests())
    def collect(data):
        outcomes.add((ours(data)[0], theirs(data)[0]))

    collect()
    assert {("ok", "ok"), ("error", "error"), ("error", "ok")} <= outcomes
