"""A real webhook receiver for the alert tests: an HTTP server on 127.0.0.1 that checks
Standard Webhooks signatures (its own implementation of the spec, not the app's), fails or
stalls on demand, and counts message ids. Plus the GraphQL helpers the alert tests share.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.factories import graphql


@dataclass
class Received:
    """One request as the receiver saw it."""

    id: str
    timestamp: str
    signature: str
    body: bytes
    headers: dict[str, str]
    verified: bool
    at: float  # time.monotonic() on arrival

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks: HMAC-SHA256 over ``id.timestamp.body`` under base64(secret after
    ``whsec_``), any of the space-separated ``v1,`` signatures."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


@dataclass
class Receiver:
    """Answers 200 unless told otherwise: ``fail_first`` 500s per message id, ``delay``
    seconds of silence before answering, another ``status``, or ``raw`` bytes."""

    fail_first: int = 0
    delay: float = 0.0
    status: int = 200
    raw: bytes | None = None  # sent instead of an HTTP answer
    secrets: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/creditlens"

    @property
    def ids(self) -> Counter[str]:
        return Counter(request.id for request in self.received)

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def wait_for(self, count: int, *, within: float = 20.0) -> list[Received]:
        """Wait until ``count`` requests arrived (generous bound: tests never time a goal)."""
        deadline = time.monotonic() + within
        while len(self.received) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(self.received)} of {count} webhooks arrived"
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return self.received

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            verified = any(verify(secret, headers, body) for secret in self.secrets)
            request = Received(
                id=headers.get("webhook-id", ""),
                timestamp=headers.get("webhook-timestamp", ""),
                signature=headers.get("webhook-signature", ""),
                body=body,
                headers=headers,
                verified=verified,
                at=time.monotonic(),
            )
            self.received.append(request)
            self._arrived.set()
            if self.delay:
                await asyncio.sleep(self.delay)
            status = self.status
            if self.ids[request.id] <= self.fail_first:
                status = 500
            answer = f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            writer.write(answer.encode() if self.raw is None else self.raw)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class MovingClock:
    """Real time, moved to start at ``start``: the dispatcher's retries come due as real
    seconds pass, while windows and presets stay where the test put them."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


CREATE_ALERT = """
mutation Create($input: CreateAlertInput!) {
  createAlert(input: $input) {
    alert { id name window state thresholdCredits thresholdPercentOfAllowance
            effectiveThresholdCredits webhookUrl enabled apiKey { id } }
    signingSecret
  }
}
"""

DELIVERIES = """
{ organization { alerts { id state lastTriggeredAt
  deliveries(first: 20) { id event status attempts responseStatus lastError nextAttemptAt } } } }
"""


async def create_alert(client, token: str, **fields: Any) -> tuple[dict[str, Any], str]:
    """Create an alert over GraphQL; returns (alert, signing secret)."""
    values = {"name": "Budget", "window": "DAY", "webhookUrl": "http://127.0.0.1:9/hook"}
    values.update(fields)
    response = await graphql(client, token, CREATE_ALERT, {"input": values})
    body = response.json()
    assert "errors" not in body, body
    payload = body["data"]["createAlert"]
    return payload["alert"], payload["signingSecret"]


async def alerts_of(client, token: str) -> list[dict[str, Any]]:
    body = (await graphql(client, token, DELIVERIES)).json()
    assert "errors" not in body, body
    return body["data"]["organization"]["alerts"]
