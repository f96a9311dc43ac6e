"""The HTTP/1.1 edge of ``authenticator serve``: uvicorn's h11 protocol with limits and RFC 9457 errors.

What happens before a request reaches the app is decided here, per connection:

- **A request head** (request line plus headers) **over** ``api_max_header_bytes`` is answered
  ``431``; a request line whose target is over ``api_max_url_bytes`` is answered ``414``. h11 keeps
  at most that many bytes of an incomplete head (``h11_max_incomplete_event_size``), so a client
  that sends a 300 MB header costs the server one read buffer and a few microseconds, not a
  parser that re-scans a growing buffer while every other client waits.
- **Anything h11 refuses** (a bad ``Content-Length``, a control character such as DEL in a header
  value, a malformed request line or chunk) is answered ``400``.

Each of these answers is ``application/problem+json`` with the same body shape as
:func:`api.problems.problem`, ``Connection: close``, and then the connection is closed
gracefully: FIN after the answer, what the client still sends is read and dropped (up to
``LINGER_DISCARD_BYTES``), and the socket is closed when the client closes its side or after
``LINGER_SECONDS`` (so the client reads the answer instead of a reset). The same graceful close
serves the app's own answers that close a connection with a request body still unread (413).
Nothing from the request (its path, its header values) is echoed or logged: a key a client put
in a URL must not reach the log by way of an error.

uvicorn's stock h11 and httptools protocols answer these cases with a plain-text 400 (httptools
has no head limit at all); ``authenticator serve`` selects this class instead
(``http="api.server_protocol:EdgeH11Protocol"``).
"""

from __future__ import annotations

import asyncio
import json
import re
from functools import lru_cache
from http import HTTPStatus
from typing import Any, cast

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from api.problems import MEDIA_TYPE, PROBLEM_TYPE_BASE

LINGER_SECONDS = 2.0  # how long a closing connection waits for the client to read the answer
LINGER_DISCARD_BYTES = 16 * 1024 * 1024  # what is read (and dropped) from it meanwhile, at most
# Request line = method SP target SP "HTTP/1.1" CRLF: the target plus this much.
REQUEST_LINE_OVERHEAD = 32

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_DETAIL = "a header field is malformed or holds characters HTTP does not allow"
_DETAILS = {
    431: "the request header fields are over the limit of {header} bytes",
    414: "the request target (path and query) is over the limit of {url} bytes",
}


@lru_cache(maxsize=1)
def _limits() -> tuple[int, int]:
    """``(api_max_header_bytes, api_max_url_bytes)`` of this process's settings, read once."""
    from authenticator.config import Settings

    settings = Settings()
    return settings.api_max_header_bytes, settings.api_max_url_bytes


def problem_bytes(
    status: int, code: str, detail: str, default_headers: list[tuple[bytes, bytes]] | None = None
) -> bytes:
    """A complete HTTP/1.1 response: an RFC 9457 problem, ``Connection: close``."""
    body = json.dumps(
        {
            "type": PROBLEM_TYPE_BASE + code,
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "code": code,
        },
        separators=(",", ":"),
    ).encode()
    headers = [
        *(default_headers or []),
        (b"content-type", MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
    ]
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()]
    head += [name + b": " + value + b"\r\n" for name, value in headers]
    return b"".join(head) + b"\r\n" + body


def _bad_request_detail(exc: h11.RemoteProtocolError) -> str:
    """A fixed sentence per kind of error: h11's message may quote the client's bytes."""
    text = str(exc).lower()
    if "content-length" in text:
        return "the Content-Length header is not valid"
    if "transfer-encoding" in text:
        return "the Transfer-Encoding header is not valid"
    if "header" in text:
        return _HEADER_DETAIL
    if "chunk" in text:
        return "the chunked request body is malformed"
    return "the request is not valid HTTP/1.1"


class _RefusedRequest(h11.RemoteProtocolError):
    pass


class EdgeConnection(h11.Connection):
    """An h11 server connection that remembers why it refused the peer (for the answer)."""

    def __init__(self, max_head_bytes: int, max_url_bytes: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        self.max_head_bytes = max_head_bytes
        self.max_url_bytes = max_url_bytes
        self.refusal: tuple[int, str, str] | None = None

    def next_event(self) -> Any:
        state = self.their_state
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.refusal = self._classify(exc, state)
            raise
        if isinstance(event, h11.Request):
            # h11 counts an incomplete head only; a head that came whole in one read is measured here.
            if len(event.target) > self.max_url_bytes:
                self.refusal = (414, "uri_too_long", _DETAILS[414].format(url=self.max_url_bytes))
                raise _RefusedRequest("request target too long", error_status_hint=414)
            if any(_CONTROL.search(value) for _, value in event.headers.raw_items()):
                # h11 lets controls other than NUL through; RFC 9110 §5.5 allows none but HTAB.
                self.refusal = (400, "bad_request", _HEADER_DETAIL)
                raise _RefusedRequest("control character in a header value")
            size = len(event.method) + len(event.target) + len(b"  HTTP/1.1\r\n\r\n")
            size += sum(len(name) + len(value) + len(b": \r\n") for name, value in event.headers.raw_items())
            if size > self.max_head_bytes:
                self.refusal = (431, "request_header_too_large", _DETAILS[431].format(header=self.max_head_bytes))
                raise _RefusedRequest("request head too large", error_status_hint=431)
        return event

    def _classify(self, exc: h11.RemoteProtocolError, state: Any) -> tuple[int, str, str]:
        if exc.error_status_hint == 431 and state is h11.IDLE:
            buffered, _ = self.trailing_data
            line_limit = self.max_url_bytes + REQUEST_LINE_OVERHEAD
            if buffered.find(b"\n", 0, line_limit) == -1 and len(buffered) > line_limit:
                return 414, "uri_too_long", _DETAILS[414].format(url=self.max_url_bytes)
            return 431, "request_header_too_large", _DETAILS[431].format(header=self.max_head_bytes)
        return 400, "bad_request", _bad_request_detail(exc)


class _GracefulTransport:
    """The connection's transport, with a ``close`` that lets the client read the answer first.

    Closing a TCP socket that still holds unread request bytes makes the kernel send RST, and a
    client still busy sending (a flood of header bytes, an over-limit upload) may then lose the
    answer before it reads it. So when the peer may still be sending, ``close`` sends FIN after the
    answer (``write_eof``), drops what still arrives (up to ``LINGER_DISCARD_BYTES``) and closes for real when
    the client closes its side, or after ``LINGER_SECONDS``. Everything else is the real transport.
    """

    def __init__(self, transport: asyncio.Transport, protocol: EdgeH11Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        self._protocol.close_gracefully()

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._transport.is_closing()


class EdgeH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering protocol errors and oversize heads as problem+json."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        max_head, max_url = _limits()
        if config.h11_max_incomplete_event_size is not None:
            max_head = config.h11_max_incomplete_event_size
        self.conn: EdgeConnection = EdgeConnection(max_head, max_url)
        self.lingering = False
        self._refused = False
        self._lost = False
        self._real_transport: asyncio.Transport | None = None
        self._discarded = 0
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._real_transport = transport
        super().connection_made(cast(asyncio.Transport, _GracefulTransport(transport, self)))

    def data_received(self, data: bytes) -> None:
        if self._refused or self.lingering:  # the answer is out; what the client still sends is dropped
            self._discarded += len(data)
            if self._discarded > LINGER_DISCARD_BYTES:
                self.flow.pause_reading()
            return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """Called by uvicorn's ``handle_events`` when h11 refuses the peer (any status, not only 400)."""
        status, code, detail = self.conn.refusal or (400, "bad_request", "the request is not valid HTTP/1.1")
        self.conn.refusal = None
        self.refuse(status, code, detail)

    def refuse(self, status: int, code: str, detail: str) -> None:
        """Answer ``status`` as a problem, then close the connection (gracefully)."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        client = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
        self.logger.warning("%sRefused an HTTP request: %d %s", client, status, code)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The app is running for this request (an error in its body): it gets a disconnect.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:  # half an answer is out: nothing to do but close
                self.transport.close()
                return
        self.transport.write(problem_bytes(status, code, detail, self.server_state.default_headers))
        self.transport.close()

    def close_gracefully(self) -> None:
        """``transport.close()``: linger first when the client may still be sending (see above)."""
        real = self._real_transport
        assert real is not None
        if self.lingering:
            return
        if self._lost or real.is_closing():
            real.close()
            return
        peer_sending = self._refused or self.conn.their_state is h11.SEND_BODY
        if not peer_sending or not real.can_write_eof():
            real.close()
            return
        self.lingering = True
        real.write_eof()  # FIN after the answer: the client reads it, then EOF
        self.flow.resume_reading()  # read (and drop) so the client's sends do not block at once
        self._linger = self.loop.call_later(LINGER_SECONDS, real.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        super().connection_lost(exc)
