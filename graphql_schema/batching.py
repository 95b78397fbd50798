"""One resolver call for a field on every object of a list (a page of keys' tables).

A page of 50 keys each with ``endpointUsage(timeRange: ...)`` ran strawberry's resolver
chain 50 times: graphql-core coerced the same argument literal 50 times, strawberry
converted it and checked the same two permissions 50 times, and each key awaited its own
chain of coroutines around one shared DataLoader batch (bench/PROPOSALS.md, R25).

A field may name, in its strawberry metadata (:func:`batch_of`), a batch resolver:
``batch(sources, context, **arguments)`` returns an awaitable of one value per source,
each the value the field's own resolver would give that source. When graphql-core
completes a list of objects that selects such a field, :class:`BatchExecution` coerces and
converts the field's arguments once, checks its permissions once, awaits the batch once,
and hands each object's field its value, completed by graphql-core at its own path.

It does so only when the ordinary path would surely give the same: every permission of
the field declares ``source_free = True`` (its verdict does not depend on the object) and
allows; the field has no other field extension; no field middleware, no exception
handlers, no abort signal, no null in the list, no ``@defer`` or ``@stream`` below it. Any
refusal, coercion error or exception of the batch leaves the field to the ordinary path,
which reports it at each object's path exactly as before (a refusal is per object, so that
is the place for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from graphql import GraphQLField, GraphQLNonNull, GraphQLObjectType
from graphql.execution.collect_fields import FieldDetails
from graphql.pyutils import Path
from strawberry.permission import PermissionExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from graphql_schema.direct_fields import DirectExecution, conversion_of, convert

BATCH = "creditlens.batch"
DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF

BatchResolver = Callable[..., Awaitable[Sequence[Any]]]


def batch_of(resolver: BatchResolver) -> dict[str, Any]:
    """Field metadata naming ``resolver`` as the field's batch resolver."""
    return {BATCH: resolver}


def batch_resolver(field: GraphQLField) -> BatchResolver | None:
    definition = field.extensions.get(DEFINITION)
    # Exactly strawberry's field, whose arguments convert as graphql_schema.direct_fields
    # converts them.
    if type(definition) is not StrawberryField:
        return None
    resolver: BatchResolver | None = definition.metadata.get(BATCH)
    if resolver is None:
        return None
    # The verdict of these permissions is the same for every object: checked once.
    for extension in definition.extensions:
        if not isinstance(extension, PermissionExtension) or extension.fail_silently:
            return None
        if not all(getattr(p, "source_free", False) is True for p in extension.permissions):
            return None
    return resolver


class BatchExecution(DirectExecution):
    """strawberry's executor, resolving batchable fields once per list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (id of the field's details list, id of the object) -> (the object, its value);
        # the object is kept to make sure the id is still its own.
        self._batched: dict[tuple[int, int], tuple[Any, Any]] = {}

    def complete_iterable_value(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Path,
        items: Any,
        position_context: Any,
    ) -> Any:
        batches = None
        if isinstance(items, list | tuple) and items:
            batches = self._batches(item_type, field_details_list, path, items)
        if not batches:
            return super().complete_iterable_value(
                item_type, field_details_list, info, path, items, position_context
            )
        return self._complete_batched(
            batches, item_type, field_details_list, info, path, items, position_context
        )

    def _batches(
        self, item_type: Any, field_details_list: Any, path: Path, items: Sequence[Any]
    ) -> list[tuple[list[FieldDetails], Awaitable[Sequence[Any]]]] | None:
        """The batch calls for the batchable fields selected on the list's objects."""
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if (
            not isinstance(object_type, GraphQLObjectType)
            or (self.middleware_manager is not None and self.middleware_manager.middlewares)
            or self.get_stream_usage(field_details_list, path) is not None
            # graphql-core wraps a resolver's awaitable to stop at an abort; ours is not.
            or self.abort_signal is not None
            or any(item is None for item in items)
        ):
            return None
        strawberry_schema = getattr(self.schema, "_strawberry_schema", None)
        if strawberry_schema is None or strawberry_schema.exception_handlers:
            return None
        grouped_field_set, new_defer_usages, *_ = self.collect_subfields(
            object_type, field_details_list
        )
        if new_defer_usages:
            return None
        batches: list[tuple[list[FieldDetails], Awaitable[Sequence[Any]]]] = []
        for response_name, details in grouped_field_set.items():
            field = object_type.fields.get(details[0].node.name.value)
            resolver = None if field is None else batch_resolver(field)
            if field is None or resolver is None:
                continue
            # The first object's path: the arguments and permissions do not depend on it.
            first = Path(path.add_key(0, None), response_name, object_type.name)
            arguments = self._arguments(strawberry_schema, object_type, field, details, first)
            if arguments is not None:
                batches.append((details, self._call(resolver, items, arguments)))
        return batches

    async def _call(
        self, resolver: BatchResolver, items: Sequence[Any], arguments: dict[str, Any]
    ) -> Sequence[Any]:
        return await resolver(items, self.context_value, **arguments)

    def _arguments(
        self,
        strawberry_schema: Any,
        parent_type: GraphQLObjectType,
        field: GraphQLField,
        details: list[FieldDetails],
        path: Path,
    ) -> dict[str, Any] | None:
        """The field's arguments as its resolver receives them, when every permission
        allows; None for any error or refusal (the ordinary path then reports it)."""
        definition: StrawberryField = field.extensions[DEFINITION]
        conversion = conversion_of(self.schema, field)
        if conversion is None:
            return None
        try:
            coerced = self._argument_values(field, details[0])
            info = strawberry_schema.config.info_class(
                _raw_info=self.build_resolve_info(
                    field, [d.node for d in details], parent_type, path
                ),
                _field=definition,
            )
            arguments = convert(conversion, coerced, info)
            for extension in definition.extensions:
                arguments = extension.map_arguments(arguments)
            for extension in definition.extensions:
                assert isinstance(extension, PermissionExtension)  # by batch_resolver
                for permission in extension.permissions:
                    if permission.has_permission(None, info, **arguments) is not True:
                        return None
        except Exception:
            return None
        return arguments

    async def _complete_batched(
        self,
        batches: list[tuple[list[FieldDetails], Awaitable[Sequence[Any]]]],
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Path,
        items: Sequence[Any],
        position_context: Any,
    ) -> Any:
        # Together, so the DataLoader behind them reads all of them in one dispatch.
        results = await asyncio.gather(*(batch for _, batch in batches), return_exceptions=True)
        keys = []
        for (details, _), values in zip(batches, results, strict=True):
            if isinstance(values, BaseException):
                if not isinstance(values, Exception):
                    raise values
                continue  # the ordinary path reports it at each object's path
            if len(values) != len(items):
                continue
            for item, value in zip(items, values, strict=True):
                key = (id(details), id(item))
                self._batched[key] = (item, value)
                keys.append(key)
        try:
            completed = self._complete_items(
                item_type, field_details_list, info, path, items, position_context
            )
        finally:
            # The objects' fields were executed within that call (their own awaitables
            # only complete values); a field not reached there takes the ordinary path.
            for key in keys:
                self._batched.pop(key, None)
        if self.is_awaitable(completed):
            completed = await completed
        return completed

    def _complete_items(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Path,
        items: Sequence[Any],
        position_context: Any,
    ) -> Any:
        """The list's objects completed once their batched values are known: graphql-core's
        completion, whose ``execute_field`` hands each object's field its value."""
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        if self._batched:
            known = self._known(field_details_list, source)
            if known is not None:
                return self._complete_known(
                    parent_type, field_details_list, path, known[0], position_context
                )
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _known(self, field_details_list: Any, source: Any) -> tuple[Any] | None:
        """The batched value of this field of ``source`` (in a 1-tuple: it may be None),
        or None when the field takes the ordinary path."""
        known = self._batched.get((id(field_details_list), id(source)))
        if known is None or known[0] is not source:
            return None
        return (known[1],)

    def _complete_known(
        self,
        parent_type: GraphQLObjectType,
        field_details_list: Any,
        path: Path,
        value: Any,
        position_context: Any,
    ) -> Any:
        """What ``execute_field`` does after the resolver returned ``value``."""
        field = parent_type.fields[field_details_list[0].node.name.value]
        return_type = field.type
        info = self.build_resolve_info(
            field, [d.node for d in field_details_list], parent_type, path
        )
        try:
            completed = self.complete_value(
                return_type, field_details_list, info, path, value, position_context
            )
        except Exception as error:
            self.handle_field_error(error, return_type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._await_completed(completed, return_type, field_details_list, path)
        return completed
