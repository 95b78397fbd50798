"""``/graphql``: negotiate, read the request, authenticate, rate-limit, run it, frame it.

The order is what keeps a request's cost bounded: the method and the declared length are
checked, then the Authorization header (no I/O), then the body is read whole (capped and
timed, ``app.body``) before the first database connection is taken, so a slow client
never holds one. Authentication runs before strawberry so a refused caller costs one
indexed read (none once its address has failed too often, ``app.auth``). The operations
run within ``execution_timeout_seconds``. The GraphQL-over-HTTP rules (methods, media
types, status codes, batching) are in ``app.graphql_http``; GraphiQL is our own page
(``app.graphiql``), served from vendored files.
"""

from __future__ import annotations

import asyncio
import math

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from app.answer_cache import Answer, AnswerCache, AnswerKey, answer_key
from app.auth import Authenticator, AuthRefused, signed_in_user
from app.availability import RETRY_AFTER_SECONDS, DatabaseFile, is_outage, unavailable
from app.body import BodyLimits, BodyRefused, check_declared_length, read_body
from app.graphiql import graphiql_page
from app.graphql_http import (
    JSON,
    HTTPRefusal,
    Operation,
    body_refusal,
    check_content_type,
    encode,
    is_request_error,
    negotiate,
    operations_of_body,
    operations_of_get,
)
from app.metrics import Metrics
from app.rate_limit import Limiter
from app.settings import Settings
from app.webhooks.policy import GuardedWebhooks
from db.session import RequestDatabase
from domain.clock import Clock
from domain.errors import (
    VALIDATION_FAILED,
    BadRequest,
    CreditLensError,
    QueryTooComplex,
    RateLimited,
    Unavailable,
)
from graphql_schema.answer_policy import AnswerPolicy
from resolvers.context import Context, Limits

INGEST_ONLY = (
    "This token has the ingest scope: it can send events to /v1/events but not query. "
    "Use a user token for GraphQL."
)
ALLOWED_METHODS = {"Allow": "GET, POST"}
# What each method may run (GraphQL over HTTP: no mutation over GET).
GET_OPERATIONS = frozenset({OperationType.QUERY})
POST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


def _unavailable(error: Unavailable) -> HTTPRefusal:
    return HTTPRefusal(
        error,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        extensions={"retryAfter": RETRY_AFTER_SECONDS},
    )


class GraphQLRoute:
    def __init__(
        self,
        schema: strawberry.Schema,
        settings: Settings,
        engine: AsyncEngine,
        clock: Clock,
        *,
        metrics: Metrics,
        limiter: Limiter,
        authenticator: Authenticator,
        database_file: DatabaseFile,
        answers: AnswerCache | None = None,
    ) -> None:
        self.schema = schema
        self.settings = settings
        self.engine = engine
        # PostgreSQL reads in autocommit: each statement is its own snapshot, exactly as in
        # a READ COMMITTED transaction, without the BEGIN and ROLLBACK round trips that
        # doubled a report's statements (bench/PROPOSALS.md R4). Writes (the alert
        # mutations, resolvers.alerts) switch back to a transaction. SQLite keeps its
        # read transaction: there it gives a request one snapshot across its statements.
        self.read_engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )
        self.clock = clock
        self.metrics = metrics
        self.limiter = limiter
        self.authenticator = authenticator
        self.database_file = database_file
        self.body_limits = BodyLimits(
            settings.max_body_bytes, "max_body_bytes", settings.body_timeout_seconds
        )
        self.limits = Limits(
            max_page_size=settings.max_page_size, max_series_points=settings.max_series_points
        )
        self.webhooks = GuardedWebhooks(settings)
        self.answers = AnswerCache(settings.answer_cache_bytes) if answers is None else answers
        self.answer_policy = AnswerPolicy(schema._schema)

    def _is_ide_request(self, request: Request) -> bool:
        return (
            request.method == "GET"
            and self.settings.graphiql
            and "text/html" in request.headers.get("accept", "")
            and "query" not in request.query_params
        )

    async def handle(self, request: Request) -> Response:
        """Answer one GraphQL-over-HTTP request (see the module docstring for the order)."""
        if self._is_ide_request(request):
            return graphiql_page()
        media_type = negotiate(request.headers.get("accept"))
        answer_as = JSON if media_type is None else media_type
        try:
            if media_type is None:
                raise HTTPRefusal(
                    BadRequest("Accept application/graphql-response+json or application/json."),
                    status=406,
                )
            return await self._handle(request, answer_as)
        except HTTPRefusal as refusal:
            self.metrics.graphql_error(refusal.code)
            return encode(refusal.body(), refusal.status, answer_as, refusal.headers)

    async def _handle(self, request: Request, media_type: str) -> Response:
        if request.method not in ("GET", "POST"):
            raise HTTPRefusal(
                BadRequest("Use GET (queries) or POST."), status=405, headers=ALLOWED_METHODS
            )
        token, body = await self._receive(request)
        db = RequestDatabase(self.read_engine)
        try:
            self.database_file.check()
            context = await self._authenticate(request, token, db)
            await self._take_request(context.token_id)
            if request.method == "GET":
                operations, batch = operations_of_get(request), False
            else:
                check_content_type(request)
                operations, batch = operations_of_body(
                    body,
                    batching=self.settings.batching,
                    max_operations=self.settings.max_batch_operations,
                )
            key = None if batch else self._answer_key(operations[0], context, media_type)
            answer = None if key is None else self.answers.get(key, self.clock())
            if answer is not None:
                return await self._reuse(request, answer, context, media_type)
            try:
                results = await self._execute_all(request, operations, context)
            finally:
                request.state.operation = ",".join(context.operation_names) or None
            await self._charge_cost(context.token_id, context)
        except HTTPRefusal:
            raise
        except Unavailable as error:
            raise _unavailable(error) from error
        except Exception as error:
            if not is_outage(error):
                raise
            raise _unavailable(unavailable()) from error
        finally:
            await db.close()
        response = self._respond(results, batch, media_type)
        if key is not None:
            self._keep(key, operations[0], results[0], response, context)
        return response

    def _answer_key(
        self, operation: Operation, context: Context, media_type: str
    ) -> AnswerKey | None:
        if not self.answers.enabled:
            return None
        return answer_key(
            context.viewer,
            context.organization,
            media_type,
            operation.query,
            operation.operation_name,
            operation.variables,
            operation.extensions,
        )

    async def _reuse(
        self, request: Request, answer: Answer, context: Context, media_type: str
    ) -> Response:
        """A kept answer, charged and logged as its execution was."""
        self.metrics.answer_reused(True)
        context.operation_names.extend(answer.operation_names)
        context.query_cost = answer.cost
        request.state.operation = ",".join(answer.operation_names) or None
        await self._charge_cost(context.token_id, context)
        return Response(
            answer.body,
            status_code=answer.status,
            media_type=f"{media_type}; charset=utf-8",
        )

    def _keep(
        self,
        key: AnswerKey,
        operation: Operation,
        result: ExecutionResult,
        response: Response,
        context: Context,
    ) -> None:
        """Keep an answer without errors to a document the policy allows, for as long as
        the clock lets it stand (``resolvers.context.Freshness``)."""
        self.metrics.answer_reused(False)
        valid_until = context.freshness.valid_until()
        if (
            result.errors
            or result.extensions
            or valid_until is None
            or not self.answer_policy.reusable(operation.query)
        ):
            return
        answer = Answer(
            bytes(response.body),
            response.status_code,
            valid_until,
            tuple(context.operation_names),
            context.query_cost,
        )
        self.answers.put(key, answer)

    async def _receive(self, request: Request) -> tuple[str, bytes]:
        """The token and the whole body, before any connection is taken: a slow client
        holds only its socket."""
        try:
            check_declared_length(request, self.body_limits)
            token = self.authenticator.token(request)
            body = await read_body(request, self.body_limits) if request.method == "POST" else b""
        except BodyRefused as error:
            raise body_refusal(error) from error
        except AuthRefused as refused:
            raise self._auth_refusal(refused) from refused
        return token, body

    async def _take_request(self, token_id: int) -> None:
        """One request from the token's bucket, or 429."""
        decision = await self.limiter.take(("graphql", token_id))
        if decision.allowed:
            return
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

    async def _authenticate(self, request: Request, token: str, db: RequestDatabase) -> Context:
        try:
            principal = await self.authenticator.principal(request, token, db.statement_connection)
        except AuthRefused as refused:
            raise self._auth_refusal(refused) from refused
        try:
            user, organization = signed_in_user(request, principal, not_a_user=INGEST_ONLY)
        except CreditLensError as error:
            raise HTTPRefusal(error) from error
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

    def _auth_refusal(self, refused: AuthRefused) -> HTTPRefusal:
        if refused.retry_after is None:
            return HTTPRefusal(refused.error, headers=refused.headers)
        self.metrics.rate_limited("authentication")
        return HTTPRefusal(
            refused.error, headers=refused.headers, extensions={"retryAfter": refused.retry_after}
        )

    async def _execute_all(
        self, request: Request, operations: list[Operation], context: Context
    ) -> list[ExecutionResult]:
        """Run the operations within ``execution_timeout_seconds``, or refuse them all.

        At the limit the statement in flight is interrupted and the work cancelled, so the
        request's connection is free again at once; no partial data is sent.
        """
        seconds = self.settings.execution_timeout_seconds
        loop = asyncio.get_running_loop()
        interrupting: list[asyncio.Task[None]] = []
        # Due with the deadline: a cancelled aiosqlite statement would otherwise run on in
        # its thread, and closing its connection would wait for it to finish
        # (db.session.RequestDatabase.interrupt). Cheaper than running the work in a task
        # of its own (measured: 0.2 ms a request).
        interrupt = loop.call_later(
            seconds, lambda: interrupting.append(loop.create_task(context.db.interrupt()))
        )
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                return await self._run(request, operations, context)
        except TimeoutError as error:
            if not deadline.expired():
                raise
            raise HTTPRefusal(
                QueryTooComplex(
                    f"The request did not finish within {seconds:g} s (setting "
                    "execution_timeout_seconds) and was stopped: ask for a shorter range, "
                    "fewer fields or fewer keys."
                ),
                extensions={"limit": "execution_timeout_seconds", "maximum": seconds},
            ) from error
        finally:
            interrupt.cancel()
            if interrupting:
                await asyncio.wait(interrupting)

    async def _run(
        self, request: Request, operations: list[Operation], context: Context
    ) -> list[ExecutionResult]:
        return [await self._execute(request, operation, context) for operation in operations]

    async def _execute(
        self, request: Request, operation: Operation, context: Context
    ) -> ExecutionResult:
        allowed = POST_OPERATIONS if request.method == "POST" else GET_OPERATIONS
        try:
            result: ExecutionResult = await self.schema.execute(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                operation_name=operation.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=operation.extensions,
            )
            return result
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

    async def _charge_cost(self, token_id: int, context: Context) -> None:
        """Cost-aware limits charge what the queries cost beyond the one token taken."""
        if self.settings.rate_limit_cost_aware:
            units = math.ceil(context.query_cost / self.settings.rate_limit_cost_unit)
            await self.limiter.charge(("graphql", token_id), max(0, units - 1))

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
