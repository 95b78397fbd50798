"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute

from app.auth import Authenticator
from app.availability import DatabaseFile
from app.cors import cors_middleware
from app.dashboard import dashboard
from app.export_route import ExportRoute
from app.folding import folding
from app.graphql_route import GraphQLRoute
from app.ingest_route import IngestRoute
from app.live_usage import LiveUsageHub
from app.logging import configure_logging
from app.metrics import Metrics
from app.observer import RequestObserver
from app.ops import healthz, metrics_endpoint, readyz
from app.pages import static_files
from app.rate_limit import Limiter
from app.redis_client import redis_client
from app.settings import Settings
from app.shared_rate_limit import Outage, make_limiter
from app.startup_heap import freeze_startup_heap
from app.subscription_slots import SubscriptionSlots
from app.subscriptions import SubscriptionsEndpoint
from app.webhooks.dispatcher import dispatching
from db.engine import create_engine
from domain.clock import Clock, system_clock
from domain.errors import BadRequest, NotFound, Unavailable
from graphql_schema.schema import build_schema

GRAPHQL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def http_error(request: Request, error: Exception) -> Response:
    """starlette's own refusals (no such route: 404, wrong method: 405) as JSON too."""
    assert isinstance(error, HTTPException)
    code = (NotFound if error.status_code == 404 else BadRequest).code.lower()
    return JSONResponse(
        {"error": code, "message": f"{error.detail} ({request.method})."},
        status_code=error.status_code,
        headers=error.headers,
    )


def create_app(settings: Settings | None = None, *, clock: Clock = system_clock) -> Starlette:
    """The creditlens application; ``clock`` is injectable so tests can pin "now"."""
    settings = settings or Settings()
    engine = create_engine(
        settings.database_url, echo=settings.database_echo, pool_size=settings.pool_size
    )
    configure_logging(settings)
    metrics = Metrics(settings.metrics_multiprocess_dir)
    schema = build_schema(settings)
    database_file = DatabaseFile(settings.database_url)
    redis = redis_client(settings)
    outage = Outage()
    live = LiveUsageHub(engine, redis=redis, metrics=metrics)
    slots = SubscriptionSlots(settings.ws_max_subscriptions_per_token, redis=redis, metrics=metrics)

    def limiter(name: str, per_minute: int) -> Limiter:
        return make_limiter(name, per_minute, clock, redis=redis, metrics=metrics, outage=outage)

    authenticator = Authenticator(
        settings, clock, failures=limiter("auth_failures", settings.auth_failures_per_minute)
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # Remember which file this server opened; if it is not there yet, /readyz says so.
        with suppress(Unavailable):
            database_file.check()
        freeze_startup_heap()
        # The webhook dispatcher and the rollup folder run in every worker (docs/alerts.md,
        # docs/rollups.md).
        async with (
            dispatching(engine, settings, clock=clock),
            folding(settings.database_url, metrics),
        ):
            yield
        await live.close()
        await slots.close()
        await engine.dispose()
        if redis is not None:
            await redis.aclose()

    graphql = GraphQLRoute(
        schema,
        settings,
        engine,
        clock,
        metrics=metrics,
        limiter=limiter("graphql", settings.rate_limit_per_minute),
        authenticator=authenticator,
        database_file=database_file,
    )
    ingest = IngestRoute(
        settings,
        engine,
        clock,
        metrics=metrics,
        limiter=limiter("ingest", settings.ingest_rate_limit_per_minute),
        authenticator=authenticator,
        database_file=database_file,
        live=live,
    )
    export = ExportRoute(
        settings,
        engine,
        clock,
        limiter=limiter("export", settings.rate_limit_per_minute),
        authenticator=authenticator,
        database_file=database_file,
    )
    subscriptions = SubscriptionsEndpoint(
        schema, settings, engine, clock, authenticator=authenticator, live=live, slots=slots
    )
    routes = [
        # Every method reaches the handler, which answers 405 in the GraphQL shape.
        Route("/graphql", graphql.handle, methods=list(GRAPHQL_METHODS)),
        WebSocketRoute("/graphql", subscriptions.handle),  # graphql-transport-ws
        Route("/v1/events", ingest.handle, methods=["POST"]),
        Route("/v1/exports/usage.csv", export.handle, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz(engine, database_file), methods=["GET"]),
        Route("/metrics", metrics_endpoint(metrics, settings.metrics_token), methods=["GET"]),
        Route("/", dashboard, methods=["GET"]),
        Mount("/static", app=static_files(), name="static"),
    ]
    middleware = [
        Middleware(RequestObserver, metrics=metrics),
        cors_middleware(settings.cors_allowed_origins),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    # What tests and tools read (the engine the app made, its metrics, the answer cache);
    # everything else is passed to the routes that use it.
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.answers = graphql.answers
    return app
