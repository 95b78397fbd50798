"""Give every GraphQL error a code, and hide what a client must not see.

Errors a client caused (parse, validation, limits, bad arguments) and CreditLensErrors keep
their message and get a code. Any other exception raised while resolving is a bug: it is
logged with the request id and the client sees INTERNAL_SERVER_ERROR with that id only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.error import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from app.errors import CreditLensError

log = logging.getLogger("creditlens.graphql")

# Messages of the depth, alias and token limiters (strawberry and graphql-core).
_LIMIT_MARKERS = (
    "exceeds maximum operation depth",
    "maximum number of aliases",
    "maximum number of tokens",
    "QUERY_TOO_COMPLEX",
)


def classify(error: GraphQLError) -> str:
    """The code of an error that does not carry one."""
    message = error.message
    if any(marker in message for marker in _LIMIT_MARKERS):
        return "QUERY_TOO_COMPLEX"
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.path is None and error.original_error is not None:
        return "BAD_USER_INPUT"  # a variable's value could not be coerced
    if message.startswith("Variable ") or "got invalid value" in message:
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def _is_expected(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None or isinstance(original, CreditLensError | GraphQLError):
        return True
    # Raised while coercing arguments (before any resolver ran): the client's input.
    return error.path is None


class ErrorCodes(SchemaExtension):
    """Runs last: every error leaves with ``extensions.code``."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
            result.errors = [self._coded(error) for error in result.errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        request_id = getattr(context, "request_id", None)
        if not _is_expected(error):
            log.error(
                "unexpected error in %s (request %s)",
                ".".join(str(part) for part in error.path or []),
                request_id,
                exc_info=error.original_error,
            )
            return GraphQLError(
                "Internal server error. Quote the request id when you report it.",
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
            )
        extensions = dict(error.extensions or {})
        if "code" not in extensions:
            extensions["code"] = classify(error)
            error.extensions = extensions
        return error
