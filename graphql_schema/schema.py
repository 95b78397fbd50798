"""The schema: the root query and the extensions every request runs through."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import strawberry
from graphql import GraphQLError, MaxIntrospectionDepthRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    ParserCache,
    SchemaExtension,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult, Info
from strawberry.types.graphql import OperationType

from graphql_schema.error_codes import ErrorCodes
from graphql_schema.execution import RowExecution, SuggestionFreeRowExecution
from graphql_schema.extension_hooks import ClassHookRunner
from graphql_schema.known_operations import Checks, KnownOperations, validation_rules
from graphql_schema.limits import QueryCost, TokenLimit, max_aliases_rule, max_depth_rule
from graphql_schema.limits.cost import CostLimits, CostMemo
from graphql_schema.scalars import BIGINT_SCALAR, BigInt
from graphql_schema.types.live_usage import Subscription
from graphql_schema.types.mutation import Mutation
from graphql_schema.types.organization import Organization
from graphql_schema.types.viewer import Viewer
from graphql_schema.validation import DocumentValidation, Validator
from resolvers.context import Context

# Entries of the parser cache (shared by size with every ParserCache of the process).
PARSE_CACHE_SIZE = 1024


@strawberry.type(description="Credit usage of the viewer's organization.")
class Query:
    @strawberry.field(description="Who the access token belongs to.")
    def viewer(self, info: Info[Context, None]) -> Viewer:
        return Viewer.of(info.context.viewer)

    @strawberry.field(description="The viewer's own organization.")
    def organization(self, info: Info[Context, None]) -> Organization:
        return Organization(record=info.context.organization)


class Schema(strawberry.Schema):
    """strawberry logs every error with a traceback; ours are expected outcomes (denials,
    bad input). ``ErrorCodes`` logs the unexpected ones, with the request id.

    Queries every check has let through before take the short way of
    ``graphql_schema.known_operations`` (set by :func:`build_schema`)."""

    known_operations: KnownOperations | None = None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        arguments: dict[str, Any] = {
            "variable_values": variable_values,
            "context_value": context_value,
            "root_value": root_value,
            "operation_name": operation_name,
            "allowed_operation_types": allowed_operation_types,
            "operation_extensions": operation_extensions,
        }
        if self.known_operations is not None:
            result = await self.known_operations.execute(self, query, **arguments)
            if result is not None:
                return result
        return await super().execute(query, **arguments)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        # Hooks found once per extension class (graphql_schema.extension_hooks).
        return ClassHookRunner(execution_context=execution_context, extensions=extensions)


class SchemaSettings(Protocol):
    """The settings the schema reads; ``app.settings.Settings`` has them all."""

    @property
    def max_query_depth(self) -> int: ...
    @property
    def max_aliases(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def max_query_cost(self) -> int: ...
    @property
    def max_page_size(self) -> int: ...
    @property
    def max_series_points(self) -> int: ...
    @property
    def introspection(self) -> bool: ...
    @property
    def field_suggestions(self) -> bool: ...
    @property
    def max_analysis_steps(self) -> int: ...


# The extensions KnownOperations checks as they do (the limits, parsing, validation, codes).
_STOOD_IN_FOR = {
    TokenLimit,
    ParserCache,
    AddValidationRules,
    DocumentValidation,
    QueryCost,
    ErrorCodes,
    DisableIntrospection,
}


def build_schema(settings: SchemaSettings) -> strawberry.Schema:
    """The schema with its limits. Extensions are passed as classes or factories, so each
    request gets fresh instances (they hold per-request state). Order matters: the token
    limit runs before the parser cache, the validation rules are made once here so the
    validation cache sees the same rules on every request."""
    validation_rules = [
        max_depth_rule(settings.max_query_depth),
        max_aliases_rule(settings.max_aliases),
        MaxIntrospectionDepthRule,
    ]
    cost_limits = CostLimits(
        max_page_size=settings.max_page_size,
        max_series_points=settings.max_series_points,
        max_steps=settings.max_analysis_steps,
    )
    cost_memo = CostMemo(maxsize=1024)
    validator = Validator(hide_suggestions=not settings.field_suggestions, maxsize=1024)
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        lambda: TokenLimit(max_tokens=settings.max_tokens),
        lambda: ParserCache(maxsize=PARSE_CACHE_SIZE),
        lambda: AddValidationRules(validation_rules),
        lambda: DocumentValidation(validator=validator),
        lambda: QueryCost(max_cost=settings.max_query_cost, limits=cost_limits, memo=cost_memo),
        ErrorCodes,
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    schema = Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        # Variables are coerced during execution: their hints go with field_suggestions too.
        # Rows of plain leaf fields are completed in one step (graphql_schema.execution).
        execution_context_class=(
            RowExecution if settings.field_suggestions else SuggestionFreeRowExecution
        ),
        config=StrawberryConfig(
            disable_field_suggestions=not settings.field_suggestions,
            scalar_map={BigInt: BIGINT_SCALAR},
        ),
    )
    checks = Checks(
        max_tokens=settings.max_tokens,
        parse_cache_size=PARSE_CACHE_SIZE,
        validator=validator,
        max_cost=settings.max_query_cost,
        cost_limits=cost_limits,
        cost_memo=cost_memo,
    )
    schema.known_operations = known_operations(schema, checks)
    return schema


def known_operations(schema: strawberry.Schema, checks: Checks) -> KnownOperations | None:
    """The short way for ``schema``, or None when its extensions are not exactly the ones
    ``KnownOperations`` stands in for (a field middleware, schema directives, another
    extension): then every request goes through strawberry's extensions."""
    extensions = schema.get_extensions()
    if schema.directives or {type(e) for e in extensions} - _STOOD_IN_FOR:
        return None
    if any(extension._implements_resolve() for extension in extensions):
        return None
    return KnownOperations(checks, validation_rules(extensions))
