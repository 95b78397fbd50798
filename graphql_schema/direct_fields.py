"""Fields with a synchronous resolver, called without strawberry's per-call resolver chain.

For each field with a resolver, strawberry's ``_resolver`` builds an ``Info``, converts the
arguments (camel-casing each argument's name, walking each type's wrappers with a dozen
``isinstance`` checks), chains the field extensions through ``functools.reduce`` and
``partial``, and lets ``PermissionExtension`` check each permission. For
``organization { endpointUsage(timeRange:, keyId:) }`` that was about a tenth of what
GraphQL adds to the plain route's work (bench/PROPOSALS.md, R32).

:class:`DirectExecution` calls such a field's resolver itself, with the same arguments,
when that cannot differ from strawberry's chain: a synchronous resolver (``self`` and
``info`` its only reserved parameters), no field extension other than strawberry's
``PermissionExtension``, every permission declaring ``source_free = True`` (pure and
synchronous: ``graphql_schema.permissions``), no field middleware and no exception
handlers. The permissions are checked on every call, with the object, the ``Info`` and
the arguments strawberry would give them; unless every one answers ``True``, or if
converting the arguments raises, the field takes strawberry's own path, which converts,
checks and refuses exactly as before (both steps are pure, so doing them twice changes
nothing). The resolver itself is called once, on one path or the other, and what it
returns or raises is completed as graphql-core's ``execute_field`` does.

What is kept across requests is only how to convert each argument, per field of the
schema: never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from datetime import time as dt_time
from decimal import Decimal
from enum import Enum
from typing import Any

from graphql import (
    ArgumentNode,
    FieldNode,
    GraphQLArgument,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    ListValueNode,
    ObjectValueNode,
    ValueNode,
    VariableNode,
    get_argument_values,
)
from graphql.execution.collect_fields import FieldDetails
from graphql.execution.values import coerce_argument
from graphql.pyutils import Path
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import InputContext, convert_argument
from strawberry.types.base import StrawberryMaybe, StrawberryOptional, has_object_definition
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UNSET

DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF

# (GraphQL name, Python name, the type strawberry converts to, whether a null needs no
# conversion, whether any other value needs none, the input type's own ``from_input`` that
# strawberry would call, or None)
Argument = tuple[str, str, Any, bool, bool, Any]


@dataclass(frozen=True, slots=True)
class Conversion:
    """How strawberry converts one field's coerced arguments for its resolver."""

    arguments: tuple[Argument, ...]
    config: Any
    scalar_registry: Mapping[object, Any]


@dataclass(frozen=True, slots=True)
class DirectField:
    """How to call one field's resolver as strawberry's chain would."""

    definition: StrawberryField
    conversion: Conversion
    permissions: tuple[BasePermission, ...]
    passes_self: bool
    info_name: str | None
    info_class: type


def _is_leaf(type_: Any, scalar_registry: Mapping[object, Any]) -> bool:
    """Values of ``type_`` that strawberry's ``convert_argument`` returns as they are."""
    if type_ is GlobalID:
        return False
    return (
        is_scalar(type_, scalar_registry)
        or isinstance(type_, StrawberryEnumDefinition)
        or has_enum_definition(type_)
    )


def _argument(argument: Any, config: Any, scalar_registry: Mapping[object, Any]) -> Argument:
    type_ = argument.type
    name = config.name_converter.from_argument(argument)
    if isinstance(type_, StrawberryMaybe):  # null means something else there: convert
        return (name, argument.python_name, type_, False, False, None)
    inner = type_.of_type if type(type_) is StrawberryOptional else type_
    leaf = _is_leaf(inner, scalar_registry)
    # An input class building its own value (TimeRangeInput): what convert_argument ends
    # with for it, once none of the wrappers and kinds it tries first applies.
    from_input = (
        inner.__strawberry_definition__.from_input
        if not leaf and isinstance(inner, type) and has_object_definition(inner)
        else None
    )
    # convert_argument returns None for a null of any type but Maybe (checked above).
    return (name, argument.python_name, inner, True, leaf, from_input)


def _direct_field(field: GraphQLField, conversion: Conversion) -> DirectField | None:
    """The plan of a field of exactly strawberry's kind (``conversion_of``: a subclass may
    resolve its own way, relay connections), or None."""
    definition: StrawberryField = field.extensions[DEFINITION]
    if field.resolve is None:
        return None
    resolver = definition.base_resolver
    if resolver is None or definition.is_async or definition.is_subscription:
        return None
    if resolver.root_parameter is not None or resolver.parent_parameter is not None:
        return None
    permissions: list[BasePermission] = []
    for extension in definition.extensions:
        if type(extension) is not PermissionExtension:
            return None
        if not all(getattr(p, "source_free", False) is True for p in extension.permissions):
            return None
        permissions.extend(extension.permissions)
    info = resolver.info_parameter
    return DirectField(
        definition=definition,
        conversion=conversion,
        permissions=tuple(permissions),
        passes_self=resolver.self_parameter is not None,
        info_name=None if info is None else info.name,
        info_class=conversion.config.info_class,
    )


def _conversion(definition: StrawberryField, strawberry_schema: Any) -> Conversion:
    config = strawberry_schema.config
    registry = strawberry_schema.schema_converter.scalar_registry
    return Conversion(
        arguments=tuple(_argument(a, config, registry) for a in definition.arguments),
        config=config,
        scalar_registry=registry,
    )


# What one document's memo holds at most (row plans, argument values): a document's
# selections have few shapes; @include/@skip on variables can make more of them, which are
# then worked out per request as before.
MEMO_LIMIT = 64
_ARGUMENTS = "arguments"
_IMMUTABLE = (str, int, float, bool, Enum, date, dt_time, timedelta, Decimal)


def _has_variable(node: ValueNode) -> bool:
    if isinstance(node, VariableNode):
        return True
    if isinstance(node, ObjectValueNode):
        return any(_has_variable(field.value) for field in node.fields)
    if isinstance(node, ListValueNode):
        return any(_has_variable(value) for value in node.values)
    return False


def _copy(value: Any) -> Any:
    """A fresh copy of coerced argument values (dicts and lists of immutable leaves), or
    ``_UNKNOWN`` for anything else (a value that could be changed in place, shared)."""
    if value is None or isinstance(value, _IMMUTABLE):
        return value
    if type(value) is dict:
        copied = {}
        for key, item in value.items():
            copied[key] = item = _copy(item)
            if item is _UNKNOWN:
                return _UNKNOWN
        return copied
    if type(value) is list:
        items = [_copy(item) for item in value]
        return _UNKNOWN if any(item is _UNKNOWN for item in items) else items
    return _UNKNOWN


def _argument_plan(
    field: GraphQLField, node: FieldNode, hide_suggestions: bool
) -> tuple[dict[str, Any], list[tuple[str, GraphQLArgument, ArgumentNode]]] | None:
    """The values of the node's arguments that name no variable, coerced, and the
    arguments that do; None when those values cannot be shared (not plain data), or do not
    coerce (graphql-core's error then comes from its own call, on every request)."""
    nodes = {argument.name.value: argument for argument in node.arguments or ()}
    constant: dict[str, Any] = {}
    per_request = []
    try:
        for name, definition in field.args.items():
            argument = nodes.get(name)
            if argument is not None and _has_variable(argument.value):
                per_request.append((name, definition, argument))
            else:
                coerce_argument(
                    constant, node, name, definition, argument, None, None, hide_suggestions
                )
    except Exception:
        return None
    if _copy(constant) is _UNKNOWN:
        return None
    return constant, per_request


# Where a field keeps its plan: in its own extensions, beside strawberry's definition, so
# the plan lives exactly as long as the field (and its schema).
PLAN = "creditlens.direct"
_UNKNOWN = object()


def direct_field(schema: GraphQLSchema, field: GraphQLField) -> DirectField | None:
    """The plan for calling ``field``'s resolver directly, or None."""
    extensions = field.extensions
    plan = extensions.get(PLAN, _UNKNOWN)
    if plan is _UNKNOWN:
        conversion = conversion_of(schema, field)
        plan = None if conversion is None else _direct_field(field, conversion)
        extensions[PLAN] = plan
    return plan if isinstance(plan, DirectField) else None


CONVERSION = "creditlens.conversion"


def conversion_of(schema: GraphQLSchema, field: GraphQLField) -> Conversion | None:
    """How to convert the arguments of ``field`` (exactly strawberry's field), or None;
    kept in the field's extensions as the direct plan is."""
    extensions = field.extensions
    conversion = extensions.get(CONVERSION, _UNKNOWN)
    if conversion is _UNKNOWN:
        definition = extensions.get(DEFINITION)
        strawberry_schema = getattr(schema, "_strawberry_schema", None)
        conversion = (
            _conversion(definition, strawberry_schema)
            if type(definition) is StrawberryField and strawberry_schema is not None
            else None
        )
        extensions[CONVERSION] = conversion
    return conversion if isinstance(conversion, Conversion) else None


def convert(plan: Conversion, values: dict[str, Any], info: Any) -> dict[str, Any]:
    """``strawberry.types.arguments.convert_arguments`` with the names and the types'
    wrappers worked out once: nulls and leaves as they are, anything else through
    strawberry's own ``convert_argument``."""
    kwargs: dict[str, Any] = {}
    for name, python_name, type_, null_as_is, leaf, from_input in plan.arguments:
        if name not in values:
            continue
        value = values[name]
        if (null_as_is and (value is None or value is UNSET)) or leaf:
            kwargs[python_name] = value
        elif from_input is not None:
            context = InputContext(
                info=info, config=plan.config, scalar_registry=plan.scalar_registry, path=(name,)
            )
            kwargs[python_name] = from_input(type_, value, context)
        else:
            kwargs[python_name] = convert_argument(
                value, type_, plan.scalar_registry, plan.config, info, path=(name,)
            )
    return kwargs


class DirectExecution(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, calling plain synchronous resolvers directly (module
    docstring)."""

    def __init__(
        self, *args: Any, document_memo: dict[Any, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # What this executor may keep with the document it runs, for the next requests
        # of the same document (graphql_schema.known_operations.Known.memo); None: only
        # for this execution.
        self.document_memo = document_memo
        # Field middleware or exception handlers: strawberry's chain applies them.
        strawberry_schema = getattr(self.schema, "_strawberry_schema", None)
        self._direct_enabled = not (
            (self.middleware_manager is not None and self.middleware_manager.middlewares)
            or strawberry_schema is None
            or strawberry_schema.exception_handlers
        )

    def release(self) -> None:
        """Let go of this executor's helpers once its run is over.

        graphql-core gives every executor ``async_helpers`` holding two of its own bound
        methods: a reference cycle, so the executor, the request's context and everything
        hanging from them outlived the request until the garbage collector came by (about
        one collection every six reports, each walking those leftovers; bench/PROPOSALS.md,
        R43). Nothing reads the helpers after the run; without the cycle they are freed
        when the request drops the executor.
        """
        del self.async_helpers

    @property
    def plannable(self) -> bool:
        """Whether a document's plan may run on this executor (``graphql_schema.
        query_plans``): the same conditions as for calling resolvers directly."""
        return self._direct_enabled

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        first: FieldDetails = field_details_list[0]
        field = parent_type.fields.get(first.node.name.value) if self._direct_enabled else None
        plan: DirectField | None = None
        if field is not None:
            # Most fields of a page (a key's id) are not for this path: one lookup says so.
            plan = field.extensions.get(PLAN, _UNKNOWN)
            if plan is _UNKNOWN:
                plan = direct_field(self.schema, field)
        if plan is None or field is None:
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )
        raw_info = self.build_resolve_info(
            field, [details.node for details in field_details_list], parent_type, path
        )
        info = plan.info_class(_raw_info=raw_info, _field=plan.definition)
        call = self._direct_arguments(plan, field, first, source, info)
        if call is None:  # a refusal or an argument error: strawberry's path reports it
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )
        args, kwargs = call
        return_type = field.type
        # From here on, what graphql-core's execute_field does with a resolver's result.
        try:
            result = plan.definition.get_result(source, info=info, args=args, kwargs=kwargs)
            if self.is_awaitable(result):
                return self.complete_awaitable_value(
                    return_type, field_details_list, raw_info, path, result, position_context
                )
            completed = self.complete_value(
                return_type, field_details_list, raw_info, path, result, position_context
            )
            if self.is_awaitable(completed):
                return self._await_completed(completed, return_type, field_details_list, path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        return completed

    def _direct_arguments(
        self,
        plan: DirectField,
        field: GraphQLField,
        first: FieldDetails,
        source: Any,
        info: Any,
    ) -> tuple[list[Any], dict[str, Any]] | None:
        """The resolver's positional and keyword arguments, once every permission
        allows; None for anything strawberry's path must decide."""
        try:
            values = self._argument_values(field, first)
            kwargs = convert(plan.conversion, values, info)
            for extension in plan.definition.extensions:
                kwargs = extension.map_arguments(kwargs)
            for permission in plan.permissions:
                if permission.has_permission(source, info, **kwargs) is not True:
                    return None
        except Exception:
            return None
        if plan.info_name is not None:
            kwargs[plan.info_name] = info
        return ([source] if plan.passes_self else []), kwargs

    def _argument_values(self, field: GraphQLField, first: FieldDetails) -> dict[str, Any]:
        """graphql-core's coerced argument values of the field's node. An argument written
        as a literal (``timeRange: {preset: LAST_30_DAYS}``), or left to its default,
        coerces to the same value on every request of the document: it is coerced once,
        kept with the document and handed out as a copy (R34); an argument naming a
        variable is coerced per request, as graphql-core does."""
        node = first.node
        if not field.args:
            return {}
        memo = self.document_memo
        if memo is None or first.fragment_variable_values is not None:
            return get_argument_values(
                field,
                node,
                self.variable_values,
                first.fragment_variable_values,
                self.hide_suggestions,
            )
        key = (_ARGUMENTS, id(node))
        known = memo.get(key)
        # Kept with the node's field: the same node could select fields of several types
        # (a fragment on an interface), each with its own arguments and defaults.
        if known is None and len(memo) < MEMO_LIMIT:
            known = (field, _argument_plan(field, node, self.hide_suggestions))
            memo[key] = known
        values: Any = _UNKNOWN
        if known is not None and known[0] is field and known[1] is not None:
            constant, per_request = known[1]
            values = _copy(constant)
        if values is _UNKNOWN:
            return get_argument_values(
                field, node, self.variable_values, None, self.hide_suggestions
            )
        for name, definition, argument in per_request:
            coerce_argument(
                values,
                node,
                name,
                definition,
                argument,
                self.variable_values,
                None,
                self.hide_suggestions,
            )
        return values  # type: ignore[no-any-return]

    async def _await_completed(
        self, completed: Any, return_type: Any, field_details_list: Any, path: Path
    ) -> Any:
        """A completion still under way, its error reported at the field's path as
        graphql-core's ``execute_field`` does (also for the batched fields' values)."""
        try:
            return await completed
        except Exception as error:
            self.handle_field_error(error, return_type, field_details_list, path)
            return None
