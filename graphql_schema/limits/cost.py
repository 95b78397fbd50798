"""What a query may cost, estimated from the schema and its arguments before it runs.

Every field costs 1 for each time it is returned. A list multiplies the cost of what it
holds by how long it may be:

* a field with a ``first`` argument (a connection) sets the length of the lists right below
  it (``edges``, ``nodes``) to ``first``;
* a list with a ``granularity`` argument (a series) is as long as the number of periods of
  that size in the nearest ``timeRange`` above it: known for presets and explicit ranges,
  else assumed to be ``max_series_points``;
* a list with a ``limit`` argument (a breakdown) has at most ``limit`` rows (default
  ``max_page_size``) plus the one row that sums the rest;
* a list bounded by construction says so with ``metadata={"max_length": n}`` on its
  strawberry field (a spike's drivers, the rows per call outcome);
* any other list counts as a full page (``max_page_size``).

Nested lists multiply. Introspection fields cost nothing: their size is bounded by the
schema, and graphql-core's MaxIntrospectionDepthRule bounds their nesting.

The estimate depends on variables, so it runs after validation (whose result is cached per
document) and before execution, in :class:`QueryCost`.

A fragment costs the same wherever it is spread with the same parent type and the same
scope, so its cost is computed once per (fragment, parent type, scope) and remembered: a
document whose fragments spread each other twice is priced in time linear in its size, not
exponential. The walk still counts its steps and gives up past ``max_analysis_steps`` (the
number of distinct scopes a fragment meets grows with the document), and the estimate of a
(document, operation, variables) is kept for the next request that sends the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLType,
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
from domain.recent import Recent
from graphql_schema.limits.errors import too_complex

E = TypeVar("E", bound=Enum)

# Selections one estimate may visit (``max_analysis_steps``, about 3 us each): a document
# whose fragments are priced once visits each selection once, and a 2,000-token document
# has fewer than 1,000; a fragment spread in many scopes is priced once per scope.
DEFAULT_MAX_STEPS = 10_000
# Estimates stop growing here: fragments spread twice in each other double the cost at each
# level, and a number of thousands of digits would be slow to print (and refused by
# Python's int-to-str limit). It is far above any max_query_cost.
MAX_COST = 2**63 - 1


@dataclass(frozen=True, slots=True)
class CostLimits:
    max_page_size: int
    max_series_points: int
    max_steps: int = DEFAULT_MAX_STEPS


@dataclass(frozen=True, slots=True)
class _Scope:
    """What the fields above the current one say about the lists below it."""

    page: int | None = None  # ``first`` of the enclosing connection
    range_length: timedelta | None = None  # None: unknown, assume the longest
    has_range: bool = False


class _OverBudget(Exception):
    """The walk visited more selections than ``max_steps``."""


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
        self.steps = 0
        # Cost of a fragment by (name, parent type, scope): everything its cost depends on.
        self.priced: dict[tuple[str, GraphQLNamedType, _Scope], int] = {}
        self.pricing: set[str] = set()

    def argument(self, field: GraphQLField, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        definition = field.args.get(name)
        return None if definition is None else definition.default_value

    def selection_set(
        self, selection_set: SelectionSetNode | None, parent: GraphQLType, scope: _Scope
    ) -> int:
        if selection_set is None:
            return 0
        named = get_named_type(parent)
        total = 0
        for selection in selection_set.selections:
            self.steps += 1
            if self.steps > self.limits.max_steps:
                raise _OverBudget
            if isinstance(selection, FieldNode):
                total += self.field(selection, named, scope)
            elif isinstance(selection, InlineFragmentNode):
                total += self.selection_set(selection.selection_set, named, scope)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, named, scope)
        return min(total, MAX_COST)

    def fragment(self, name: str, parent: GraphQLNamedType, scope: _Scope) -> int:
        key = (name, parent, scope)
        known = self.priced.get(key)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.pricing:
            # Unknown or cyclic: validation refuses such documents before this runs.
            return 0
        self.pricing.add(name)
        cost = self.selection_set(fragment.selection_set, parent, scope)
        self.pricing.discard(name)
        self.priced[key] = cost
        return cost

    def field(self, node: FieldNode, parent: Any, scope: _Scope) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        fields = getattr(parent, "fields", None)
        if not fields or name not in fields:
            # An interface field or a type the document did not narrow: validation passed,
            # so the possible types all have it; count it as one value.
            return 1
        field: GraphQLField = fields[name]
        arguments = field.args
        first = self.argument(field, node, "first") if "first" in arguments else None
        length = self.list_length(field, node, scope, first)
        if not is_composite_type(get_named_type(field.type)):
            return length
        # ``first`` sizes the lists right below a connection, and nothing deeper.
        page = self.page(first) if "first" in arguments else None
        range_length, has_range = scope.range_length, scope.has_range
        if "timeRange" in arguments:
            range_length = self.range_length(self.argument(field, node, "timeRange"))
            has_range = True
        child_scope = scope
        if (page, range_length, has_range) != (scope.page, scope.range_length, scope.has_range):
            child_scope = _Scope(page, range_length, has_range)
        per_item = 1 + self.selection_set(node.selection_set, field.type, child_scope)
        return min(length * per_item, MAX_COST)

    def page(self, first: Any) -> int:
        if isinstance(first, int) and 0 <= first <= self.limits.max_page_size:
            return first
        return self.limits.max_page_size

    def list_length(self, field: GraphQLField, node: FieldNode, scope: _Scope, first: Any) -> int:
        if not _is_list(field.type):
            return 1
        if "granularity" in field.args:
            return self.points(scope, self.argument(field, node, "granularity"))
        bound = _max_length(field)
        if bound is not None:
            return bound
        if "limit" in field.args:
            # The listed rows, and the one that sums the rest (resolvers.usage.row_limit
            # refuses a limit out of range; price it as the default until then).
            return self.page(self.argument(field, node, "limit")) + 1
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


def _max_length(field: GraphQLField) -> int | None:
    """The length a list field declares it never exceeds, if it does."""
    definition = (field.extensions or {}).get("strawberry-definition")
    bound = getattr(definition, "metadata", None) or {}
    found = bound.get("max_length")
    return found if isinstance(found, int) else None


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
    """The estimated cost of the operation the request runs (0 if there is none).

    Raises a QUERY_TOO_COMPLEX ``GraphQLError`` naming ``max_analysis_steps`` when pricing
    the document takes more than ``limits.max_steps`` steps.
    """
    operation = _operation(document, operation_name)
    if operation is None:
        return 0
    root: GraphQLObjectType | None = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    estimator = _Estimator(document, variables, limits)
    try:
        return estimator.selection_set(operation.selection_set, root, _Scope())
    except _OverBudget:
        raise _over_budget(limits.max_steps) from None


def _over_budget(max_steps: int) -> GraphQLError:
    return too_complex(
        f"Pricing this query takes more than {max_steps:,} steps (setting "
        "max_analysis_steps): its fragments are spread in too many places. Spread fewer "
        "fragments, or fragments within fragments.",
        setting="max_analysis_steps",
        limit=max_steps,
        actual=max_steps + 1,
    )


@dataclass(frozen=True, slots=True)
class _Refused:
    """A remembered refusal: the document took more than ``max_steps`` to price."""


class CostMemo:
    """Estimates of recent requests, by (document text, operation, variables), shared by
    every request of one schema: a dashboard that sends the same query again is not priced
    again. Made once per schema in ``build_schema``."""

    def __init__(self, maxsize: int = 1024) -> None:
        self.recent: Recent[int | _Refused] = Recent(maxsize)

    def estimate(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        *,
        query: str | None,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        limits: CostLimits,
    ) -> int:
        """``estimate_cost``, remembered by the request's text: the document is a function
        of it (the parser cache is keyed by it too), and hashing the text is cheap where
        hashing the document walks it."""
        key = _memo_key(query, operation_name, variables)
        found = self.recent.get(key) if key is not None else None
        if isinstance(found, _Refused):
            raise _over_budget(limits.max_steps)
        if found is not None:
            return found
        try:
            cost = estimate_cost(
                schema, document, operation_name=operation_name, variables=variables, limits=limits
            )
        except GraphQLError:
            if key is not None:
                self.recent.put(key, _Refused())
            raise
        if key is not None:
            self.recent.put(key, cost)
        return cost


def _about(cost: int) -> str:
    return f"at least {cost:,}" if cost >= MAX_COST else f"about {cost:,}"


def _memo_key(
    query: str | None, operation_name: str | None, variables: Mapping[str, Any] | None
) -> tuple[str, str | None, str] | None:
    if query is None:
        return None
    try:
        # Variables come from JSON; anything that does not serialise is simply not memoised.
        frozen = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError, RecursionError):
        return None
    return (query, operation_name, frozen)


class QueryCost(SchemaExtension):
    """Refuses an operation whose estimated cost passes ``max_query_cost``, before any
    resolver runs; otherwise records the cost on the context (for cost-aware rate limits)."""

    def __init__(self, *, max_cost: int, limits: CostLimits, memo: CostMemo | None = None) -> None:
        self.max_cost = max_cost
        self.limits = limits
        self.memo = memo if memo is not None else CostMemo(maxsize=1)

    def on_execute(self) -> Iterator[None]:
        execution_context = self.execution_context
        document = execution_context.graphql_document
        if document is not None:
            record = getattr(execution_context.context, "record_operation", None)
            try:
                cost = self.memo.estimate(
                    execution_context.schema._schema,
                    document,
                    query=execution_context.query,
                    operation_name=execution_context.operation_name,
                    variables=execution_context.variables,
                    limits=self.limits,
                )
            except GraphQLError as refusal:
                if callable(record):
                    # Its cost is unknown: charge it as the dearest query that may run.
                    record(execution_context.operation_name, self.max_cost)
                # Setting the result makes strawberry skip execution.
                execution_context.result = GraphQLExecutionResult(data=None, errors=[refusal])
                yield
                return
            if callable(record):
                record(execution_context.operation_name, cost)
            if cost > self.max_cost:
                execution_context.result = GraphQLExecutionResult(
                    data=None,
                    errors=[
                        too_complex(
                            f"The query would cost {_about(cost)} points; the limit is "
                            f"{self.max_cost:,} (setting max_query_cost). Ask for smaller "
                            "pages (first), coarser series or fewer fields.",
                            setting="max_query_cost",
                            limit=self.max_cost,
                            actual=cost,
                        )
                    ],
                )
        yield
