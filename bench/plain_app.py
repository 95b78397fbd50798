"""The floor: plain Starlette JSON routes that run the same SQL as the GraphQL fields.

    uvicorn --app-dir bench plain_app:app      # settings from CREDITLENS_* like app.asgi

Each route does what a GraphQL request does, minus GraphQL: the same bearer-token lookup
(``principal_of``: token, user and organization in one statement) on the same connection
(``RequestDatabase.statement_connection``), one connection for the request's reads, the
same range resolution and the same ``db.queries`` functions, then ``JSONResponse``. The
read benchmark runs it beside the real app, so the ratio of the two is GraphQL's own cost.

- ``GET /plain/endpoint-usage?preset=LAST_30_DAYS[&key=ID]``: scenario (a)
- ``GET /plain/report?preset=LAST_90_DAYS[&tz=ZONE]``: scenario (b), totals, endpoints,
  sources and a daily series
- ``GET /plain/keys-endpoint-usage?preset=LAST_30_DAYS&first=50``: scenario (c)
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.auth import principal_of
from app.settings import Settings
from app.startup_heap import freeze_startup_heap
from db.engine import create_engine
from db.queries import reports
from db.queries.directory import find_api_key, list_api_keys
from db.session import RequestDatabase
from domain.clock import system_clock
from domain.dimensions import Dimension
from domain.periods import Granularity, period_edges
from domain.presets import Preset
from domain.records import OrganizationRecord, Share
from domain.roles import Role
from domain.scopes import TokenScope
from domain.time_range import ResolvedRange, resolve_range


def _shares(rows: list[Share], name: str) -> list[dict[str, Any]]:
    return [
        {
            name: row.value,
            "calls": row.calls,
            "creditsConsumed": row.credits,
            "percentOfTotal": round(row.percent, 2),
        }
        for row in rows
    ]


def _range(request: Request, organization: OrganizationRecord) -> ResolvedRange:
    return resolve_range(
        preset=Preset(request.query_params.get("preset", "LAST_30_DAYS")),
        start=None,
        end=None,
        timezone=request.query_params.get("tz"),
        organization=organization,
        now=system_clock(),
    )


def _iso(at: datetime) -> str:
    return at.isoformat()


def create_plain_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    engine = create_engine(settings.database_url, pool_size=settings.pool_size)
    # As app/graphql_route.py: PostgreSQL reads in autocommit (no BEGIN and ROLLBACK).
    reads = (
        engine.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name == "postgresql"
        else engine
    )

    @asynccontextmanager
    async def reading(
        request: Request,
    ) -> AsyncIterator[tuple[OrganizationRecord | None, AsyncConnection]]:
        """The viewer's organization (None: refused) and the request's connection, taken as
        app/graphql_route.py takes them."""
        db = RequestDatabase(reads)
        try:
            organization = await viewer_org(request, db)
            async with db.connection() as conn:
                yield organization, conn
        finally:
            await db.close()

    async def viewer_org(request: Request, db: RequestDatabase) -> OrganizationRecord | None:
        async with db.statement_connection() as conn:
            principal, _ = await principal_of(request, conn, settings, system_clock)
        if principal is None or principal.scope != TokenScope.USER or principal.user_id is None:
            return None
        # The same lookup as app/graphql_route.py: since 3afc3a4 the token statement also
        # returns the user and organization rows.
        user, organization = principal.user, principal.organization
        if user is None or user.role is not Role.ADMIN:
            return None
        return organization

    async def endpoint_usage(request: Request) -> JSONResponse:
        async with reading(request) as (organization, conn):
            if organization is None:
                return JSONResponse({"error": "UNAUTHENTICATED"}, status_code=401)
            span = _range(request, organization)
            key_ids = None
            if "key" in request.query_params:
                key = await find_api_key(
                    conn, organization_id=organization.id, external_id=request.query_params["key"]
                )
                if key is None:
                    return JSONResponse({"error": "NOT_FOUND"}, status_code=404)
                key_ids = [key.id]
            rows = await reports.breakdown(
                conn,
                organization_id=organization.id,
                dimension=Dimension.ENDPOINT,
                start=span.start,
                end=span.end,
                api_key_ids=key_ids,
            )
        return JSONResponse({"endpointUsage": _shares(rows, "endpoint")})

    async def report(request: Request) -> JSONResponse:
        async with reading(request) as (organization, conn):
            if organization is None:
                return JSONResponse({"error": "UNAUTHENTICATED"}, status_code=401)
            span = _range(request, organization)
            common = {
                "organization_id": organization.id,
                "start": span.start,
                "end": span.end,
                "api_key_ids": None,
            }
            total = await reports.totals(conn, **common)
            by_endpoint = await reports.breakdown(conn, dimension=Dimension.ENDPOINT, **common)
            by_source = await reports.breakdown(conn, dimension=Dimension.SOURCE, **common)
            edges = period_edges(span.start, span.end, Granularity.DAY, span.zone)
            series = await reports.series(
                conn, organization_id=organization.id, edges=edges, api_key_ids=None
            )
        return JSONResponse(
            {
                "calls": total.calls,
                "creditsConsumed": total.credits,
                "byEndpoint": _shares(by_endpoint, "endpoint"),
                "bySource": _shares(by_source, "source"),
                "series": [
                    {
                        "start": _iso(low),
                        "end": _iso(high),
                        "calls": figures.calls,
                        "creditsConsumed": figures.credits,
                    }
                    for low, high, figures in zip(edges[:-1], edges[1:], series, strict=True)
                ],
            }
        )

    async def keys_endpoint_usage(request: Request) -> JSONResponse:
        async with reading(request) as (organization, conn):
            if organization is None:
                return JSONResponse({"error": "UNAUTHENTICATED"}, status_code=401)
            span = _range(request, organization)
            keys, _ = await list_api_keys(
                conn,
                organization_id=organization.id,
                first=int(request.query_params.get("first", "50")),
                after_id=None,
                include_revoked=False,
            )
            per_key = await reports.breakdown_per_key(
                conn,
                organization_id=organization.id,
                dimension=Dimension.ENDPOINT,
                start=span.start,
                end=span.end,
                api_key_ids=[key.id for key in keys],
            )
        return JSONResponse(
            {
                "nodes": [
                    {"id": key.external_id, "endpointUsage": _shares(per_key[key.id], "endpoint")}
                    for key in keys
                ]
            }
        )

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        freeze_startup_heap()  # as the app does, so the two compare alike
        yield
        await engine.dispose()

    return Starlette(
        routes=[
            Route("/plain/endpoint-usage", endpoint_usage),
            Route("/plain/report", report),
            Route("/plain/keys-endpoint-usage", keys_endpoint_usage),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


app = create_plain_app()
