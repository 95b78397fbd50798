"""Known queries (``graphql_schema.known_operations``) answer exactly as strawberry's path.

Every document below is executed by one schema three times: the short way twice (the first
time learns the query, the second uses what it learnt) and once with the short way switched
off. The results (data, errors with messages, paths, locations and codes, extensions), an
exception raised instead of a result, and what the request's context recorded (operation
names, cost) must be the same. The cache holds documents only: who asks, and what they may
see, is decided by the execution each time (the HTTP tests below: an admin's query asked
again by a member, a plan downgraded, variables priced above the limit).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql.validation import NoSchemaIntrospectionCustomRule
from sqlalchemy import update
from strawberry.types.graphql import OperationType

from app.settings import Settings
from db.tables import organizations
from domain.clock import system_clock
from domain.plans import Plan
from domain.records import OrganizationRecord, UserRecord
from domain.roles import Role
from graphql_schema.known_operations import PLAN_KEY, KnownOperations
from graphql_schema.query_plans import QueryPlan
from graphql_schema.schema import Schema, build_schema
from resolvers.context import Context, Limits
from tests.factories import add_user, event, graphql, make_ingest_token, make_tenant, post_events

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
ORGANIZATION = OrganizationRecord(7, "acme", "Acme", Plan.PRO, "UTC", 1_000, NOW, NOW, None)
ADMIN = UserRecord(3, 7, "admin-1", "Ada", None, Role.ADMIN, NOW)
MEMBER = replace(ADMIN, role=Role.MEMBER)

TWO = "query A { viewer { id } } query B { organization { name } }"
DEEP = (
    "{ organization { usage(timeRange: {preset: TODAY}) "
    + "{ previous " * 12
    + "{ calls }"
    + " }" * 14
)
ALIASES = "{ " + " ".join(f"a{n}: viewer {{ id }}" for n in range(40)) + " }"
PAGE = "query($n: Int!) { organization { apiKeys(first: $n) { nodes { id name } } } }"
REPORT = "{ organization { endpointUsage(timeRange: {preset: LAST_30_DAYS}) { endpoint } } }"
# 100 keys x 90 days = 9,000 points by day; by hour 216,000, above max_query_cost (50,000).
SERIES = """query($g: Granularity!) { organization { apiKeys(first: 100) { nodes {
  usage(timeRange: {preset: LAST_90_DAYS}) { series(granularity: $g) { calls } } } } } }"""
Q = {OperationType.QUERY}
QM = {OperationType.QUERY, OperationType.MUTATION}

# (document, variables, operation name, the viewer, the operation types allowed, whether it
# takes the short way: "intro" only where introspection is allowed)
CASES: list[tuple[str, dict[str, Any] | None, str | None, UserRecord, set[OperationType], Any]] = [
    ("{ viewer { id name role } }", None, None, ADMIN, Q, True),
    ("query Who { viewer { id } __typename }", {}, None, ADMIN, Q, True),
    ("query Who { viewer { id } }", None, "Who", ADMIN, Q, True),
    (TWO, None, "B", ADMIN, Q, True),
    (TWO, None, None, ADMIN, Q, True),  # strawberry runs the first: A
    (TWO, None, "C", ADMIN, Q, False),  # no such operation
    ("{ organization { name creditPool { consumed } } }", None, None, MEMBER, Q, True),
    (REPORT, None, None, ADMIN, Q, True),  # the resolver fails: masked, logged
    (REPORT, None, None, MEMBER, Q, True),  # refused before it runs
    (PAGE, {"n": 5}, None, MEMBER, Q, True),
    (PAGE, {"n": "five"}, None, ADMIN, Q, True),  # a bad variable: graphql-core says so
    (PAGE, {}, None, ADMIN, Q, True),  # a missing variable
    (SERIES, {"g": "DAY"}, None, ADMIN, Q, True),
    (SERIES, {"g": "HOUR"}, None, ADMIN, Q, False),  # priced above the limit
    ("{ viewer { id } ", None, None, ADMIN, Q, False),  # syntax error
    ("{ viewer { idd } }", None, None, ADMIN, Q, False),  # unknown field
    (DEEP, None, None, ADMIN, Q, False),
    (ALIASES, None, None, ADMIN, Q, False),
    ("{ viewer { id } }" + " " * 3_000, None, None, ADMIN, Q, False),  # longer than max_tokens
    ("{" + " viewer { id }" * 600 + " }", None, None, ADMIN, Q, False),  # too many tokens
    ("{ __schema { queryType { name } } }", None, None, ADMIN, Q, "intro"),
    ("mutation { __typename }", None, None, ADMIN, Q, False),
    ("mutation { __typename }", None, None, ADMIN, QM, False),  # mutations: the usual way
    ("", None, None, ADMIN, Q, False),
]


def _context(viewer: UserRecord) -> Context:
    # No database: a resolver that needs one fails, which shows how failures are coded.
    return Context(
        db=None,  # type: ignore[arg-type]
        clock=system_clock,
        viewer=viewer,
        organization=ORGANIZATION,
        limits=Limits(max_page_size=100, max_series_points=1_000),
        request_id="req-1",
    )


async def _outcome(schema: Schema, case: tuple[Any, ...]) -> tuple[Any, ...]:
    query, variables, operation_name, viewer, allowed, _ = case
    context = _context(viewer)
    try:
        result = await schema.execute(
            query,
            variable_values=variables,
            context_value=context,
            operation_name=operation_name,
            allowed_operation_types=allowed,
        )
    except Exception as error:
        return ("raised", type(error), str(error), context.operation_names, context.query_cost)
    errors = None if result.errors is None else [error.formatted for error in result.errors]
    return (
        type(result),
        result.data,
        errors,
        result.extensions,
        context.operation_names,
        context.query_cost,
    )


@pytest.fixture(params=[True, False], ids=["introspection", "no-introspection"])
def schema(request) -> Schema:  # type: ignore[no-untyped-def]
    built = build_schema(
        Settings(introspection=request.param, field_suggestions=request.param, max_tokens=2_000)
    )
    assert isinstance(built, Schema)
    assert built.known_operations is not None
    return built


@pytest.mark.parametrize("case", CASES, ids=[str(n) for n in range(len(CASES))])
async def test_a_known_query_answers_as_strawberry_does(schema, case, caplog):
    known = schema.known_operations
    first = await _outcome(schema, case)
    second = await _outcome(schema, case)
    schema.known_operations = None
    try:
        ordinary = await _outcome(schema, case)
    finally:
        schema.known_operations = known
    assert first == ordinary
    assert second == ordinary


@pytest.fixture
def short_way(monkeypatch):  # type: ignore[no-untyped-def]
    """How many requests took the short way."""
    taken = [0]
    execute = KnownOperations.execute

    async def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = await execute(self, *args, **kwargs)
        taken[0] += result is not None
        return result

    monkeypatch.setattr(KnownOperations, "execute", counting)
    return taken


@pytest.mark.parametrize("case", CASES, ids=[str(n) for n in range(len(CASES))])
async def test_only_queries_every_check_passes_take_the_short_way(schema, case, short_way):
    expected = case[-1] is True or (
        case[-1] == "intro"
        and schema.known_operations.rules[-1] is not NoSchemaIntrospectionCustomRule
    )
    await _outcome(schema, case)
    await _outcome(schema, case)
    assert short_way[0] == (2 if expected else 0)


# --- Over HTTP, on the real database: the cache holds documents, never who may see what ---


async def test_a_known_query_is_still_checked_for_each_viewer(uncached, clock, short_way):
    client, engine = uncached
    tenant = await make_tenant(engine, now=clock())
    _, _, member = await add_user(engine, tenant, role="MEMBER", now=clock())
    other = await make_tenant(engine, now=clock())
    admin = (await graphql(client, tenant.token, REPORT)).json()
    assert admin == {"data": {"organization": {"endpointUsage": []}}}
    refused = (await graphql(client, member, REPORT)).json()
    assert refused["data"] == {"organization": {"endpointUsage": None}}
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    name = "{ organization { name } }"
    for who in (tenant, other, tenant):
        answer = (await graphql(client, who.token, name)).json()
        assert answer == {"data": {"organization": {"name": who.slug.title()}}}
    async with engine.begin() as connection:
        await connection.execute(
            update(organizations)
            .where(organizations.c.id == tenant.organization_id)
            .values(plan="FREE")
        )
    downgraded = (await graphql(client, tenant.token, REPORT)).json()
    assert downgraded["errors"][0]["extensions"]["code"] == "PLAN_REQUIRED"
    assert short_way[0] == 6  # every request above


# --- Rows planned once per document (graphql_schema.execution, R32) ---

ROWS = """query($with: Boolean!) { organization {
  endpointUsage(timeRange: {preset: LAST_30_DAYS}) {
    endpoint calls @include(if: $with) credits: creditsConsumed @skip(if: $with) isOther } } }"""


async def _declines(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    return None


async def test_rows_planned_with_the_document_answer_as_strawberry_does(
    uncached, clock, short_way, monkeypatch
):
    client, engine = uncached
    tenant = await make_tenant(engine, now=clock())
    ingest = await make_ingest_token(engine, now=clock())
    events = [
        event(tenant.slug, clock() - timedelta(hours=hour), endpoint=f"/e{hour % 3}", credits=hour)
        for hour in range(1, 9)
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    asked = [True, False, True, False]
    known = [(await graphql(client, tenant.token, ROWS, {"with": w})).json() for w in asked]
    with monkeypatch.context() as off:
        off.setattr(KnownOperations, "execute", _declines)
        ordinary = [(await graphql(client, tenant.token, ROWS, {"with": w})).json() for w in asked]
    assert known == ordinary
    assert known[0] != known[1]  # two shapes of rows, each planned for itself
    assert short_way[0] == 4


async def test_a_document_keeps_only_plans_of_its_rows(schema):
    query = "{ viewer { id name role } v2: viewer { name } }"
    case = (query, None, None, ADMIN, Q, True)
    await _outcome(schema, case)
    await _outcome(schema, case)
    known = schema.known_operations.recent.get((query, None))
    assert known is not None
    assert known.memo  # the viewer's rows were planned once, for both requests
    for shape, plan in known.memo.items():
        if shape == PLAN_KEY:  # the document's plan: types, fields and nodes, no value
            assert isinstance(plan, QueryPlan)
            continue
        assert shape[0] == "rows"
        assert isinstance(plan, tuple)
        assert all(isinstance(step[0], str) for step in plan)  # names and resolvers only


async def test_a_document_keeps_only_literal_arguments(schema):
    query = (
        "query($k: ID) { organization { endpointUsage(timeRange: {preset: LAST_7_DAYS}, "
        "keyId: $k) { endpoint } } }"
    )
    for key in ("a", "b"):
        await _outcome(schema, (query, {"k": key}, None, ADMIN, Q, True))
    known = schema.known_operations.recent.get((query, None))
    assert known is not None
    kept = {shape: value for shape, value in known.memo.items() if shape[0] == "arguments"}
    assert kept  # the organization's and the table's arguments
    for _, (_, plan) in kept.items():
        if plan is None:
            continue
        constant, per_request = plan
        # The literal and the defaults, never a variable's value.
        assert "a" not in constant.values()
        assert "b" not in constant.values()
        assert all(name == "keyId" for name, *_ in per_request)
