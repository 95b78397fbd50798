"""``GET /v1/exports/usage.csv``: a usage report as CSV, streamed (docs/export.md).

The same token, permissions, time-range rules and code path as GraphQL: the token is
checked as for ``/graphql`` (user tokens only), the viewer must be an admin on a paid plan
(``graphql_schema.permissions.usage_refusal``, the panels' own classes), and the rows come
from ``resolvers.export``, which resolves the range and key with ``resolvers.usage``.
Everything that can be refused is refused before the first byte, as JSON in the shape of
the other REST routes (``error``: the lower-case code) with the GraphQL ``code`` and, for
bad input, the ``field`` (the parameter). The first chunk of rows is read before the
answer starts, so its errors are JSON too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app.auth import Authenticator, AuthRefused, signed_in_user
from app.availability import RETRY_AFTER_SECONDS, DatabaseFile, is_outage, unavailable
from app.export_csv import Export, parameter_of, parse_options, prepare
from app.rate_limit import Limiter
from app.settings import Settings
from db.session import RequestDatabase
from domain.clock import Clock
from domain.errors import CreditLensError, RateLimited
from graphql_schema.permissions import usage_refusal
from resolvers.context import Context, Limits

logger = logging.getLogger("creditlens.export")

USER_TOKENS_ONLY = (
    "This token has the ingest scope: it can send events to /v1/events but not read "
    "usage. Use a user token for exports."
)


class Refusal(Exception):
    def __init__(self, error: CreditLensError, headers: dict[str, str] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = headers or {}


def _json(refusal: Refusal) -> JSONResponse:
    error = refusal.error
    body: dict[str, object] = {
        "error": error.code.lower(),
        "code": error.code,
        "message": error.message,
    }
    field = parameter_of(error.field)
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=error.http_status, headers=refusal.headers)


class ExportRoute:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        clock: Clock,
        *,
        limiter: Limiter,
        authenticator: Authenticator,
        database_file: DatabaseFile,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.limiter = limiter
        self.authenticator = authenticator
        self.database_file = database_file
        self.limits = Limits(
            max_page_size=settings.max_page_size, max_series_points=settings.max_series_points
        )

    async def handle(self, request: Request) -> Response:
        """Answer one export: the CSV stream, or a coded JSON refusal."""
        try:
            token = self.authenticator.token(request)
            options = parse_options(
                {name: request.query_params.getlist(name) for name in request.query_params}
            )
        except AuthRefused as refused:
            return _json(Refusal(refused.error, refused.headers))
        except CreditLensError as error:
            return _json(Refusal(error))
        db = RequestDatabase(self.engine)
        try:
            self.database_file.check()
            context = await self._context(request, token, db)
            export = await prepare(context, options)
        except Refusal as refusal:
            await db.close()
            return _json(refusal)
        except CreditLensError as error:
            await db.close()
            if error.code == CreditLensError.code:
                raise
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if error.http_status == 503 else {}
            return _json(Refusal(error, headers))
        except Exception as error:
            await db.close()
            if not is_outage(error):
                raise
            return _json(Refusal(unavailable(), {"Retry-After": str(RETRY_AFTER_SECONDS)}))
        return StreamingResponse(
            _closing(export, db),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{export.filename}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def _context(self, request: Request, token: str, db: RequestDatabase) -> Context:
        try:
            principal = await self.authenticator.principal(request, token, db.statement_connection)
        except AuthRefused as refused:
            raise Refusal(refused.error, refused.headers) from refused
        try:
            user, organization = signed_in_user(request, principal, not_a_user=USER_TOKENS_ONLY)
        except CreditLensError as error:
            raise Refusal(error) from error
        decision = await self.limiter.take(("export", principal.token_id))
        if not decision.allowed:
            raise Refusal(
                RateLimited(
                    f"Too many requests for this token: at most {self.limiter.per_minute} "
                    f"per minute (setting rate_limit_per_minute). Retry in "
                    f"{decision.retry_after} s."
                ),
                {"Retry-After": str(decision.retry_after)},
            )
        context = Context(
            db=db,
            clock=self.clock,
            viewer=user,
            organization=organization,
            limits=self.limits,
            request_id=getattr(request.state, "request_id", ""),
            token_id=principal.token_id,
        )
        refusal = usage_refusal(context)
        if refusal is not None:
            raise Refusal(refusal)
        return context


async def _closing(export: Export, db: RequestDatabase) -> AsyncIterator[bytes]:
    """The export's bytes; the request's connection is closed at the end, or when the
    client goes away. A failure after the first byte can no longer change the status: it
    is logged and the stream is cut, so the client sees an incomplete transfer, never a
    short file that looks whole."""
    try:
        async for piece in export.chunks():
            yield piece
    except Exception:
        logger.exception("export failed after its first byte")
        raise
    finally:
        await db.close()
