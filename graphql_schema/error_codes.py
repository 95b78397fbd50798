"""Give every GraphQL error a code, and hide what a client must not see.

Codes come from where an error arose, never from its message:

* errors that carry ``extensions.code`` keep it: CreditLensErrors, permission denials, the
  query limits of ``graphql_schema.limits``;
* the document did not parse: ``GRAPHQL_PARSE_FAILED``;
* it failed validation: ``GRAPHQL_VALIDATION_FAILED``;
* a variable or argument value could not be coerced (no resolver ran): ``BAD_USER_INPUT``;
* anything else raised while resolving is a bug: it is logged with the request id and the
  client sees ``INTERNAL_SERVER_ERROR`` with that id only (no message, trace or SQL).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult

from domain.errors import (
    INTERNAL,
    PARSE_FAILED,
    VALIDATION_FAILED,
    CreditLensError,
    InvalidInput,
)

log = logging.getLogger("creditlens.graphql")

# Raised by strawberry before validation; not GraphQL errors but HTTP-level refusals.
HTTP_LEVEL = (MissingQueryError, InvalidOperationTypeError, CannotGetOperationTypeError)

INTERNAL_MESSAGE = "Internal server error. Quote the request id when you report it."


def coded(error: GraphQLError, *, stage_code: str | None, request_id: object) -> GraphQLError:
    """``error`` with its ``extensions.code``: its own, its CreditLensError's, the failing
    stage's (parse, validation), BAD_USER_INPUT for a value graphql-core refused, or masked
    (and logged) when none applies: a bug."""
    extensions = dict(error.extensions or {})
    if "code" in extensions:
        return error
    if isinstance(error.original_error, CreditLensError):
        error.extensions = {**extensions, **error.original_error.extensions}
        return error
    code = _code_of(error, stage_code)
    if code is None:
        return masked(error, request_id=request_id)
    error.extensions = {**extensions, "code": code}
    return error


def _code_of(error: GraphQLError, stage_code: str | None) -> str | None:
    if isinstance(error, GraphQLSyntaxError):
        return PARSE_FAILED
    if stage_code is not None:
        return stage_code
    if error.path is None:
        # Execution had not reached a field: the variables could not be coerced.
        return InvalidInput.code
    if isinstance(error.original_error, GraphQLError):
        # graphql-core refused an argument value while resolving this field.
        return InvalidInput.code
    return None


def masked(error: GraphQLError, *, request_id: object) -> GraphQLError:
    """The client's view of an unexpected error (the request id only), logged in full."""
    log.error(
        "unexpected error in %s (request %s)",
        ".".join(str(part) for part in error.path or []),
        request_id,
        exc_info=error.original_error or error,
        extra={"request_id": request_id},
    )
    return GraphQLError(
        INTERNAL_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": INTERNAL, "requestId": request_id},
    )


def request_id_of(context: object) -> object:
    """The request id a GraphQL context carries (None outside a request)."""
    return getattr(context, "request_id", None)


class ErrorCodes(SchemaExtension):
    """Runs around the whole operation: every error leaves with ``extensions.code``."""

    def __init__(self) -> None:
        self.stage_code: str | None = None

    def on_parse(self) -> Iterator[None]:
        yield
        if self.execution_context.graphql_document is None:
            self.stage_code = PARSE_FAILED

    def on_validate(self) -> Iterator[None]:
        yield
        if self.execution_context.pre_execution_errors:
            self.stage_code = VALIDATION_FAILED

    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except GraphQLError as error:
            # Raised by an extension (the parser cache parses in its hook): strawberry turns
            # it into the result after this hook has closed, so code it on the way out.
            raise self._coded(error) from None
        except HTTP_LEVEL:
            raise  # the HTTP layer answers these (405, 400)
        except Exception as error:
            raise self._masked(GraphQLError(str(error), original_error=error)) from None
        result = self.execution_context.result
        if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
            result.errors = [self._coded(error) for error in result.errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        return coded(
            error,
            stage_code=self.stage_code,
            request_id=request_id_of(self.execution_context.context),
        )

    def _masked(self, error: GraphQLError) -> GraphQLError:
        return masked(error, request_id=request_id_of(self.execution_context.context))
