"""What a query may cost, estimated from the schema and its arguments before it runs.

Every field costs 1 for each time it is returned. A list multiplies the cost of what it
holds by how long it may be:

* a field with a ``first`` argument (a connection) sets the length of the lists right below
  it (``edges``, ``nodes``) to ``first``;
* a list with a ``granularity`` argument (a series) is as long as the number of periods of
  that size in the nearest ``timeRange`` above it: known for presets and explicit ranges,
  else assumed to be ``max_series_points``;
* any other list counts as a full page (``max_page_size``).

Nested lists multiply. Introspection fields cost nothing: their size is bounded by the
schema, and graphql-core's MaxIntrospectionDepthRule bounds their nesting.

The estimate depends on variables, so it runs after validation (whose result is cached per
document) and before execution, in :class:`QueryCost`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_composite_type,
    value_from_ast_untyped,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from domain.periods import SHORTEST, Granularity
from domain.presets import LONGEST, Preset
from graphql_schema.limits.errors import too_complex

E = TypeVar("E", bound=Enum)


@dataclass(frozen=True, slots=True)
class CostLimits:
    max_page_size: int
    max_series_points: int


@dataclass(frozen=True, slots=True)
class _Scope:
    """What the fields above the current one say about the lists below it."""

    page: int | None = None  # ``first`` of the enclosing connection
    range_length: timedelta | None = None  # None: unknown, assume the longest
    has_range: bool = False


class _Estimator:
    def __init__(
        self,
        document: DocumentNode,
        variables: Mapping[str, Any] | None,
        limits: CostLimits,
    ) -> None:
        self.variables = dict(variables or {})
        self.limits = limits
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }

    def argument(self, field: GraphQLField, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        definition = field.args.get(name)
        return None if definition is None else definition.default_value

    def selection_set(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLOutputType,
        scope: _Scope,
        visiting: frozenset[str] = frozenset(),
    ) -> int:
        if selection_set is None:
            return 0
        named = get_named_type(parent)
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, named, scope, visiting)
            elif isinstance(selection, InlineFragmentNode):
                total += self.selection_set(selection.selection_set, named, scope, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in visiting:
                    total += self.selection_set(
                        fragment.selection_set, named, scope, visiting | {name}
                    )
        return total

    def field(self, node: FieldNode, parent: Any, scope: _Scope, visiting: frozenset[str]) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        fields = getattr(parent, "fields", None)
        if not fields or name not in fields:
            # An interface field or a type the document did not narrow: validation passed,
            # so the possible types all have it; count it as one value.
            return 1
        field: GraphQLField = fields[name]
        child_scope = scope
        if "timeRange" in field.args:
            child_scope = replace(
                child_scope,
                range_length=self.range_length(self.argument(field, node, "timeRange")),
                has_range=True,
            )
        first = self.argument(field, node, "first") if "first" in field.args else None
        length = self.list_length(field, node, scope, first)
        # ``first`` sizes the lists right below a connection, and nothing deeper.
        child_scope = replace(child_scope, page=self.page(first) if "first" in field.args else None)
        per_item = 1
        if is_composite_type(get_named_type(field.type)):
            per_item += self.selection_set(node.selection_set, field.type, child_scope, visiting)
        return length * per_item

    def page(self, first: Any) -> int:
        if isinstance(first, int) and 0 <= first <= self.limits.max_page_size:
            return first
        return self.limits.max_page_size

    def list_length(self, field: GraphQLField, node: FieldNode, scope: _Scope, first: Any) -> int:
        if not _is_list(field.type):
            return 1
        if "granularity" in field.args:
            return self.points(scope, self.argument(field, node, "granularity"))
        if "first" in field.args:
            return self.page(first)
        if scope.page is not None:
            return scope.page
        return self.limits.max_page_size

    def points(self, scope: _Scope, granularity: Any) -> int:
        most = self.limits.max_series_points
        if scope.range_length is None:
            return most
        period = SHORTEST[_member(Granularity, granularity) or Granularity.HOUR]
        return min(most, math.floor(scope.range_length / period) + 2)

    @staticmethod
    def range_length(value: Any) -> timedelta | None:
        if not isinstance(value, Mapping):
            return None
        preset = value.get("preset")
        if preset is not None:
            found = _member(Preset, preset)
            return None if found is None else LONGEST[found]
        start, end = value.get("start"), value.get("end")
        if not isinstance(start, str) or not isinstance(end, str):
            return None
        try:
            length = datetime.fromisoformat(end) - datetime.fromisoformat(start)
        except (ValueError, TypeError):
            return None  # unparseable or naive vs aware: the resolver will refuse it
        return length if length > timedelta(0) else timedelta(0)


def _member(vocabulary: type[E], name: Any) -> E | None:
    """The member named ``name`` (as a variable or literal gives it), if there is one."""
    return vocabulary.__members__.get(str(name))


def _is_list(type_: GraphQLOutputType) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name and op.name.value == name), None)


def estimate_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    limits: CostLimits,
) -> int:
    """The estimated cost of the operation the request runs (0 if there is none)."""
    operation = _operation(document, operation_name)
    if operation is None:
        return 0
    root: GraphQLObjectType | None = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    estimator = _Estimator(document, variables, limits)
    return estimator.selection_set(operation.selection_set, root, _Scope())


class QueryCost(SchemaExtension):
    """Refuses an operation whose estimated cost passes ``max_query_cost``, before any
    resolver runs; otherwise records the cost on the context (for cost-aware rate limits)."""

    def __init__(self, *, max_cost: int, limits: CostLimits) -> None:
        self.max_cost = max_cost
        self.limits = limits

    def on_execute(self) -> Iterator[None]:
        execution_context = self.execution_context
        document = execution_context.graphql_document
        if document is not None:
            cost = estimate_cost(
                execution_context.schema._schema,
                document,
                operation_name=execution_context.operation_name,
                variables=execution_context.variables,
                limits=self.limits,
            )
            record = getattr(execution_context.context, "record_operation", None)
            if callable(record):
                record(execution_context.operation_name, cost)
            if cost > self.max_cost:
                # Setting the result makes strawberry skip execution.
                execution_context.result = GraphQLExecutionResult(
                    data=None,
                    errors=[
                        too_complex(
                            f"The query would cost about {cost:,} points; the limit is "
                            f"{self.max_cost:,} (setting max_query_cost). Ask for smaller "
                            "pages (first), coarser series or fewer fields.",
                            setting="max_query_cost",
                            limit=self.max_cost,
                            actual=cost,
                        )
                    ],
                )
        yield
