"""uvicorn's HTTP/1.1 protocol (h11) with a deadline for request headers.

uvicorn bounds the idle time between requests (``timeout_keep_alive``), but not the time a
client may take to send its headers: its keep-alive timer is cancelled by the first byte
of a request, so a client sending one header byte every few seconds (slowloris) holds its
connection forever. No database connection is at stake (the application is not called
before the headers are complete), but sockets and memory are.

This protocol closes such a connection ``header_timeout_seconds`` after it opened or after
its previous answer: with ``408`` and a JSON body when part of the headers had arrived,
silently otherwise. The same deadline holds a client that goes on sending a body the
application answered without reading (the keep-alive timer would be reset by each byte).
``creditlens serve`` runs uvicorn with it; the setting is read in each worker process,
because uvicorn loads the protocol by name there.

Two parsers carry it: :class:`FastHeaderTimeoutProtocol` on httptools (llhttp, in C; what
``serve`` uses: about 0.35 ms of CPU less per request than h11 here, bench/PROPOSALS.md R1)
and :class:`HeaderTimeoutProtocol` on h11 (pure Python; used when httptools is not
installed). Both bound the size of a request's target and headers: over
``MAX_HEADER_BYTES`` (16 KiB) the request is answered 400 and the connection closed.
httptools has no bound of its own, and h11's (``max_incomplete_event_size``) only holds
while the headers are incomplete, so headers arriving in one read escaped it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from functools import cache
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: serve falls back to h11 (fast_protocol_name)
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

from app.settings import Settings
from domain.errors import RequestTimeout

log = logging.getLogger("creditlens.http")
NAME = "app.http_protocol:HeaderTimeoutProtocol"
FAST_NAME = "app.http_protocol:FastHeaderTimeoutProtocol"
# The bound on a request's target and headers, on both parsers (h11's default bound).
MAX_HEADER_BYTES = 16 * 1024


def protocol_name() -> str:
    """The protocol ``creditlens serve`` runs: httptools when it is installed, else h11."""
    return NAME if HttpToolsProtocol is None else FAST_NAME


@cache
def header_timeout_seconds() -> float:
    """The setting, read once per worker process."""
    return Settings().header_timeout_seconds


def _timeout_answer(seconds: float) -> bytes:
    error = RequestTimeout(
        f"The request headers did not arrive within {seconds:g} s (setting header_timeout_seconds)."
    )
    body = json.dumps({"error": error.code.lower(), "message": error.message}).encode()
    head = (
        f"HTTP/1.1 {error.http_status} Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class _HeaderDeadline(asyncio.Protocol):
    """The header deadline both HTTP protocols share (placed before uvicorn's protocol in
    the bases); each says when a request's headers are still arriving."""

    _header_deadline: asyncio.TimerHandle | None = None
    _upgraded = False
    # Set by uvicorn's protocols (annotations only: nothing here shadows them).
    cycle: Any
    transport: Any
    loop: Any
    client: Any
    _unset_keepalive_if_required: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _headers_pending(self) -> bool:
        """Whether part of a request (its line or headers) has arrived and not all of it."""
        raise NotImplementedError

    def _upgrade(self) -> None:
        # The connection now belongs to the WebSocket protocol: no more HTTP deadlines.
        self._upgraded = True
        self._disarm()

    def _watch_headers(self) -> None:
        """Armed while no request is in the application's hands: before the headers of a
        request are complete, and after its answer (a client trickling the rest of a body
        the application did not need is held to the same deadline)."""
        # uvicorn types ``cycle`` as always set; it is None until the first request.
        cycle = self.cycle
        idle = cycle is None or cycle.response_complete
        waiting = idle and not self._upgraded and not self.transport.is_closing()
        if waiting and self._header_deadline is None:
            self._header_deadline = self.loop.call_later(
                header_timeout_seconds(), self._headers_late
            )
        elif not waiting:
            self._disarm()

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self._headers_pending():
            seconds = header_timeout_seconds()
            log.info(
                "request headers timed out",
                extra={"client": self.client[0] if self.client else None, "status": 408},
            )
            self.transport.write(_timeout_answer(seconds))
        self._unset_keepalive_if_required()
        self.transport.close()


class _BoundedConnection(h11.Connection):
    """h11's connection with a bound on a request's headers as received.

    h11's own bound (``max_incomplete_event_size``) only applies while a request is still
    incomplete: headers of 17 KiB arriving in one read were accepted. This bound counts
    the target and the headers of every request, as the httptools protocol does.
    """

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            size = len(event.target) + sum(
                len(name) + len(value) + 4 for name, value in event.headers.raw_items()
            )
            if size > MAX_HEADER_BYTES:
                # uvicorn answers a protocol error with 400 and closes the connection.
                raise h11.RemoteProtocolError(f"request headers over {MAX_HEADER_BYTES} bytes")
        return event


class HeaderTimeoutProtocol(_HeaderDeadline, H11Protocol):
    """``H11Protocol`` that closes connections whose request headers are late, and bounds
    their size as the httptools protocol does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _BoundedConnection(h11.SERVER, MAX_HEADER_BYTES)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._upgrade()
        super().handle_websocket_upgrade(event)

    def _headers_pending(self) -> bool:
        pending, _ = self.conn.trailing_data
        return bool(pending) and self.conn.their_state is h11.IDLE


class HeadersTooLarge(Exception):
    """Request headers over ``MAX_HEADER_BYTES`` (raised inside the parser's callback)."""


if HttpToolsProtocol is not None:

    class FastHeaderTimeoutProtocol(_HeaderDeadline, HttpToolsProtocol):
        """``HttpToolsProtocol`` with the same header deadline, and h11's header size cap."""

        # Between the first byte of a request and the end of its headers, and the size of
        # the request line and headers so far.
        _in_headers = False
        _header_bytes = 0

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            self._header_bytes = 0

        def on_url(self, url: bytes) -> None:
            self._count_header_bytes(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_header_bytes(len(name) + len(value) + 4)  # ": " and CRLF
            super().on_header(name, value)

        def _count_header_bytes(self, size: int) -> None:
            """Past the bound, fail the parser callback: uvicorn answers an unparsable
            request with 400 and closes the connection, as it does for h11's bound."""
            self._header_bytes += size
            if self._header_bytes > MAX_HEADER_BYTES:
                raise HeadersTooLarge(f"request headers over {MAX_HEADER_BYTES} bytes")

        def on_headers_complete(self) -> None:
            self._in_headers = False
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch_headers()

        def handle_websocket_upgrade(self) -> None:
            self._upgrade()
            super().handle_websocket_upgrade()

        def _headers_pending(self) -> bool:
            return self._in_headers
