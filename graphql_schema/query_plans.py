"""Known queries run by a plan made once per document, instead of graphql-core's walk.

For every request graphql-core's executor collects the operation's fields again, makes a
``Path`` and an entry of a results dict per field, chooses how to complete each value by
its type (``complete_value`` -> ``complete_object_value`` -> ``collect_subfields`` ->
``execute_fields``), and wraps every field whose resolver is asynchronous in coroutines of
its own (``complete_awaitable_value``, ``get_results``, ``await_result``, the response's),
each resumed again at every database round trip. For ``organization { endpointUsage }``
that walk was the largest part of what GraphQL adds to the plain route (bench/PROPOSALS.md,
R36).

A :class:`QueryPlan` is that walk worked out once, from the document alone, for documents
whose every selection is plain: no directives anywhere (so which fields are selected does
not depend on variables), no fragment variables, concrete object types only, no
introspection, and each field either a leaf read as an attribute, or a field with a
resolver whose value is a leaf, an object, or a list of objects. Running it calls the same
resolvers in the same order with the same arguments (coerced and converted by the same
executor methods: ``graphql_schema.direct_fields``), checks the same permissions, awaits
siblings together as graphql-core does, and completes rows as ``graphql_schema.execution``
does. A field with a batch resolver selected on a list's objects (a page of keys' tables)
is resolved once for the list, on ``graphql_schema.batching``'s terms and through its
executor's methods (arguments and permissions once, one value per object), then each
object is completed with its value (bench/PROPOSALS.md, R38).

It answers only when every value completes without a question: any exception, a null for
a non-null field, a value of an unexpected kind, a refused permission. Then the run is
abandoned (:class:`Declined`) after its started work has finished, and the request is
executed the usual way from the start, which reports exactly what it always did. A query
has no side effects, so running part of it twice changes nothing but the time an error
answer takes (at most one extra run of the same, already priced, document).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues
from graphql.pyutils import Path

from graphql_schema.batching import BatchExecution, BatchResolver, batch_resolver
from graphql_schema.direct_fields import DirectExecution, DirectField, direct_field
from graphql_schema.execution import (
    LISTS,
    TYPENAME,
    Plan,
    complete_row,
    complete_rows,
    leaf_step,
    typename_step,
)

_NO_VARIABLES = VariableValues({}, {})


class Declined(Exception):
    """The plan does not answer this request: execute it the usual way."""


@dataclass(frozen=True, slots=True)
class Leaf:
    """A field's value is a scalar or an enum."""

    type_: GraphQLLeafType
    non_null: bool


@dataclass(frozen=True, slots=True)
class ObjectOf:
    """A field's value is an object: its leaf fields as a row, then its fields with
    resolvers, the response's keys in selection order."""

    type_: GraphQLObjectType
    non_null: bool
    leaves: Plan
    fields: tuple[FieldPlan, ...]
    # the response names in selection order, when a field comes before a leaf
    order: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class ListOf:
    """A field's value is a list of objects: rows of leaves when the item has no field
    with a resolver (its ``leaves`` are then the whole row), else objects."""

    non_null: bool
    item: ObjectOf
    # the item's fields with a batch resolver: resolved once for the whole list
    batched: tuple[FieldPlan, ...]


Completion = Leaf | ObjectOf | ListOf


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """One selected field with a resolver: how to call it and complete its value."""

    response_name: str
    parent_type: GraphQLObjectType
    field: GraphQLField
    details: list[FieldDetails]
    nodes: list[FieldNode]
    # strawberry's resolver called directly (graphql_schema.direct_fields), else the
    # field's own ``resolve`` (strawberry's chain: async resolvers, default resolvers)
    direct: DirectField | None
    completion: Completion
    # its batch resolver (graphql_schema.batching), used when it is selected on a list
    batch: BatchResolver | None


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """The root object of a query operation, planned (see the module docstring)."""

    root: ObjectOf


class _Unplanned(Exception):
    """The document has something the plan does not cover."""


def plan_query(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> QueryPlan | None:
    """The plan of the document's query operation, or None when it is not plain."""
    try:
        return _plan_document(schema, document, operation_name)
    except Exception:  # _Unplanned, or a document graphql-core would refuse: its way
        return None


def _plan_document(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> QueryPlan:
    operation: OperationDefinitionNode | None = None
    fragments: dict[str, FragmentDetails] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            name = None if definition.name is None else definition.name.value
            if operation_name is None or name == operation_name:
                if operation is not None and operation_name is None:
                    raise _Unplanned  # several operations and no name: graphql-core says so
                operation = definition
        elif isinstance(definition, FragmentDefinitionNode):
            if definition.variable_definitions or definition.directives:
                raise _Unplanned
            _plain_selections(definition.selection_set)
            fragments[definition.name.value] = FragmentDetails(definition, None)
    root_type = schema.query_type
    if operation is None or operation.operation is not OperationType.QUERY or root_type is None:
        raise _Unplanned
    if operation.directives:
        raise _Unplanned
    _plain_selections(operation.selection_set)
    grouped, defers, _ = collect_fields(schema, fragments, _NO_VARIABLES, root_type, operation)
    if defers:
        raise _Unplanned
    context = _Planning(schema, fragments, operation)
    return QueryPlan(context.object_of(root_type, True, grouped))


def _plain_selections(selection_set: SelectionSetNode | None) -> None:
    """Raise unless no selection under ``selection_set`` carries a directive (then the
    fields collected do not depend on the variables)."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if selection.directives:
            raise _Unplanned
        if isinstance(selection, FieldNode | InlineFragmentNode):
            _plain_selections(selection.selection_set)


@dataclass(frozen=True, slots=True)
class _Planning:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDetails]
    operation: OperationDefinitionNode

    def object_of(
        self,
        type_: GraphQLObjectType,
        non_null: bool,
        grouped: dict[str, list[FieldDetails]],
    ) -> ObjectOf:
        leaves = []
        fields = []
        for response_name, details in grouped.items():
            name = details[0].node.name.value
            if name == TYPENAME:
                leaves.append(typename_step(response_name))
                continue
            field = type_.fields.get(name)
            if field is None:  # introspection (__schema, __type)
                raise _Unplanned
            step = leaf_step(response_name, field)
            if step is not None:
                leaves.append(step)
                continue
            fields.append(self.field_plan(response_name, type_, field, details))
        order = tuple(grouped)
        in_order = tuple(step[0] for step in leaves) + tuple(f.response_name for f in fields)
        return ObjectOf(
            type_, non_null, tuple(leaves), tuple(fields), None if in_order == order else order
        )

    def field_plan(
        self,
        response_name: str,
        parent_type: GraphQLObjectType,
        field: GraphQLField,
        details: list[FieldDetails],
    ) -> FieldPlan:
        if field.resolve is None:
            raise _Unplanned
        return FieldPlan(
            response_name,
            parent_type,
            field,
            details,
            [d.node for d in details],
            direct_field(self.schema, field),
            self.completion(field.type, details),
            batch_resolver(field),
        )

    def completion(self, type_: Any, details: list[FieldDetails]) -> Completion:
        non_null = isinstance(type_, GraphQLNonNull)
        if non_null:
            type_ = type_.of_type
        if is_leaf_type(type_):
            return Leaf(type_, non_null)
        if isinstance(type_, GraphQLObjectType):
            return self.sub_object(type_, non_null, details)
        if not isinstance(type_, GraphQLList):
            raise _Unplanned  # an interface or a union
        item_type = type_.of_type
        item_non_null = isinstance(item_type, GraphQLNonNull)
        if item_non_null:
            item_type = item_type.of_type
        if not isinstance(item_type, GraphQLObjectType):
            raise _Unplanned
        item = self.sub_object(item_type, item_non_null, details)
        batched = tuple(field for field in item.fields if field.batch is not None)
        return ListOf(non_null, item, batched)

    def subfields(
        self, type_: GraphQLObjectType, details: list[FieldDetails]
    ) -> dict[str, list[FieldDetails]]:
        grouped, defers, _ = collect_subfields(
            self.schema, self.fragments, _NO_VARIABLES, self.operation, type_, details
        )
        if defers:
            raise _Unplanned
        return grouped

    def sub_object(
        self, type_: GraphQLObjectType, non_null: bool, details: list[FieldDetails]
    ) -> ObjectOf:
        return self.object_of(type_, non_null, self.subfields(type_, details))


class PlannedRun:
    """One request's run of a plan, on the executor graphql-core would have used (its
    variables, its argument coercion and resolve-info objects)."""

    def __init__(self, executor: DirectExecution) -> None:
        self.executor = executor
        self.is_awaitable: Callable[[Any], bool] = executor.is_awaitable

    async def run(self, plan: QueryPlan) -> dict[str, Any]:
        """The data of the response, or :class:`Declined`."""
        executor = self.executor
        data = self.object(plan.root, executor.root_value, None)
        return data if isinstance(data, dict) else await data

    def object(
        self,
        plan: ObjectOf,
        source: Any,
        path: Path | None,
        known: dict[str, Any] | None = None,
    ) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        """The object's response; ``known``: the values of its batched fields (by
        response name), which are completed instead of resolved."""
        row = complete_row(plan.leaves, plan.type_, source) if plan.leaves else {}
        if row is None:
            raise Declined
        pending: list[tuple[str, Awaitable[Any]]] = []
        failed = False
        for field in plan.fields:
            try:
                if known is not None and field.response_name in known:
                    value = self.known(field, known[field.response_name], path)
                else:
                    value = self.field(field, source, path)
            except Exception:
                # Declined: what the fields before it started finishes first (_settled).
                failed = True
                break
            if self.is_awaitable(value):
                pending.append((field.response_name, value))
            row[field.response_name] = value
        if failed:
            return _settled(pending)
        if pending:
            return self._gathered(row, pending, plan.order)
        return row if plan.order is None else {name: row[name] for name in plan.order}

    async def _gathered(
        self,
        row: dict[str, Any],
        pending: list[tuple[str, Awaitable[Any]]],
        order: tuple[str, ...] | None,
    ) -> dict[str, Any]:
        if len(pending) == 1:
            name, awaitable = pending[0]
            row[name] = await awaitable
        else:
            row.update(zip((name for name, _ in pending), await _all(pending), strict=True))
        return row if order is None else {name: row[name] for name in order}

    def field(self, plan: FieldPlan, source: Any, parent: Path | None) -> Any:
        executor = self.executor
        field = plan.field
        path = Path(parent, plan.response_name, plan.parent_type.name)
        info = executor.build_resolve_info(field, plan.nodes, plan.parent_type, path)
        direct = plan.direct
        if direct is not None:
            resolver_info = direct.info_class(_raw_info=info, _field=direct.definition)
            call = executor._direct_arguments(direct, field, plan.details[0], source, resolver_info)
            if call is None:
                raise Declined
            args, kwargs = call
            result = direct.definition.get_result(
                source, info=resolver_info, args=args, kwargs=kwargs
            )
        else:
            arguments = executor._argument_values(field, plan.details[0])
            result = field.resolve(source, info, **arguments)  # type: ignore[misc]
        if self.is_awaitable(result):
            return self._awaited(plan.completion, result, info, path)
        return self.complete(plan.completion, result, info, path)

    def known(self, plan: FieldPlan, value: Any, parent: Path | None) -> Any:
        """A batched field's value, completed as ``field`` completes a resolver's."""
        path = Path(parent, plan.response_name, plan.parent_type.name)
        info = self.executor.build_resolve_info(plan.field, plan.nodes, plan.parent_type, path)
        return self.complete(plan.completion, value, info, path)

    async def _awaited(
        self, completion: Completion, result: Awaitable[Any], info: Any, path: Path
    ) -> Any:
        value = self.complete(completion, await result, info, path)
        if self.is_awaitable(value):
            value = await value
        return value

    def complete(self, completion: Completion, value: Any, info: Any, path: Path) -> Any:
        if value is None:
            if completion.non_null:
                raise Declined
            return None
        if isinstance(completion, Leaf):
            coerced = completion.type_.coerce_output_value(value)
            if coerced is Undefined or coerced is None:
                raise Declined
            return coerced
        if isinstance(completion, ObjectOf):
            _check_type(completion.type_, value, info)
            return self.object(completion, value, path)
        if not isinstance(value, LISTS):
            raise Declined
        item = completion.item
        if not item.fields:  # rows of leaves, each completed at once
            completed = complete_rows(item.leaves, item.type_, value, info)
            if completed is None:
                raise Declined
            return completed
        if completion.batched and value:
            return self._batched(completion, value, path, info)
        return self.objects(item, value, path, info)

    async def _batched(
        self, completion: ListOf, items: Sequence[Any], path: Path, info: Any
    ) -> list[Any]:
        """A list of objects whose batched fields are resolved once for the whole list,
        on graphql_schema.batching's terms (every permission allows, checked once; one
        value per object), then completed object by object with those values."""
        executor = self.executor
        strawberry_schema = getattr(executor.schema, "_strawberry_schema", None)
        if (
            not isinstance(executor, BatchExecution)
            or strawberry_schema is None
            or executor.abort_signal is not None
            or any(item is None for item in items)
        ):
            raise Declined
        item = completion.item
        arguments = []
        for field in completion.batched:
            # The first object's path: the arguments and permissions do not depend on it.
            first = Path(path.add_key(0, None), field.response_name, item.type_.name)
            found = executor._arguments(
                strawberry_schema, item.type_, field.field, field.details, first
            )
            if found is None:  # a refusal or an argument error: the usual way reports it
                raise Declined
            arguments.append(found)
        calls: list[tuple[str, Awaitable[Any]]] = [
            (field.response_name, executor._call(field.batch, items, found))
            for field, found in zip(completion.batched, arguments, strict=True)
            if field.batch is not None
        ]
        known: list[dict[str, Any]] = [{} for _ in items]
        for (name, _), values in zip(calls, await _all(calls), strict=True):
            if len(values) != len(items):
                raise Declined
            for index, value in enumerate(values):
                known[index][name] = value
        completed = self.objects(item, items, path, info, known)
        return completed if isinstance(completed, list) else await completed

    def objects(
        self,
        item: ObjectOf,
        value: Sequence[Any],
        path: Path,
        info: Any,
        known: list[dict[str, Any]] | None = None,
    ) -> Any:
        """A list of objects, each completed by ``object`` (with its batched values)."""
        items: list[Any] = []
        pending: list[tuple[int, Awaitable[Any]]] = []
        failed = False
        for index, value_item in enumerate(value):
            if value_item is None:
                if item.non_null:
                    failed = True
                    break
                items.append(None)
                continue
            try:
                _check_type(item.type_, value_item, info)
                completed_item = self.object(
                    item,
                    value_item,
                    path.add_key(index, None),
                    None if known is None else known[index],
                )
            except Exception:
                failed = True
                break
            if not isinstance(completed_item, dict):
                pending.append((index, completed_item))
            items.append(completed_item)
        if failed:
            return _settled(pending)
        if pending:
            return self._items(items, pending)
        return items

    async def _items(
        self, items: list[Any], pending: list[tuple[int, Awaitable[Any]]]
    ) -> list[Any]:
        for (index, _), value in zip(pending, await _all(pending), strict=True):
            items[index] = value
        return items


def _check_type(type_: GraphQLObjectType, value: Any, info: Any) -> None:
    is_type_of = type_.is_type_of
    if is_type_of is not None and is_type_of(value, info) is not True:
        raise Declined  # False (graphql-core's error) or awaitable: the usual way decides


def _settled(pending: list[tuple[Any, Awaitable[Any]]]) -> Awaitable[Any]:
    """Declined, once the awaitables already made have finished: a statement cancelled
    mid-way, or a resolver left unawaited, could leave the request's connection or its
    loaders in a state the usual way's run would meet."""
    if not pending:
        raise Declined

    async def settle() -> Any:
        await asyncio.gather(*(awaitable for _, awaitable in pending), return_exceptions=True)
        raise Declined

    return settle()


async def _all(pending: list[tuple[Any, Awaitable[Any]]]) -> list[Any]:
    """The values of awaitables started together, as graphql-core gathers siblings; when
    one fails, the others are let finish first (a statement cancelled mid-way could leave
    the request's connection busy for the usual way's run), then the run is declined."""
    values = await asyncio.gather(*(awaitable for _, awaitable in pending), return_exceptions=True)
    for value in values:
        if isinstance(value, BaseException):
            raise value
    return values
