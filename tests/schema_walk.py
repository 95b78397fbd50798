"""A walk of the schema from ``Query``: every reachable field, with a generated query.

Every field gets arguments filled by type and a selection of everything below it, so a
field added tomorrow is walked without anyone writing a test for it. The isolation matrix
(tests/test_isolation.py) and the permission walk (tests/test_permissions.py) run on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    is_non_null_type,
)

from app.settings import Settings
from graphql_schema.schema import build_schema

SCHEMA = build_schema(Settings())
GRAPHQL_SCHEMA = SCHEMA._schema
KEY_PLACEHOLDER = "__KEY__"
RANGE = '{start: "2026-06-01T00:00:00Z", end: "2026-06-16T00:00:00Z"}'


@dataclass(frozen=True)
class Step:
    """One field on the way from Query to the field under test, with its arguments."""

    type_name: str
    field_name: str
    arguments: str

    @property
    def coordinate(self) -> str:
        return f"{self.type_name}.{self.field_name}"


def argument_literal(field_name: str, name: str, arg) -> str | None:
    """A literal for an argument, chosen by its type; None leaves an optional one out."""
    named = get_named_type(arg.type)
    if isinstance(named, GraphQLInputObjectType) and named.name == "TimeRangeInput":
        return RANGE
    if isinstance(named, GraphQLEnumType) and named.name == "Granularity":
        return "DAY"
    if isinstance(named, GraphQLEnumType) and named.name == "CallOutcome":
        return "[SUCCESS]"  # the filter, taken: every event the walk sends is a 200
    if named.name == "ID":
        return f'"{KEY_PLACEHOLDER}"'
    if name == "first":
        return "10"
    if name == "includeRevoked":
        return "true"
    if not is_non_null_type(arg.type) or arg.default_value is not None:
        return None  # optional: the default
    raise AssertionError(f"the isolation walker cannot fill {field_name}({name}: {arg.type})")


def arguments_of(field_name: str, field: GraphQLField) -> str:
    literals = [
        f"{name}: {literal}"
        for name, arg in field.args.items()
        if (literal := argument_literal(field_name, name, arg)) is not None
    ]
    return f"({', '.join(literals)})" if literals else ""


def selection(type_, depth: int = 2) -> str:
    """Every scalar below ``type_``, and object fields down to ``depth`` levels."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLScalarType | GraphQLEnumType):
        return ""
    parts = ["__typename"]
    for name, field in named.fields.items():
        inner = get_named_type(field.type)
        if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
            parts.append(name + arguments_of(name, field))
        elif depth > 0:
            parts.append(f"{name}{arguments_of(name, field)} {selection(inner, depth - 1)}")
    return "{ " + " ".join(parts) + " }"


def walk() -> list[tuple[Step, ...]]:
    """The shortest path from Query to every field of every reachable object type."""
    paths: list[tuple[Step, ...]] = []
    queue: list[tuple[GraphQLObjectType, tuple[Step, ...]]] = [(GRAPHQL_SCHEMA.query_type, ())]
    seen = {GRAPHQL_SCHEMA.query_type.name}
    while queue:
        type_, prefix = queue.pop(0)
        for name, field in type_.fields.items():
            path = (*prefix, Step(type_.name, name, arguments_of(name, field)))
            paths.append(path)
            inner = get_named_type(field.type)
            if isinstance(inner, GraphQLInterfaceType):
                raise AssertionError(f"walk the possible types of {inner.name} too")
            if isinstance(inner, GraphQLObjectType) and inner.name not in seen:
                seen.add(inner.name)
                queue.append((inner, path))
    return paths


PATHS = walk()
IDS = [path[-1].coordinate for path in PATHS]


def field_of(step: Step) -> GraphQLField:
    return GRAPHQL_SCHEMA.type_map[step.type_name].fields[step.field_name]


def query_for(
    path: tuple[Step, ...], *, alias: bool = False, fragment: bool = False, depth: int = 2
) -> str:
    """Nest the path; select everything below its last field (``depth`` levels of objects)."""
    last = path[-1]
    leaf = selection(field_of(last).type, depth)
    target_type = get_named_type(field_of(last).type).name
    head = f"{'x: ' if alias else ''}{last.field_name}{last.arguments}"
    if fragment and leaf:
        body = f"{head} {{ ...Target }}"
        suffix = f" fragment Target on {target_type} {leaf}"
    else:
        body = f"{head} {leaf}".strip()
        suffix = ""
    for step in reversed(path[:-1]):
        body = f"{step.field_name}{step.arguments} {{ {body} }}"
    return "{ " + body + " }" + suffix
