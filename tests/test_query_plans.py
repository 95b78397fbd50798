"""Known queries run by their plan (``graphql_schema.query_plans``) answer exactly as
graphql-core's executor.

Every document below is asked twice of the same application, once with plans switched
off, and the two answers (data in the same key order, errors with their paths, messages
and codes) must be equal; the plan must have answered where the document is plain, and
never where it is not (directives, a page of keys' batched tables, introspection). A
request the plan declines (an unknown key, a refusal, a value it does not complete) is
answered the usual way. A small schema of its own checks what the real one does not
have: a failing sibling beside a slow one, a null for a non-null field, a list of objects
with resolvers read through one loader batch, unions, and resolvers called in the same
order and the same number of times.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Annotated, Any

import pytest
import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info
from strawberry.types.graphql import OperationType

import graphql_schema.known_operations as known_operations
from graphql_schema.query_plans import PlannedRun, plan_query
from graphql_schema.schema import Schema
from tests.factories import (
    STORAGE,
    add_user,
    answered_both_ways,
    graphql,
    known_schema,
    make_tenant,
    tenant_with_daily_calls,
)

TABLE = "endpoint calls creditsConsumed percentOfTotal"
KEYED = f"""query($key: ID) {{ organization {{
  endpointUsage(timeRange: {{preset: LAST_30_DAYS}}, keyId: $key) {{ {TABLE} }} }} }}"""
REPORT = f"""query {{ organization {{ usage(timeRange: {{preset: LAST_90_DAYS}}) {{ calls
  creditsConsumed byEndpoint {{ {TABLE} }} bySource {{ source calls percentOfTotal }}
  series(granularity: DAY) {{ start end calls creditsConsumed }} previous {{ calls }}
  byApiKey {{ apiKey {{ id name }} calls }} range {{ start end timezone preset }} }} }} }}"""
ORDERED = f"""query {{ __typename org: organization {{ week: endpointUsage(timeRange:
  {{preset: LAST_7_DAYS}}, limit: 1) {{ isOther {TABLE} __typename }} name
  ...F ... on Organization {{ plan }} }} viewer {{ id role }} }}
fragment F on Organization {{ id all: endpointUsage(timeRange: {{preset: LAST_90_DAYS}}) {{
  endpoint }} }}"""
VARIABLES = f"""query($range: TimeRangeInput!, $limit: Int, $key: ID) {{ organization {{
  endpointUsage(timeRange: $range, limit: $limit, keyId: $key) {{ {TABLE} }}
  usage(timeRange: $range, keyId: $key) {{ calls creditsConsumed }} }} }}"""
DIRECTIVE = f"""query($with: Boolean!) {{ organization {{
  endpointUsage(timeRange: {{preset: LAST_30_DAYS}}) @include(if: $with) {{ {TABLE} }} }} }}"""
PAGE = f"""{{ organization {{ apiKeys(first: 5) {{ nodes {{ id
  endpointUsage(timeRange: {{preset: LAST_30_DAYS}}) {{ {TABLE} }} }} }} }} }}"""

# (document, variables, whether the plan answers, whether the answer holds an error)
CASES: list[tuple[str, dict[str, Any], bool, bool]] = [
    (KEYED, {"key": "key-1"}, True, False),
    (KEYED, {}, True, False),
    (KEYED, {"key": "no-such-key"}, False, True),  # NotFound: declined, the usual way says so
    (REPORT, {}, True, False),
    (ORDERED, {}, True, False),
    (VARIABLES, {"range": {"preset": "THIS_MONTH"}, "limit": 2, "key": "key-2"}, True, False),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS", "timezone": "Mars/Base"}}, False, True),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS"}, "limit": 0}, False, True),
    (VARIABLES, {"range": {"preset": "NEVER"}}, False, True),  # a variable that won't coerce
    (DIRECTIVE, {"with": True}, False, False),
    (PAGE, {}, True, False),  # batched tables: one batch per list, as graphql_schema.batching
    ("{ __typename viewer { name } }", {}, True, False),
    ("{ __schema { queryType { name } } }", {}, False, False),  # introspection
]


@pytest.fixture
def planned(monkeypatch):
    """How many requests a plan answered (0: none)."""
    answered = [0]
    run = PlannedRun.run

    async def counting(self: PlannedRun, plan: Any) -> Any:
        data = await run(self, plan)
        answered[0] += 1
        return data

    monkeypatch.setattr(PlannedRun, "run", counting)
    return answered


@pytest.fixture(params=STORAGE)
async def tenant(request, uncached, clock):  # type: ignore[no-untyped-def]
    client, engine = uncached
    tenant = await tenant_with_daily_calls(
        client, engine, request.param, now=clock(), timezone="Asia/Kolkata", days=60, hours_before=3
    )
    return client, engine, tenant


async def _both(client, token, query, variables, monkeypatch):  # type: ignore[no-untyped-def]
    switch = (known_operations, "_plannable", lambda schema: False)
    return await answered_both_ways(client, token, query, variables, monkeypatch, switch)


@pytest.mark.parametrize(("query", "variables", "plans", "failing"), CASES)
async def test_a_plan_answers_as_the_executor_does(
    tenant, query, variables, plans, failing, planned, monkeypatch
):
    client, _, owner = tenant
    for _ in range(2):  # the first request makes the plan, the second reuses it
        with_plan, without = await _both(client, owner.token, query, variables, monkeypatch)
        assert with_plan == without
        # The same keys in the same order: the JSON answer's bytes.
        assert repr(with_plan) == repr(without)
    assert bool(with_plan.get("errors")) is failing, with_plan
    assert planned[0] == (2 if plans else 0)


# Where the objects of a request come from: a cycle among them outlives the request.
OURS = ("app.", "db.", "domain.", "resolvers.", "graphql_schema.", "graphql.", "strawberry.")


@pytest.mark.parametrize("query", [KEYED, REPORT, PAGE], ids=["keyed", "report", "page"])
async def test_a_planned_report_leaves_no_reference_cycles(tenant, query, planned):
    """Everything a planned request made is freed when it ends, by reference counting alone:
    a cycle (a loader holding a bound method of its owner, graphql-core's executor holding
    its own methods) kept the request's context, connection and rows for the garbage
    collector, whose collections then walked them (bench/PROPOSALS.md, R43)."""
    client, _, owner = tenant
    assert (await graphql(client, owner.token, query)).status_code == 200  # the plan is made
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            answer = (await graphql(client, owner.token, query)).json()
            assert "errors" not in answer, answer
        gc.collect()
        left = sorted(
            {
                f"{type(item).__module__}.{type(item).__qualname__}"
                for item in gc.garbage
                if type(item).__module__.startswith(OURS)
            }
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert planned[0] == 4
    assert left == []


@pytest.mark.parametrize("role", ["member", "free"])
async def test_refusals_answer_as_the_executor_does(tenant, clock, role, planned, monkeypatch):
    client, engine, owner = tenant
    if role == "member":
        _, _, token = await add_user(engine, owner, now=clock(), role="MEMBER")
    else:
        token = (await make_tenant(engine, now=clock(), plan="FREE")).token
    with_plan, without = await _both(client, token, REPORT, {}, monkeypatch)
    assert with_plan == without
    code = {"member": "FORBIDDEN", "free": "PLAN_REQUIRED"}[role]
    assert with_plan["errors"][0]["extensions"]["code"] == code
    assert planned[0] == 0


# A small schema: what the real one does not have.
CALLS: list[str] = []


@strawberry.type
class Part:
    n: int

    @strawberry.field
    async def twice(self, info: Info) -> int:
        CALLS.append(f"twice {self.n}")
        return int(await info.context["loader"].load(self.n))


@strawberry.type
class Other:
    m: int


Either = Annotated[Part | Other, strawberry.union("Either")]


@strawberry.type
class SmallQuery:
    @strawberry.field
    def parts(self) -> list[Part]:
        CALLS.append("parts")
        return [Part(n=n) for n in range(4)]

    @strawberry.field
    async def slow(self) -> int:
        await asyncio.sleep(0.01)
        CALLS.append("slow done")
        return 1

    @strawberry.field
    async def failing(self) -> int | None:
        CALLS.append("failing")
        raise ValueError("no")

    @strawberry.field
    def missing(self) -> Part:
        return None  # type: ignore[return-value]

    @strawberry.field
    def maybe(self) -> Part | None:
        return None

    @strawberry.field
    def either(self) -> Either:
        return Other(m=1)

    @strawberry.field
    def numbers(self) -> list[int]:
        return [1, 2]


SMALL: list[tuple[str, bool]] = [
    ("{ parts { n twice } }", True),
    ("{ parts { twice n } slow maybe { n } __typename }", True),
    ("{ a: slow b: slow parts { n } }", True),
    ("{ slow failing }", False),  # a sibling fails beside a slow one: declined
    ("{ failing slow }", False),
    ("{ missing { n } }", False),  # null for a non-null field
    ("{ parts { n } missing { n } }", False),
    ("{ either { ... on Other { m } } }", False),  # a union: not planned
    ("{ numbers }", False),  # a list of leaves: not planned
]


def _small_schema() -> Schema:
    return known_schema(SmallQuery)  # type: ignore[no-any-return]


async def _batched(keys: list[int]) -> list[int]:
    CALLS.append(f"batch {keys}")
    return [2 * key for key in keys]


@pytest.mark.parametrize(("document", "plans"), SMALL)
async def test_a_small_schema_answers_as_the_executor_does(document, plans, planned, monkeypatch):
    schema = _small_schema()
    answers = []
    calls = []
    for plannable in (True, False):
        with monkeypatch.context() as switch:
            if not plannable:
                switch.setattr(known_operations, "_plannable", lambda schema: False)
            CALLS.clear()
            result = await schema.execute(
                document,
                context_value={"loader": DataLoader(_batched)},
                allowed_operation_types={OperationType.QUERY},
            )
        answers.append((repr(result.data), [error.formatted for error in result.errors or []]))
        calls.append(list(CALLS))
    assert answers[0] == answers[1]
    assert planned[0] == (1 if plans else 0)
    if plans:
        # The same resolvers, in the same order, the list's loads in one batch.
        assert calls[0] == calls[1]
    if "failing" in document:
        # Declined, once the slow sibling had finished; then the usual way ran both.
        assert sorted(calls[0][:2]) == ["failing", "slow done"]
        assert sorted(calls[0][2:]) == sorted(calls[1]) == ["failing", "slow done"]


def test_documents_that_are_not_plain_have_no_plan():
    schema = _small_schema()._schema
    from graphql import parse

    assert plan_query(schema, parse("{ parts { n } }"), None) is not None
    for document in (
        "{ parts @skip(if: false) { n } }",
        "query A { slow } query B { slow }",  # two operations and no name
        "mutation { x }",
        "{ either { ... on Part { n } } }",
        "{ numbers }",
        '{ __type(name: "Part") { name } }',
        "query { ...F } fragment F on SmallQuery @deprecated { slow }",
    ):
        assert plan_query(schema, parse(document), None) is None, document
    assert plan_query(schema, parse("query A { slow } query B { parts { n } }"), "B")
