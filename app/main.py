"""The ASGI application factory."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.graphql_route import GraphQLRoute
from app.ingest_route import IngestRoute
from app.logging import configure_logging
from app.metrics import Metrics
from app.ops import healthz, metrics_endpoint, readyz
from app.rate_limit import RateLimiter
from app.settings import Settings
from app.webhooks.dispatcher import dispatching
from db.engine import create_engine
from domain.clock import Clock, system_clock
from graphql_schema.schema import build_schema

log = logging.getLogger("creditlens.http")


class RequestObserver:
    """Gives each request an id (``X-Request-ID``), counts it and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope["path"] if scope["path"] in _KNOWN_PATHS else "other"
            self.metrics.inc(
                "creditlens_requests_total",
                "HTTP requests answered.",
                path=path,
                status=str(status),
            )
            self.metrics.observe_latency(elapsed, path=path)
            state = scope.get("state", {})
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "viewer": state.get("viewer"),
                    "operation": state.get("operation"),
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )


GRAPHQL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_KNOWN_PATHS = {"/graphql", "/v1/events", "/healthz", "/readyz", "/metrics"}


def create_app(settings: Settings | None = None, *, clock: Clock = system_clock) -> Starlette:
    """The creditlens application; ``clock`` is injectable so tests can pin "now"."""
    settings = settings or Settings()
    engine = create_engine(
        settings.database_url, echo=settings.database_echo, pool_size=settings.pool_size
    )
    configure_logging(settings)
    metrics = Metrics()
    schema = build_schema(settings)
    limiter = RateLimiter(settings.rate_limit_per_minute, clock)
    ingest_limiter = RateLimiter(settings.ingest_rate_limit_per_minute, clock)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # The webhook dispatcher runs in every worker (docs/alerts.md).
        async with dispatching(engine, settings, clock=clock):
            yield
        await engine.dispose()

    graphql = GraphQLRoute(schema, settings, engine, clock, metrics=metrics, limiter=limiter)
    routes = [
        # Every method reaches the handler, which answers 405 in the GraphQL shape.
        Route("/graphql", graphql.handle, methods=list(GRAPHQL_METHODS)),
        Route("/v1/events", IngestRoute(settings, engine, clock).handle, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz(engine), methods=["GET"]),
        Route("/metrics", metrics_endpoint(metrics), methods=["GET"]),
    ]
    middleware = [Middleware(RequestObserver, metrics=metrics)]
    if settings.cors_allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_allowed_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", "accept"],
                expose_headers=["retry-after", "x-request-id"],
                max_age=600,
            )
        )
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.engine = engine
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.rate_limiter = limiter
    app.state.ingest_rate_limiter = ingest_limiter
    app.state.schema = schema
    return app
