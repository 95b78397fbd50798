"""GraphQL subscriptions over WebSocket on ``/graphql``: the graphql-transport-ws protocol.

The protocol's few messages, served here rather than by ``strawberry.asgi.GraphQL`` so that
authentication, limits and close codes are ours:

- ``connection_init`` within ``ws_init_timeout_seconds`` (else close 4408) with
  ``{"Authorization": "Bearer <token>"}``; a missing, invalid or ingest token closes the
  socket with 4403 Forbidden (the protocol's code for a refused init; the reason says why),
  a second init with 4429, too many failed authentications from the address with 4429;
- ``subscribe`` before the ``connection_ack``: 4401; a repeated id: 4409; an unreadable or
  unknown message: 4400; past ``ws_max_subscriptions_per_token`` live subscriptions of one
  token (across all workers with Redis, else in this worker: app/subscription_slots.py),
  that operation gets an ``error`` with ``RATE_LIMITED``;
- a connection without any subscription for ``ws_idle_timeout_seconds`` is closed (1000);
- ``ping`` gets ``pong``; ``complete`` from the client stops that operation.

Permissions are the schema's (admin on a paid plan): a refused field is an ``error``
message with the same codes as over HTTP. No cookie is read, so a page of another origin
cannot subscribe with a visitor's credentials: the token must be in ``connection_init``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from graphql import ExecutionResult
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.auth import Authenticator, AuthRefused
from app.live_usage import LiveUsageHub
from app.settings import Settings
from app.subscription_slots import Slot, SubscriptionSlots
from db.session import RequestDatabase
from domain.clock import Clock
from domain.errors import RateLimited
from domain.scopes import TokenScope
from resolvers.context import Context, Limits

log = logging.getLogger("creditlens.ws")

PROTOCOL = "graphql-transport-ws"


class Closed(Exception):
    """Close the socket with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason[:120]  # a close reason is at most 123 bytes


class SubscriptionsEndpoint:
    """The WebSocket side of ``/graphql``."""

    def __init__(
        self,
        schema: strawberry.Schema,
        settings: Settings,
        engine: AsyncEngine,
        clock: Clock,
        *,
        authenticator: Authenticator,
        live: LiveUsageHub,
        slots: SubscriptionSlots,
    ) -> None:
        self.schema = schema
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.authenticator = authenticator
        self.live = live
        self.limits = Limits(
            max_page_size=settings.max_page_size, max_series_points=settings.max_series_points
        )
        self.slots = slots

    async def handle(self, websocket: WebSocket) -> None:
        """One WebSocket connection, from accept to close."""
        offered = websocket.scope.get("subprotocols", [])
        if PROTOCOL not in offered:
            await websocket.accept()
            await websocket.close(4406, "Subprotocol not acceptable: use graphql-transport-ws")
            return
        await websocket.accept(subprotocol=PROTOCOL)
        operations: dict[str, asyncio.Task[None]] = {}
        try:
            context = await self._initialise(websocket)
            await self._serve(websocket, context, operations)
        except Closed as closed:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(closed.code, closed.reason)
        except WebSocketDisconnect:
            pass
        finally:
            for task in operations.values():
                task.cancel()
            for task in operations.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _receive(self, websocket: WebSocket, wait_seconds: float) -> dict[str, Any] | None:
        """The next message, or ``None`` after ``wait_seconds``."""
        try:
            async with asyncio.timeout(wait_seconds):
                text = await websocket.receive_text()
        except TimeoutError:
            return None
        except KeyError as error:  # a binary frame
            raise Closed(4400, "Send text frames") from error
        if len(text) > self.settings.max_body_bytes:
            raise Closed(4400, "Message too large (max_body_bytes)")
        try:
            message = json.loads(text)
        except ValueError as error:
            raise Closed(4400, "Message is not JSON") from error
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise Closed(4400, "Message has no type")
        return message

    async def _initialise(self, websocket: WebSocket) -> Context:
        message = await self._receive(websocket, self.settings.ws_init_timeout_seconds)
        if message is None:
            raise Closed(4408, "Connection initialisation timeout")
        if message["type"] != "connection_init":
            raise Closed(4401, "Unauthorized: send connection_init first")
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            raise Closed(4400, "Invalid connection_init payload")
        header = payload.get("Authorization", payload.get("authorization"))
        scheme, _, token = str(header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Closed(4403, 'Forbidden: connection_init needs {"Authorization": "Bearer …"}')
        try:
            principal = await self.authenticator.principal(
                websocket, token.strip(), self.engine.connect
            )
        except AuthRefused as refused:
            code = 4429 if isinstance(refused.error, RateLimited) else 4403
            raise Closed(code, f"{refused.error.code}: {refused.error.message}") from refused
        if principal.scope != TokenScope.USER or principal.user is None:
            raise Closed(4403, "Forbidden: an ingest token cannot subscribe")
        if principal.organization is None:
            raise Closed(4403, "Forbidden: the token's organization is gone")
        await websocket.send_json({"type": "connection_ack"})
        return Context(
            db=RequestDatabase(self.engine),  # unused: each tick opens its own (LiveUsage)
            clock=self.clock,
            viewer=principal.user,
            organization=principal.organization,
            limits=self.limits,
            token_id=principal.token_id,
            live=self.live,
        )

    async def _serve(
        self, websocket: WebSocket, context: Context, operations: dict[str, asyncio.Task[None]]
    ) -> None:
        idle = self.settings.ws_idle_timeout_seconds
        while True:
            for done in [key for key, task in operations.items() if task.done()]:
                del operations[done]
            message = await self._receive(websocket, idle if not operations else 3600.0)
            if message is None:
                if not any(not task.done() for task in operations.values()):
                    raise Closed(1000, "Idle: no subscription")
                continue
            kind = message["type"]
            if kind == "ping":
                await websocket.send_json({"type": "pong"})
            elif kind == "pong":
                pass
            elif kind == "connection_init":
                raise Closed(4429, "Too many initialisation requests")
            elif kind == "subscribe":
                await self._subscribe(websocket, context, message, operations)
            elif kind == "complete":
                task = operations.pop(str(message.get("id")), None)
                if task is not None:
                    task.cancel()
            else:
                raise Closed(4400, f"Unknown message type {kind[:40]!r}")

    async def _subscribe(
        self,
        websocket: WebSocket,
        context: Context,
        message: dict[str, Any],
        operations: dict[str, asyncio.Task[None]],
    ) -> None:
        operation_id, payload = message.get("id"), message.get("payload")
        if not isinstance(operation_id, str) or not isinstance(payload, dict):
            raise Closed(4400, "subscribe needs an id and a payload")
        if operation_id in operations and not operations[operation_id].done():
            raise Closed(4409, f"Subscriber for {operation_id[:60]} already exists")
        slot = await self.slots.acquire(context.token_id)
        if slot is None:
            limit = self.settings.ws_max_subscriptions_per_token
            error = RateLimited(
                f"At most {limit} live subscriptions per token "
                f"(setting ws_max_subscriptions_per_token)."
            )
            await websocket.send_json(
                {
                    "id": operation_id,
                    "type": "error",
                    "payload": [{"message": error.message, "extensions": {"code": error.code}}],
                }
            )
            return
        task = asyncio.get_running_loop().create_task(
            self._run(websocket, context, operation_id, payload)
        )
        # A callback, not a ``finally``: a task cancelled before it started runs no code.
        task.add_done_callback(functools.partial(self._release, slot))
        operations[operation_id] = task

    def _release(self, slot: Slot, _: asyncio.Task[None]) -> None:
        self.slots.release(slot)

    async def _run(
        self, websocket: WebSocket, context: Context, operation_id: str, payload: dict[str, Any]
    ) -> None:
        try:
            query = payload.get("query")
            variables = payload.get("variables")
            outcome = await self.schema.subscribe(
                query if isinstance(query, str) else None,
                variable_values=variables if isinstance(variables, dict) else None,
                context_value=context,
                operation_name=payload.get("operationName"),
            )
            if isinstance(outcome, ExecutionResult):
                await self._error(websocket, operation_id, outcome)
                return
            stream: AsyncGenerator[ExecutionResult, None] = outcome  # type: ignore[assignment]
            async for result in stream:
                if result.data is None and result.errors:
                    await self._error(websocket, operation_id, result)
                    return
                await websocket.send_json(
                    {"id": operation_id, "type": "next", "payload": _formatted(result)}
                )
            await websocket.send_json({"id": operation_id, "type": "complete"})
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away

    async def _error(self, websocket: WebSocket, operation_id: str, result: Any) -> None:
        errors = [error.formatted for error in (result.errors or [])]
        await websocket.send_json({"id": operation_id, "type": "error", "payload": errors})


def _formatted(result: ExecutionResult) -> dict[str, Any]:
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    return body
