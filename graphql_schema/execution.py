"""Execution with a fast path for rows of plain leaf fields.

A report answers tables: ``endpointUsage`` is a list of rows of four scalars, and a page
of 50 keys holds about 1,400 of them. graphql-core completes each such field on its own
(a ``Path``, a resolve-info object, the argument check, the resolver, ``complete_value``),
about 10 us per field in CPython, which made a page of keys cost twice the plain route
(bench/PROPOSALS.md, R5).

:class:`RowExecution` completes an object at once when every field selected on it is a
leaf (scalar or enum) that strawberry itself resolves as a plain attribute read: a field
without a resolver, permission classes or field extensions (strawberry marks the resolver
it makes for those ``_is_default``; it ignores the info and arguments it is given). The
value is the attribute, coerced by the field's type exactly as ``complete_leaf_value``
does. Anything else takes graphql-core's own path: a field with a resolver, an object or
list field, field middleware, and also any row where a value is null for a non-null
field, a coercion fails or the read raises: that row is executed again the usual way
(the reads have no side effects), so errors keep their messages, paths and locations.

An object whose fields are such leaves and batched lists of rows (a page's key: its ``id``
and its ``endpointUsage`` table, whose values ``graphql_schema.batching`` fetched once for
the page) is completed in one step too, once the batch has answered: the leaves as a row,
each list's value taken from the batch and its rows as above (:class:`ObjectPlan`). A
value the batch did not give, a null for a non-null list, or anything the rows' path
declines sends the whole page to the usual path (bench/PROPOSALS.md, R33).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import isfinite
from typing import Any

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetails
from graphql.pyutils import Path
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from graphql_schema.batching import BatchExecution, batch_resolver
from graphql_schema.direct_fields import MEMO_LIMIT
from graphql_schema.record_rows import RecordRows
from graphql_schema.validation import SuggestionFreeExecution

# (response name, the field's default resolver or None for __typename, the attribute it
# reads, the field's leaf type, non-null, the Python type its coercion returns unchanged)
Step = tuple[str, Any, str, GraphQLLeafType | None, bool, type | None]
Plan = tuple[Step, ...]
_NO_PLAN: Plan = ()
# The values of list fields the rows' path completes.
LISTS = (list, tuple, RecordRows)


@dataclass(frozen=True, slots=True)
class ObjectPlan:
    """An object of leaf fields and batched lists of rows (a key of a page with its table):
    the leaves as a row, each list's value from the batch, its rows as rows."""

    leaves: Plan
    # (response name, field name) of each batched field whose value is a list of objects
    lists: tuple[tuple[str, str], ...]
    # the response names in selection order, when a list comes before a leaf
    order: tuple[str, ...] | None


DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF
_ROWS = "rows"


def _unchanged(leaf: GraphQLLeafType) -> type | None:
    """The Python type whose values ``leaf.coerce_output_value`` returns as they are (equal,
    of the same type), within the bounds ``_row`` checks: a string for String, a bool for
    Boolean, a finite float for Float, a 32-bit int for Int, any int for a scalar whose
    coercion is ``int`` (BigInt). Such a value needs no call; None: always coerce."""
    if leaf is GraphQLString:
        return str
    if leaf is GraphQLBoolean:
        return bool
    if leaf is GraphQLFloat:
        return float
    if leaf is GraphQLInt or getattr(leaf, "coerce_output_value", None) is int:
        return int
    return None


def _is_object_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if not isinstance(type_, GraphQLList):
        return False
    item = type_.of_type
    if isinstance(item, GraphQLNonNull):
        item = item.of_type
    return isinstance(item, GraphQLObjectType)


TYPENAME = "__typename"


def typename_step(response_name: str) -> Step:
    """The step of ``__typename``: the parent type's name."""
    return (response_name, None, "", None, True, None)


def leaf_step(response_name: str, field: Any) -> Step | None:
    """The step of a leaf field that strawberry resolves as a plain attribute read (its
    resolver marked ``_is_default``), or None."""
    if not getattr(field.resolve, "_is_default", False):
        return None
    definition = field.extensions.get(DEFINITION)
    if not isinstance(definition, StrawberryField):
        return None
    return_type = field.type
    non_null = isinstance(return_type, GraphQLNonNull)
    leaf = return_type.of_type if non_null else return_type
    if not is_leaf_type(leaf):
        return None
    # What strawberry's resolver for such a field does: default_resolver(source, name).
    return (
        response_name,
        definition.default_resolver,
        definition.python_name,
        leaf,
        non_null,
        _unchanged(leaf),
    )


def _plan(
    parent_type: GraphQLObjectType, grouped_field_set: dict[str, list[FieldDetails]]
) -> Plan | ObjectPlan:
    """How to complete an object of ``parent_type`` at once, or ``_NO_PLAN``."""
    steps: list[Step] = []
    lists: list[tuple[str, str]] = []
    fields = parent_type.fields
    for response_name, details in grouped_field_set.items():
        name = details[0].node.name.value
        if name == TYPENAME:
            steps.append(typename_step(response_name))
            continue
        field = fields.get(name)
        if field is None:
            return _NO_PLAN
        if not getattr(field.resolve, "_is_default", False):
            # A batched list of objects (a key's table): its value comes from the batch.
            if batch_resolver(field) is not None and _is_object_list(field.type):
                lists.append((response_name, name))
                continue
            return _NO_PLAN
        step = leaf_step(response_name, field)
        if step is None:
            return _NO_PLAN
        steps.append(step)
    if not lists:
        return tuple(steps)
    order = tuple(grouped_field_set)
    in_order = tuple(step[0] for step in steps) + tuple(name for name, _ in lists) == order
    return ObjectPlan(tuple(steps), tuple(lists), None if in_order else order)


def complete_row(plan: Plan, parent_type: GraphQLObjectType, source: Any) -> dict[str, Any] | None:
    """The object of leaf fields completed at once, or None when graphql-core must do it
    (and any error)."""
    row: dict[str, Any] = {}
    try:
        for response_name, resolve, attribute, leaf, non_null, unchanged in plan:
            if leaf is None:
                row[response_name] = parent_type.name
                continue
            value = resolve(source, attribute)
            if value is None:
                if non_null:
                    return None
                row[response_name] = None
                continue
            # What the scalar's coercion would return, without calling it (a report's
            # rows are strings, ints and floats: R21 in bench/PROPOSALS.md).
            kind = type(value)
            if kind is unchanged and (
                kind is str
                or kind is bool
                or (kind is float and isfinite(value))
                or (
                    kind is int
                    and (leaf is not GraphQLInt or GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT)
                )
            ):
                row[response_name] = value
                continue
            coerced = leaf.coerce_output_value(value)
            if coerced is Undefined or coerced is None:
                return None
            row[response_name] = coerced
    except Exception:  # the usual path reports it, with its path and location
        return None
    return row


def complete_rows(
    plan: Plan,
    object_type: GraphQLObjectType,
    items: Sequence[Any],
    info: Any,
    row_of: Callable[[Plan, GraphQLObjectType, Any], dict[str, Any] | None] | None = None,
) -> list[dict[str, Any]] | None:
    """Each object of a list completed at once by ``plan``, or None when graphql-core must
    complete the list (a null item, a row ``complete_row`` declines, a type check that is
    not plainly true). Records of a :class:`RecordRows` are completed from the record.
    ``row_of``: how one row is completed (``complete_row``; an executor's own ``_row``)."""
    if row_of is None:
        row_of = complete_row
    if type(items) is RecordRows:
        steps = items.view.steps(plan, object_type)
        if steps is None:
            return None
        records = items.records
        # The objects ``make`` builds are all of one class (``steps`` made sure it is the
        # type's own): the type check of one of them holds for all.
        if records and not items.view.passes_type_check(object_type, records[0], info):
            return None
        rows = []
        for record in records:
            row = row_of(steps, object_type, record)
            if row is None:
                return None
            rows.append(row)
        tail = complete_rows(plan, object_type, items.tail, info, row_of)
        if tail is None:
            return None
        rows.extend(tail)
        return rows
    is_type_of = object_type.is_type_of
    rows = []
    for item in items:
        if item is None:
            return None
        if is_type_of is not None and is_type_of(item, info) is not True:
            return None  # False (an error) or awaitable: the usual path decides
        row = row_of(plan, object_type, item)
        if row is None:
            return None
        rows.append(row)
    return rows


class RowExecution(BatchExecution):
    """strawberry's executor, completing rows of plain leaf fields in one step (and
    batchable fields once per list: graphql_schema.batching)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # By the identity of graphql-core's memoized field set (the same object for every
        # row of a list); the set is kept alive with its plan, so its id is not reused.
        self._plans: dict[tuple[str, int], tuple[object, Plan | ObjectPlan]] = {}

    def complete_iterable_value(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Path,
        items: Any,
        position_context: Any,
    ) -> Any:
        """A list of such rows, each completed in one step (no path, no per-row calls);
        any other list, a list holding a null or a row that needs the usual path, or a
        streamed list: graphql-core's own completion."""
        rows = None
        if isinstance(items, LISTS) and self.get_stream_usage(field_details_list, path) is None:
            rows = self._rows(item_type, field_details_list, info, items)
        if rows is not None:
            return rows
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def _complete_items(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Path,
        items: Any,
        position_context: Any,
    ) -> Any:
        """A page of objects whose batched values are known (a page of keys with their
        tables), each completed in one step when its plan allows (R33)."""
        rows = self._rows(item_type, field_details_list, info, items, path)
        if rows is not None:
            return rows
        return super()._complete_items(
            item_type, field_details_list, info, path, items, position_context
        )

    def _rows(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        items: Any,
        path: Path | None = None,
    ) -> list[dict[str, Any]] | None:
        """Each item completed in one step, or None for graphql-core's path. Objects with
        batched lists need the list's ``path`` (their fields' paths) and the batch's values."""
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if not isinstance(object_type, GraphQLObjectType):
            return None
        grouped_field_set, new_defer_usages, *_ = self.collect_subfields(
            object_type, field_details_list
        )
        if new_defer_usages:
            return None
        plan = self._plan_of(object_type, grouped_field_set)
        if not plan:
            return None
        if isinstance(plan, ObjectPlan):
            if path is None or not self._batched:
                return None
            is_type_of = object_type.is_type_of
            rows = []
            for index, item in enumerate(items):
                if item is None:
                    return None
                if is_type_of is not None and is_type_of(item, info) is not True:
                    return None
                row = self._object(
                    plan, object_type, item, grouped_field_set, path.add_key(index, None)
                )
                if row is None:
                    return None
                rows.append(row)
            return rows
        return complete_rows(plan, object_type, items, info, self._row)

    def _object(
        self,
        plan: ObjectPlan,
        parent_type: GraphQLObjectType,
        source: Any,
        grouped_field_set: Any,
        path: Path,
    ) -> dict[str, Any] | None:
        """An object of leaves and batched lists of rows, or None for graphql-core's path
        (a value not from the batch, a null for a non-null list, anything unusual)."""
        row = self._row(plan.leaves, parent_type, source)
        if row is None:
            return None
        for response_name, field_name in plan.lists:
            details = grouped_field_set[response_name]
            known = self._known(details, source)
            if known is None:
                return None
            value = known[0]
            field = parent_type.fields[field_name]
            list_type = field.type
            if isinstance(list_type, GraphQLNonNull):
                if value is None:
                    return None
                list_type = list_type.of_type
            if value is None:
                row[response_name] = None
                continue
            if not isinstance(value, LISTS):
                return None
            field_path = path.add_key(response_name, parent_type.name)
            if self.get_stream_usage(details, field_path) is not None:
                return None
            info = self.build_resolve_info(
                field, [d.node for d in details], parent_type, field_path
            )
            rows = self._rows(list_type.of_type, details, info, value, field_path)
            if rows is None:
                return None
            row[response_name] = rows
        if plan.order is not None:
            return {name: row[name] for name in plan.order}
        return row

    def _plan_of(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> Plan | ObjectPlan:
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return _NO_PLAN
        key = (parent_type.name, id(grouped_field_set))
        known = self._plans.get(key)
        if known is None:
            known = (grouped_field_set, self._document_plan(parent_type, grouped_field_set))
            self._plans[key] = known
        return known[1]

    def _document_plan(
        self, parent_type: GraphQLObjectType, grouped_field_set: Any
    ) -> Plan | ObjectPlan:
        """The plan, kept with the document when the executor has its memo: a plan depends
        only on the type and the fields' nodes (names, aliases), and the memo lives as
        long as the document holding those nodes, so their ids stay theirs (R32)."""
        memo = self.document_memo
        if memo is None:
            return _plan(parent_type, grouped_field_set)
        shape = (
            _ROWS,
            parent_type.name,
            tuple(id(details[0].node) for details in grouped_field_set.values()),
        )
        plan: Plan | ObjectPlan | None = memo.get(shape)
        if plan is None:
            plan = _plan(parent_type, grouped_field_set)
            # A document's selections have few shapes; @include/@skip on variables can
            # make more of them, which are then planned per request as before.
            if len(memo) < MEMO_LIMIT:
                memo[shape] = plan
        return plan

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan_of(parent_type, grouped_field_set)
        if plan:
            if isinstance(plan, ObjectPlan):
                row = (
                    self._object(plan, parent_type, source_value, grouped_field_set, path)
                    if path is not None and self._batched
                    else None
                )
            else:
                row = self._row(plan, parent_type, source_value)
            if row is not None:
                return row
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    _row = staticmethod(complete_row)


class SuggestionFreeRowExecution(RowExecution, SuggestionFreeExecution):
    """:class:`RowExecution` without "Did you mean" hints (``field_suggestions`` off)."""
