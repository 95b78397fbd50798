"""Fields called directly (``graphql_schema.direct_fields``) answer exactly as strawberry's
resolver chain.

Every document below is asked twice of the same application, once with the direct calls
switched off, and the two answers (data, errors with their paths, messages and codes) must
be equal: arguments literal and from variables, defaults, aliases and fragments, argument
errors, an unknown key, refusals (a member, a free plan). A small schema of its own checks
what the real one does not have: a permission that reads the object or refuses, a resolver
that raises, a ``Maybe`` argument, an async resolver, another field extension.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import strawberry
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission
from strawberry.types import Info
from strawberry.types.arguments import convert_arguments

import graphql_schema.direct_fields as direct_fields
import graphql_schema.known_operations as known_operations
from domain.presets import Preset
from graphql_schema.direct_fields import DirectExecution, convert, direct_field
from tests.factories import (
    STORAGE,
    add_user,
    answered_both_ways,
    client_and_daily_tenant,
    count_answers,
    graphql,
    make_tenant,
)

TABLE = "endpoint calls creditsConsumed percentOfTotal isOther"
KEYED = f"""
query($key: ID) {{ organization {{ name
  endpointUsage(timeRange: {{preset: LAST_30_DAYS}}, keyId: $key) {{ {TABLE} }} }} }}
"""
MIXED = f"""
query {{ viewer {{ id }} org: organization {{ ...F
  week: endpointUsage(timeRange: {{preset: LAST_7_DAYS}}, limit: 1) {{ {TABLE} }}
  ok: endpointUsage(timeRange: {{preset: LAST_30_DAYS}}, outcomes: [SUCCESS, NO_RESULT]) {{
    endpoint creditsConsumed }}
  usage(timeRange: {{preset: LAST_30_DAYS}}) {{ calls byEndpoint(limit: 2) {{ endpoint }}
    series(granularity: DAY) {{ start calls }} previous(alignment: TO_DATE) {{ calls }} }}
  apiKey(id: "key-1") {{ id name }}
  apiKeys(first: 2) {{ nodes {{ id }} }}
}} }}
fragment F on Organization {{ id plan endpointUsage(timeRange: {{preset: LAST_90_DAYS}}) {{
  endpoint }} }}
"""
VARIABLES = f"""
query($range: TimeRangeInput!, $limit: Int, $outcomes: [CallOutcome!], $key: ID) {{
  organization {{
    endpointUsage(timeRange: $range, limit: $limit, outcomes: $outcomes, keyId: $key) {{
      {TABLE} }}
    usage(timeRange: $range, keyId: $key, outcomes: $outcomes) {{ calls creditsConsumed }}
  }} }}
"""
# (document, variables, whether the answer holds an error)
CASES: list[tuple[str, dict[str, Any], bool]] = [
    (KEYED, {"key": "key-1"}, False),
    (KEYED, {}, False),
    (KEYED, {"key": "no-such-key"}, True),
    (MIXED, {}, False),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS"}, "limit": 2, "key": "key-2"}, False),
    (VARIABLES, {"range": {"preset": "THIS_MONTH"}, "outcomes": ["SUCCESS"]}, False),
    (
        VARIABLES,
        {"range": {"start": "2026-01-01T00:00:00+05:30", "timezone": "Asia/Kolkata"}},
        True,
    ),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS", "timezone": "Mars/Base"}}, True),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS"}, "limit": 0}, True),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS"}, "outcomes": []}, True),
]


# strawberry's resolver chain for every field: no direct call, and no document plan (which
# keeps the direct plans it was made with: graphql_schema.query_plans).
STRAWBERRY_CHAIN = [
    (direct_fields, "direct_field", lambda *args: None),
    (known_operations, "_plannable", lambda schema: False),
]


@pytest.fixture
def direct_calls(monkeypatch):
    """How many fields were called directly (0: the direct path was not taken)."""
    return count_answers(monkeypatch, DirectExecution, "_direct_arguments")


async def _both(client, token, query, variables, monkeypatch):  # type: ignore[no-untyped-def]
    """The answer with the direct path, then without it."""
    return await answered_both_ways(client, token, query, variables, monkeypatch, *STRAWBERRY_CHAIN)


@pytest.fixture(params=STORAGE)
async def tenant(request, uncached, clock):  # type: ignore[no-untyped-def]
    return await client_and_daily_tenant(
        uncached, request.param, now=clock(), timezone="Europe/Berlin", days=40, hours_before=1
    )


@pytest.mark.parametrize(("query", "variables", "failing"), CASES)
async def test_fields_called_directly_answer_as_strawberry_does(
    tenant, query, variables, failing, direct_calls, monkeypatch
):
    client, owner = tenant
    direct, ordinary = await _both(client, owner.token, query, variables, monkeypatch)
    assert direct == ordinary
    assert bool(direct.get("errors")) is failing, direct
    assert direct_calls[0] > 0


# One document asked again and again: its literal arguments are coerced once and kept
# with it (R34), its variables coerced per request.
AGAIN: list[tuple[str, dict[str, Any]]] = [
    (KEYED, {"key": "key-1"}),
    (KEYED, {"key": "key-2"}),
    (KEYED, {}),
    (KEYED, {"key": "no-such-key"}),
    (KEYED, {"key": "key-1"}),
    (MIXED, {}),
    (MIXED, {}),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS"}, "limit": 2, "key": "key-2"}),
    (VARIABLES, {"range": {"preset": "THIS_MONTH"}, "outcomes": ["SUCCESS"]}),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS"}, "limit": 0}),
    (VARIABLES, {"range": {"preset": "LAST_7_DAYS"}}),
]


async def test_a_document_asked_again_answers_as_strawberry_does(tenant, monkeypatch):
    client, owner = tenant
    kept = [(await graphql(client, owner.token, q, v)).json() for q, v in AGAIN]
    with monkeypatch.context() as off:
        for module, attribute, value in STRAWBERRY_CHAIN:
            off.setattr(module, attribute, value)
        ordinary = [(await graphql(client, owner.token, q, v)).json() for q, v in AGAIN]
    assert kept == ordinary
    # The cases differ: a kept value standing in for a variable would make them equal.
    assert kept[0] != kept[1] != kept[2]
    assert "errors" in kept[3]
    assert "errors" not in kept[4]
    assert len({str(answer) for answer in kept[7:]}) == 4


def test_kept_argument_values_are_handed_out_as_copies():
    value = {"range": {"preset": Preset.LAST_30_DAYS, "days": [1, 2]}, "limit": None, "n": 2.5}
    copied = direct_fields._copy(value)
    assert copied == value
    assert copied is not value
    assert copied["range"] is not value["range"]
    assert copied["range"]["days"] is not value["range"]["days"]
    # Anything that could be changed in place is not shared at all.
    assert direct_fields._copy({"range": {"tags": {"a"}}}) is direct_fields._UNKNOWN
    assert direct_fields._copy([object()]) is direct_fields._UNKNOWN


@pytest.mark.parametrize(("plan", "role"), [("PRO", "MEMBER"), ("FREE", "ADMIN")])
async def test_refusals_answer_as_strawberry_does(uncached, clock, plan, role, monkeypatch):
    client, engine = uncached
    owner = await make_tenant(engine, now=clock(), plan=plan, role=role)
    _, _, other = await add_user(engine, owner, role=role, now=clock())
    for token in (owner.token, other):
        for query in (KEYED, MIXED):
            direct, ordinary = await _both(client, token, query, {}, monkeypatch)
            assert direct == ordinary
            assert direct["errors"]
            named = direct["data"]["organization"]["name"] if query is KEYED else None
            assert named or direct["data"]["org"]["plan"]


def test_arguments_convert_as_strawberry_converts(app_schema):
    """Every argument of every field the direct path takes, with values of each shape."""
    strawberry_schema = app_schema
    schema = strawberry_schema._schema
    checked = 0
    for type_ in schema.type_map.values():
        for field in getattr(type_, "fields", {}).values():
            if not hasattr(field, "args"):
                continue
            # Every field of strawberry's own kind converts this way: the direct path's,
            # and the batched fields' once per list (async resolvers included).
            conversion = direct_fields.conversion_of(schema, field)
            if conversion is None or not field.args:
                continue
            plan = direct_field(schema, field)
            assert plan is None or plan.conversion == conversion
            definition = field.extensions[direct_fields.DEFINITION]
            samples: dict[str, Any] = {}
            for name, argument in field.args.items():
                samples[name] = _sample(argument.type)
            for values in ({}, samples, dict.fromkeys(samples)):
                expected = convert_arguments(
                    values,
                    definition.arguments,
                    scalar_registry=strawberry_schema.schema_converter.scalar_registry,
                    config=strawberry_schema.config,
                    info=None,
                )
                assert convert(conversion, values, None) == expected
                checked += 1
    assert checked >= 3 * 8  # endpointUsage, usage, apiKey, apiKeys and more


def _sample(type_: Any) -> Any:
    from graphql import (
        GraphQLEnumType,
        GraphQLInputObjectType,
        GraphQLList,
        GraphQLNonNull,
        GraphQLScalarType,
    )

    if isinstance(type_, GraphQLNonNull):
        return _sample(type_.of_type)
    if isinstance(type_, GraphQLList):
        return [_sample(type_.of_type)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values.values())).value
    if isinstance(type_, GraphQLInputObjectType):
        return {name: _sample(field.type) for name, field in type_.fields.items()}
    assert isinstance(type_, GraphQLScalarType)
    return {"Int": 3, "Float": 1.5, "Boolean": True}.get(type_.name, "x")


@pytest.fixture
def app_schema():  # type: ignore[no-untyped-def]
    from app.settings import Settings
    from graphql_schema.schema import build_schema

    return build_schema(Settings())


# --- A schema of its own: what the real one does not have ---


class Allowed(BasePermission):
    message = "not allowed"
    source_free: ClassVar[bool] = True

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context["allowed"]) and kwargs.get("times", 1) != 13


class ReadsObject(BasePermission):
    """Not source_free: such a field keeps strawberry's chain."""

    message = "even"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return source.n % 2 == 1


class Doubling(FieldExtension):
    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs) * 2


CALLS: list[str] = []


@strawberry.input
class Span:
    low: int = 0
    high: int | None = None


@strawberry.type
class Item:
    n: int

    @strawberry.field(permission_classes=[Allowed])
    def times(self, info: Info, times: int = 1, span: Span | None = None) -> int | None:
        CALLS.append("times")
        if times < 0:
            raise ValueError(f"times {times} for {self.n}")
        return self.n * times + (0 if span is None else span.low)

    @strawberry.field(permission_classes=[Allowed, ReadsObject])
    def odd(self) -> int | None:
        CALLS.append("odd")
        return self.n

    @strawberry.field(extensions=[Doubling()])
    def doubled(self) -> int:
        return self.n

    @strawberry.field
    async def later(self, by: int = 1) -> int:
        return self.n + by

    @strawberry.field
    def maybe(self, value: strawberry.Maybe[int | None] = None) -> str:
        return repr(value)


@strawberry.type
class SmallQuery:
    @strawberry.field
    def items(self, first: int = 3) -> list[Item]:
        return [Item(n=n) for n in range(first)]


SMALL = [
    "{ items { n times } }",
    "query($t: Int!) { items(first: 4) { a: times(times: $t) b: times(times: -1) } }",
    "{ items { times(span: {low: 5}) t13: times(times: 13) } }",
    "{ items { odd } }",
    "{ items { doubled later(by: 2) } }",
    "{ items { maybe m1: maybe(value: null) m2: maybe(value: 4) } }",
    "query($s: Span) { items { times(span: $s) } }",
]


@pytest.mark.parametrize("document", SMALL)
@pytest.mark.parametrize("allowed", [True, False], ids=["allowed", "refused"])
async def test_a_small_schema_answers_as_strawberry_does(document, allowed):
    ordinary = strawberry.Schema(query=SmallQuery)
    direct = strawberry.Schema(query=SmallQuery, execution_context_class=DirectExecution)
    context = {"allowed": allowed}
    variables = {"t": 3, "s": {"low": 2, "high": None}}
    CALLS.clear()
    expected = await ordinary.execute(document, variable_values=variables, context_value=context)
    expected_calls = list(CALLS)
    CALLS.clear()
    got = await direct.execute(document, variable_values=variables, context_value=context)
    assert got.data == expected.data
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    assert expected_calls == CALLS  # each resolver called once, whichever path took it


def test_only_plain_fields_are_called_directly():
    schema = strawberry.Schema(query=SmallQuery, execution_context_class=DirectExecution)
    item = schema._schema.type_map["Item"].fields
    assert direct_field(schema._schema, item["times"]) is not None
    assert direct_field(schema._schema, schema._schema.query_type.fields["items"]) is not None
    for name in ("odd", "doubled", "later", "n"):
        assert direct_field(schema._schema, item[name]) is None, name
