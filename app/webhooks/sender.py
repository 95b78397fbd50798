"""One delivery attempt: a signed POST, bounded in time, with no redirects.

With the guard on, the request connects to the address the guard checked (the URL's host
stays in the ``Host`` header and in TLS: SNI and the certificate check), so the name is not
looked up a second time between the check and the connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from app.webhooks.url_guard import IPAddress, Resolver, parse, public_addresses


@dataclass(frozen=True, slots=True)
class Response:
    """What an attempt got: a status code, or why there is none."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        """A 2xx answer: the only success."""
        return self.status is not None and 200 <= self.status < 300


def new_client(*, timeout: float, connections: int) -> httpx.AsyncClient:
    """The dispatcher's client. ``trust_env=False``: no proxy from the environment may carry
    a request past the guard; redirects are never followed (a 3xx is a failed attempt)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def _pinned(request: httpx.Request, address: IPAddress) -> httpx.Request:
    """The request sent to ``address``, still naming (Host, SNI) the URL's host."""
    request.extensions["sni_hostname"] = request.url.raw_host.decode("ascii")
    request.url = request.url.copy_with(host=str(address))
    return request


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    body: bytes,
    time_limit: float,
    allow_insecure: bool,
    resolver: Resolver,
) -> Response:
    """POST ``body`` to ``url``; the whole attempt (lookup included) ends within ``time_limit``
    seconds.

    Raises ``UnsafeUrl`` when the guard refuses the URL now.
    """
    try:
        async with asyncio.timeout(time_limit):
            request = client.build_request("POST", url, headers=headers, content=body)
            if not allow_insecure:
                target = parse(url, allow_insecure=False)
                addresses = await public_addresses(target, resolver=resolver)
                request = _pinned(request, addresses[0])
            # Streamed and closed unread: only the status counts, and a receiver's body
            # (of any size) is never downloaded.
            response = await client.send(request, stream=True)
            await response.aclose()
            return Response(response.status_code, None)
    except TimeoutError:
        return Response(None, f"no response within {time_limit:g} s")
    except httpx.HTTPError as error:
        return Response(None, _printable(f"{type(error).__name__}: {error}")[:300])


def _printable(text: str) -> str:
    """The receiver chooses what goes into some errors (a malformed header line): keep
    control characters out of the stored error and the log line."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
