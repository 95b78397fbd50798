"""``/graphql``: authenticate, build the context, then let strawberry run the operation."""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL

from app.auth import WWW_AUTHENTICATE, principal_of
from app.clock import Clock
from app.context import Context, RequestDatabase
from app.responses import graphql_error
from app.settings import Settings
from db.queries.directory import get_organization, get_user
from db.queries.tokens import USER_SCOPE

INGEST_ONLY = (
    "This token has the ingest scope: it can send events to /v1/events but not query. "
    "Use a user token for GraphQL."
)


class _View(GraphQL[Context, None]):
    """strawberry's ASGI view; the context was built before it runs."""

    async def get_context(self, request: Any, response: Any) -> Context:
        context: Context = request.state.context
        return context


class GraphQLRoute:
    def __init__(self, schema: Any, settings: Settings, engine: AsyncEngine, clock: Clock) -> None:
        self.view = _View(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
        )
        self.settings = settings
        self.engine = engine
        self.clock = clock

    def _is_ide_request(self, request: Request) -> bool:
        return (
            request.method == "GET"
            and self.settings.graphiql
            and "text/html" in request.headers.get("accept", "")
            and "query" not in request.query_params
        )

    async def handle(self, request: Request) -> Response:
        if self._is_ide_request(request):
            return await self.view.render_graphql_ide(request)
        db = RequestDatabase(self.engine)
        try:
            async with db.connection() as conn:
                principal, reason = await principal_of(request, conn, self.settings, self.clock)
                if principal is None:
                    return graphql_error(request, 401, "UNAUTHENTICATED", reason, WWW_AUTHENTICATE)
                if principal.scope != USER_SCOPE or principal.user_id is None:
                    return graphql_error(request, 403, "FORBIDDEN", INGEST_ONLY)
                user = await get_user(conn, user_id=principal.user_id)
                organization = (
                    None
                    if user is None
                    else await get_organization(conn, organization_id=user.organization_id)
                )
            if user is None or organization is None:
                return graphql_error(request, 401, "UNAUTHENTICATED", "The token's user is gone.")
            request.state.context = Context(
                request=request,
                settings=self.settings,
                db=db,
                clock=self.clock,
                viewer=user,
                organization=organization,
                request_id=getattr(request.state, "request_id", ""),
            )
            try:
                return await self.view.run(request)
            except HTTPException as error:
                code = "BAD_REQUEST" if error.status_code < 500 else "INTERNAL_SERVER_ERROR"
                return graphql_error(request, error.status_code, code, error.reason)
        finally:
            await db.close()
