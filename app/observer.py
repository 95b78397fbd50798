"""The outside of every HTTP request: its id, its metrics, its log line, its last resort.

Each request gets an id (``X-Request-ID`` on every answer) and one log line on
``creditlens.http``. Whatever escapes the routes is answered here, as JSON with that id,
instead of by starlette's plain-text 500 (issue 10, class 6): a database outage is 503
``SERVICE_UNAVAILABLE`` with ``Retry-After``, anything else a logged, masked 500. A client
that goes away before its request is read is counted and logged as status 499 ("client
closed request", as nginx says), not as a server error (class 10).
"""

from __future__ import annotations

import json
import logging
import os
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.availability import RETRY_AFTER_SECONDS, is_outage, unavailable
from app.logging import log_info
from app.metrics import Metrics
from domain.errors import CreditLensError
from graphql_schema.error_codes import INTERNAL_MESSAGE

log = logging.getLogger("creditlens.http")

DISCONNECTED = 499
KNOWN_PATHS = frozenset({"/graphql", "/v1/events", "/healthz", "/readyz", "/metrics"})


def failure_body(path: str, code: str, message: str, request_id: str) -> dict[str, object]:
    """An error in the shape of the surface: GraphQL's on ``/graphql``, else ``/v1``'s."""
    if path == "/graphql":
        return {
            "errors": [{"message": message, "extensions": {"code": code, "requestId": request_id}}]
        }
    return {"error": code.lower(), "message": message, "requestId": request_id}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class RequestObserver:
    """ASGI middleware around the whole application (inside starlette's own error page)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 128 random bits as 32 hex digits, as uuid4().hex gave, for a third of its cost.
        request_id = os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False
        message = "request"

        async def send_with_id(event: Message) -> None:
            nonlocal status, response_started
            if event["type"] == "http.response.start":
                status = event["status"]
                response_started = True
                event["headers"] = [
                    *event.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(event)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            status, message = DISCONNECTED, "client disconnected"
        except Exception as error:
            if response_started:
                raise  # too late to answer: the server closes the connection
            await self._answer(scope, error, request_id, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
            self.metrics.request(path, status, elapsed)
            state = scope.get("state", {})
            log_info(
                log,
                message,
                {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "viewer": state.get("viewer"),
                    "operation": state.get("operation"),
                    "user_agent": _header(scope, b"user-agent"),
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )

    async def _answer(self, scope: Scope, error: Exception, request_id: str, send: Send) -> None:
        """The JSON answer to an exception no route handled."""
        headers = [(b"content-type", b"application/json")]
        failure: CreditLensError
        if is_outage(error):
            log.warning(
                "database unavailable: %s",
                type(error).__name__,
                extra={"request_id": request_id},
            )
            failure = unavailable()
            headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
        else:
            log.error("unexpected error", exc_info=error, extra={"request_id": request_id})
            failure = CreditLensError(INTERNAL_MESSAGE)  # the base class: INTERNAL_SERVER_ERROR
        payload = failure_body(scope["path"], failure.code, failure.message, request_id)
        body = json.dumps(payload).encode()
        await send(
            {"type": "http.response.start", "status": failure.http_status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})
