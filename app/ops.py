"""Operations endpoints: liveness, readiness and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from app.metrics import Metrics
from db.migrate import current_revision, head_revision


async def healthz(_: Request) -> Response:
    """The process is up and serving."""
    return JSONResponse({"status": "ok"})


def readyz(engine: AsyncEngine) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(_: Request) -> Response:
        """The database answers and its schema is at the newest migration."""
        head = head_revision()
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


def metrics_endpoint(metrics: Metrics) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(_: Request) -> Response:
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return endpoint
