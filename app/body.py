"""Request bodies: read whole, capped in size and in time, before any database work.

Both ``/graphql`` and ``/v1/events`` read their body here, before the token is checked,
so a client that sends its body slowly holds a socket for at most ``body_timeout_seconds``
and never a database connection (issue 10, class 3). A declared ``Content-Length`` over
the cap is refused before a byte is read; an undeclared body is refused as soon as it
passes the cap. A client that goes away raises starlette's ``ClientDisconnect``, which the
request observer logs as a disconnect (``app.observer``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """How much a route reads, for how long; ``setting`` names the size limit's setting."""

    max_bytes: int
    setting: str
    timeout_seconds: float


class BodyRefused(Exception):
    """The body was not read: the route answers with its own error shape."""

    def __init__(self, message: str, limits: BodyLimits) -> None:
        super().__init__(message)
        self.limits = limits


class BodyTooLarge(BodyRefused):
    def __init__(self, limits: BodyLimits) -> None:
        super().__init__(
            f"The request body is larger than {limits.max_bytes} bytes (setting {limits.setting}).",
            limits,
        )


class BodyTooSlow(BodyRefused):
    def __init__(self, limits: BodyLimits) -> None:
        super().__init__(
            f"The request body did not arrive within {limits.timeout_seconds:g} s "
            "(setting body_timeout_seconds).",
            limits,
        )


def check_declared_length(request: Request, limits: BodyLimits) -> None:
    """Refuse a body whose ``Content-Length`` is already over the cap."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise BodyTooLarge(limits)


async def read_body(request: Request, limits: BodyLimits) -> bytes:
    """The whole body, or ``BodyTooLarge`` / ``BodyTooSlow`` as soon as either is certain."""
    check_declared_length(request, limits)
    chunks: list[bytes] = []
    size = 0
    try:
        # One deadline for the whole body, not per read: a client trickling one byte a
        # second would otherwise never time out.
        async with asyncio.timeout(limits.timeout_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_bytes:
                    raise BodyTooLarge(limits)
                chunks.append(chunk)
    except TimeoutError as error:
        raise BodyTooSlow(limits) from error
    return b"".join(chunks)


# A refused body was not read to its end: the connection cannot carry another request,
# and closing it stops a slow client from trickling on after its answer.
CLOSE = {"Connection": "close"}
