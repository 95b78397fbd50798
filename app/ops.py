"""Operations endpoints: liveness, readiness and metrics."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from app.auth import WWW_AUTHENTICATE, bearer_token
from app.availability import DatabaseFile
from app.metrics import Metrics
from db.migrate import current_revision, head_revision
from domain.errors import Unauthenticated, Unavailable

Endpoint = Callable[[Request], Awaitable[Response]]


async def healthz(_: Request) -> Response:
    """The process is up and serving."""
    return JSONResponse({"status": "ok"})


def readyz(engine: AsyncEngine, database_file: DatabaseFile) -> Endpoint:
    async def endpoint(_: Request) -> Response:
        """The database answers, its schema is at the newest migration, and (SQLite) its
        file is still the one the server opened."""
        head = head_revision()
        try:
            # Before connecting: a connection to a deleted SQLite path would create it anew.
            database_file.check()
        except Unavailable as error:
            return JSONResponse(
                {"status": "unavailable", "database": "missing", "detail": error.message},
                status_code=503,
            )
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                current = await current_revision(conn)
        except (SQLAlchemyError, OSError) as error:
            return JSONResponse(
                {
                    "status": "unavailable",
                    "database": "unreachable",
                    "detail": type(error).__name__,
                },
                status_code=503,
            )
        if current != head:
            return JSONResponse(
                {"status": "unavailable", "migration": current, "expected": head},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "migration": current})

    return endpoint


def metrics_endpoint(metrics: Metrics, token: SecretStr | None = None) -> Endpoint:
    """Prometheus text; with ``token`` set, only for ``Authorization: Bearer <token>``."""
    expected = token.get_secret_value().encode() if token is not None else b""

    async def endpoint(request: Request) -> Response:
        if expected:  # unset or empty: open, as Prometheus scrapes by default
            given = (bearer_token(request) or "").encode()
            if not hmac.compare_digest(given, expected):
                error = Unauthenticated("GET /metrics needs the metrics token (metrics_token).")
                return JSONResponse(
                    {"error": error.code.lower(), "message": error.message},
                    status_code=error.http_status,
                    headers=WWW_AUTHENTICATE,
                )
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return endpoint
