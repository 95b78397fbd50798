"""``/graphql``: negotiate, authenticate, rate-limit, read the request, run it, frame it.

Authentication runs before strawberry so a refused caller costs one indexed read. The
GraphQL-over-HTTP rules (methods, media types, status codes, batching) are in
``app.graphql_http``; strawberry's view only renders GraphiQL.
"""

from __future__ import annotations

import math

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from app.auth import WWW_AUTHENTICATE, principal_of
from app.graphql_http import (
    JSON,
    HTTPRefusal,
    Operation,
    check_content_type,
    encode,
    is_request_error,
    negotiate,
    operations_of_body,
    operations_of_get,
    read_body,
    too_large,
)
from app.metrics import Metrics
from app.rate_limit import RateLimiter
from app.settings import Settings
from app.webhooks.policy import GuardedWebhooks
from db.session import RequestDatabase
from domain.clock import Clock
from domain.errors import (
    VALIDATION_FAILED,
    BadRequest,
    Forbidden,
    RateLimited,
    Unauthenticated,
)
from domain.scopes import TokenScope
from resolvers.context import Context, Limits

INGEST_ONLY = (
    "This token has the ingest scope: it can send events to /v1/events but not query. "
    "Use a user token for GraphQL."
)
ALLOWED_METHODS = {"Allow": "GET, POST"}


class _View(GraphQL[Context, None]):
    """strawberry's ASGI view, used for GraphiQL only."""


class GraphQLRoute:
    def __init__(
        self,
        schema: strawberry.Schema,
        settings: Settings,
        engine: AsyncEngine,
        clock: Clock,
        *,
        metrics: Metrics,
        limiter: RateLimiter,
    ) -> None:
        self.schema = schema
        self.view = _View(schema, graphql_ide="graphiql" if settings.graphiql else None)
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.metrics = metrics
        self.limiter = limiter
        self.limits = Limits(
            max_page_size=settings.max_page_size, max_series_points=settings.max_series_points
        )
        self.webhooks = GuardedWebhooks(settings)

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
        negotiated = negotiate(request.headers.get("accept"))
        media_type = negotiated or JSON  # a 406 is itself answered in JSON
        try:
            if negotiated is None:
                raise HTTPRefusal(
                    BadRequest("Accept application/graphql-response+json or application/json."),
                    status=406,
                )
            return await self._handle(request, media_type)
        except HTTPRefusal as refusal:
            self.metrics.graphql_error(refusal.code)
            return encode(refusal.body(), refusal.status, media_type, refusal.headers)

    async def _handle(self, request: Request, media_type: str) -> Response:
        if request.method not in ("GET", "POST"):
            raise HTTPRefusal(
                BadRequest("Use GET (queries) or POST."), status=405, headers=ALLOWED_METHODS
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.settings.max_body_bytes:
            raise too_large(self.settings.max_body_bytes)
        db = RequestDatabase(self.engine)
        try:
            context = await self._authenticate(request, db)
            token_id = context.token_id
            decision = self.limiter.take(("graphql", token_id))
            if not decision.allowed:
                self.metrics.rate_limited("graphql")
                raise HTTPRefusal(
                    RateLimited(
                        f"Too many requests for this token: at most "
                        f"{self.settings.rate_limit_per_minute} per minute "
                        f"(setting rate_limit_per_minute). Retry in {decision.retry_after} s."
                    ),
                    headers={"Retry-After": str(decision.retry_after)},
                    extensions={"retryAfter": decision.retry_after},
                )
            if request.method == "GET":
                operations, batch = operations_of_get(request), False
            else:
                check_content_type(request)
                body = await read_body(request, self.settings.max_body_bytes)
                operations, batch = operations_of_body(
                    body,
                    batching=self.settings.batching,
                    max_operations=self.settings.max_batch_operations,
                )
            results = [await self._execute(request, operation, context) for operation in operations]
            self._charge_cost(token_id, context)
            request.state.operation = ",".join(context.operation_names) or None
        finally:
            await db.close()
        return self._respond(results, batch, media_type)

    async def _authenticate(self, request: Request, db: RequestDatabase) -> Context:
        async with db.connection() as conn:
            principal, reason = await principal_of(request, conn, self.settings, self.clock)
            if principal is None:
                raise HTTPRefusal(Unauthenticated(reason), headers=WWW_AUTHENTICATE)
            if principal.scope != TokenScope.USER or principal.user_id is None:
                raise HTTPRefusal(Forbidden(INGEST_ONLY))
        user, organization = principal.user, principal.organization
        if user is None or organization is None:
            raise HTTPRefusal(Unauthenticated("The token's user is gone."))
        request.state.viewer = f"user:{user.id}@organization:{organization.id}"
        return Context(
            db=db,
            clock=self.clock,
            viewer=user,
            organization=organization,
            limits=self.limits,
            request_id=getattr(request.state, "request_id", ""),
            token_id=principal.token_id,
            webhooks=self.webhooks,
        )

    async def _execute(
        self, request: Request, operation: Operation, context: Context
    ) -> ExecutionResult:
        allowed = {OperationType.QUERY}
        if request.method == "POST":
            allowed.add(OperationType.MUTATION)
        try:
            return await self.schema.execute(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                operation_name=operation.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=operation.extensions,
            )
        except InvalidOperationTypeError as error:
            if request.method == "GET" and error.operation_type is OperationType.MUTATION:
                raise HTTPRefusal(
                    BadRequest("Mutations cannot be sent with GET: use POST."),
                    status=405,
                    headers={"Allow": "POST"},
                ) from error
            raise HTTPRefusal(
                BadRequest(
                    f"{error.operation_type.value.title()} operations are not served over HTTP."
                )
            ) from error
        except CannotGetOperationTypeError as error:
            raise HTTPRefusal(
                BadRequest(error.as_http_error_reason()), code=VALIDATION_FAILED
            ) from error

    def _charge_cost(self, token_id: int, context: Context) -> None:
        """Cost-aware limits charge what the queries cost beyond the one token taken."""
        if self.settings.rate_limit_cost_aware:
            units = math.ceil(context.query_cost / self.settings.rate_limit_cost_unit)
            self.limiter.charge(("graphql", token_id), max(0, units - 1))

    def _respond(self, results: list[ExecutionResult], batch: bool, media_type: str) -> Response:
        payloads = []
        request_error = False
        for result in results:
            for error in result.errors or ():
                self.metrics.graphql_error(str((error.extensions or {}).get("code", "UNKNOWN")))
            payload: dict[str, object] = {}
            if is_request_error(result.data, result.errors):
                request_error = True
            else:
                payload["data"] = result.data
            if result.errors:
                payload["errors"] = [error.formatted for error in result.errors]
            if result.extensions:
                payload["extensions"] = result.extensions
            payloads.append(payload)
        if batch:
            return encode(payloads, 200, media_type, {})
        status = 400 if request_error and media_type != JSON else 200
        return encode(payloads[0], status, media_type, {})
