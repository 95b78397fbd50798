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
_HTTP_LEVEL = (MissingQueryError, InvalidOperationTypeError, CannotGetOperationTypeError)

INTERNAL_MESSAGE = "Internal server error. Quote the request id when you report it."


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
        except _HTTP_LEVEL:
            raise  # the HTTP layer answers these (405, 400)
        except Exception as error:
            raise self._masked(GraphQLError(str(error), original_error=error)) from None
        result = self.execution_context.result
        if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
            result.errors = [self._coded(error) for error in result.errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        extensions = dict(error.extensions or {})
        if "code" in extensions:
            return error
        if isinstance(error.original_error, CreditLensError):
            error.extensions = {**extensions, **error.original_error.extensions}
            return error
        code = self._code_of(error)
        if code is None:
            return self._masked(error)
        error.extensions = {**extensions, "code": code}
        return error

    def _code_of(self, error: GraphQLError) -> str | None:
        if isinstance(error, GraphQLSyntaxError):
            return PARSE_FAILED
        if self.stage_code is not None:
            return self.stage_code
        if error.path is None:
            # Execution had not reached a field: the variables could not be coerced.
            return InvalidInput.code
        if isinstance(error.original_error, GraphQLError):
            # graphql-core refused an argument value while resolving this field.
            return InvalidInput.code
        return None

    def _masked(self, error: GraphQLError) -> GraphQLError:
        request_id = getattr(self.execution_context.context, "request_id", None)
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
