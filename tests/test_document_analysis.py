"""Document analysis is linear in the document: each fragment is measured and priced once,
the total work is bounded, and legitimate documents keep the cost they always had."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import httpx
import pytest
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    validate,
)

from app.main import create_app
from app.settings import Settings
from domain.recent import Recent
from graphql_schema.limits.cost import MAX_COST, CostLimits, CostMemo, estimate_cost
from graphql_schema.limits.document import max_depth_rule
from graphql_schema.schema import build_schema
from tests.factories import graphql, make_tenant

# Generous: the fixed analysis takes milliseconds; before the fix the 18-level document
# took about 18 s (depth rule 3.8 s, cost estimate 14.4 s) and each level doubled it.
# Measured as this process's CPU time, not wall time: the bound is on the work done, so a
# machine busy with other jobs (the two test legs run at once) cannot fail it.
BOUND_SECONDS = 2.0


def doubling(levels: int, leaf: str = "viewer { name }", on: str = "Query") -> str:
    """Under 1 KB at 18 levels: each fragment spreads the next one twice, so a walk that
    expands spreads visits the leaf 2**levels times."""
    parts = ["query { ...F0 }"]
    parts += [f"fragment F{i} on {on} {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    parts.append(f"fragment F{levels} on {on} {{ {leaf} }}")
    return "\n".join(parts)


@pytest.fixture
async def admin(engine, clock):
    return await make_tenant(engine, now=clock())


async def timed(coroutine):
    """The result and the CPU seconds this process spent until it came."""
    started = time.process_time()
    result = await coroutine
    return result, time.process_time() - started


async def test_a_document_of_fragments_spread_twice_is_refused_fast(client, admin):
    query = doubling(18)
    assert len(query) < 1_000
    response, seconds = await timed(graphql(client, admin.token, query))
    assert seconds < BOUND_SECONDS
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "max_query_cost"
    # Counted as asked: the leaf 2**18 times, two fields each.
    assert error["extensions"]["actual"] == 2 * 2**18


async def test_a_small_document_of_doubling_fragments_is_answered(client, admin):
    response, seconds = await timed(graphql(client, admin.token, doubling(12)))
    assert seconds < BOUND_SECONDS
    assert response.json() == {"data": {"viewer": {"name": "Viewer"}}}


async def test_a_document_of_hundreds_of_doubling_levels_is_refused_fast(client, admin):
    response, seconds = await timed(graphql(client, admin.token, doubling(150)))
    assert seconds < BOUND_SECONDS
    [error] = response.json()["errors"]
    assert error["extensions"]["limit"] == "max_query_cost"
    # The estimate stops growing at a 64-bit ceiling rather than printing 2**151.
    assert error["extensions"]["actual"] == MAX_COST
    assert "at least" in error["message"]


async def test_healthz_stays_responsive_while_such_documents_arrive(client, admin):
    done = asyncio.Event()
    latencies: list[float] = []

    async def attack():
        try:
            for levels in (16, 17, 18):
                # Let the probe in first: the in-process transport never yields by itself,
                # and a request's path may not either (on SQLite the token is read on the
                # loop's own thread, db/loop_reads.py), so without this the three requests
                # could finish before the probe had asked once.
                await asyncio.sleep(0.01)
                await graphql(client, admin.token, doubling(levels))
        finally:
            done.set()

    async def probe():
        while not done.is_set():
            response, seconds = await timed(client.get("/healthz"))
            assert response.status_code == 200
            latencies.append(seconds)
            await asyncio.sleep(0.01)  # the in-process transport never yields by itself

    _, seconds = await timed(asyncio.gather(attack(), probe()))
    assert seconds < 3 * BOUND_SECONDS
    assert latencies
    assert max(latencies) < BOUND_SECONDS


async def test_depth_through_doubling_fragments_is_measured_once_and_exactly(client, admin):
    deep = "organization { usage(timeRange: {preset: TODAY}) { " + "previous { " * 12
    query = doubling(18, leaf=deep + "calls" + " }" * 14)
    response, seconds = await timed(graphql(client, admin.token, query))
    assert seconds < BOUND_SECONDS
    [error] = response.json()["errors"]
    assert error["extensions"]["limit"] == "max_query_depth"
    assert error["extensions"]["actual"] == 15


def test_the_depth_rule_shares_fragments_between_operations():
    schema = build_schema(Settings())._schema
    document = parse(
        doubling(150).replace("query { ...F0 }", "query A { ...F0 } query B { ...F1 }")
    )
    started = time.process_time()
    assert validate(schema, document, [max_depth_rule(12)]) == []
    assert time.process_time() - started < BOUND_SECONDS


# Documents with fragments a dashboard sends, and their cost as the estimator of the
# starting commit (before memoisation) priced them.
LEGITIMATE = {
    "dashboard": (
        """
        query Dashboard($range: TimeRangeInput!) {
          organization {
            name
            creditPool { ...Pool }
            usage(timeRange: $range) {
              ...Totals
              series(granularity: DAY) { start end ...Bucket }
              previous { ...Totals series(granularity: DAY) { ...Bucket } }
              change { callsPercent creditsPercent }
            }
          }
        }
        fragment Pool on CreditPool {
          consumed allowance remaining burnRatePerDay projectedExhaustionAt
        }
        fragment Totals on UsageReport {
          calls creditsConsumed lastEventAt range { start end timezone }
        }
        fragment Bucket on UsageBucket { calls creditsConsumed }
        """,
        {"range": {"preset": "THIS_MONTH"}},
        299,
    ),
    "keys": (
        """
        query Keys($first: Int!, $range: TimeRangeInput!) {
          organization { apiKeys(first: $first) { totalCount pageInfo { hasNextPage endCursor }
            edges { cursor node { ...Key } } } }
        }
        fragment Key on ApiKey { id name lastUsedAt usage(timeRange: $range) { ...Hourly } }
        fragment Hourly on UsageReport {
          calls series(granularity: HOUR) { start calls creditsConsumed }
        }
        """,
        {"first": 20, "range": {"preset": "TODAY"}},
        4326,
    ),
    "same-fragment-in-two-scopes": (
        """
        { organization { ...Org } viewer { ...Me } }
        fragment Me on Viewer { id name }
        fragment Org on Organization {
          id name
          apiKeys(first: 7) { nodes { ...K } }
          usage(timeRange: {preset: LAST_7_DAYS}) { ...R }
        }
        fragment K on ApiKey {
          id
          usage(timeRange: {start: "2026-06-01T00:00:00Z", end: "2026-06-03T00:00:00Z"}) { ...R }
        }
        fragment R on UsageReport { calls ...S previous { ...S } }
        fragment S on UsageReport { series(granularity: HOUR) { calls } }
        """,
        None,
        4149,
    ),
}


def inlined(document: DocumentNode) -> DocumentNode:
    """The operations of ``document`` with every spread replaced by the fragment's body:
    what the estimate must equal (inline fragments are never memoised)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }

    def expand(selection_set: SelectionSetNode) -> SelectionSetNode:
        selections = []
        for selection in selection_set.selections:
            if isinstance(selection, FragmentSpreadNode):
                fragment = fragments[selection.name.value]
                selection = InlineFragmentNode(
                    type_condition=fragment.type_condition,
                    directives=selection.directives,
                    selection_set=expand(fragment.selection_set),
                )
            elif getattr(selection, "selection_set", None) is not None:
                selection = replace(selection, selection_set=expand(selection.selection_set))
            selections.append(selection)
        return replace(selection_set, selections=tuple(selections))

    operations = [
        replace(d, selection_set=expand(d.selection_set))
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    ]
    return DocumentNode(definitions=tuple(operations))


def price(document, variables, **limits):
    schema = build_schema(Settings())._schema
    return estimate_cost(
        schema,
        document,
        operation_name=None,
        variables=variables,
        limits=CostLimits(max_page_size=100, max_series_points=10_000, **limits),
    )


@pytest.mark.parametrize(
    ("query", "variables", "before"), LEGITIMATE.values(), ids=list(LEGITIMATE)
)
def test_legitimate_fragments_keep_the_cost_they_had(query, variables, before):
    document = parse(query)
    assert validate(build_schema(Settings())._schema, document) == []
    assert price(document, variables) == before
    assert price(inlined(document), variables) == before


def test_pricing_past_the_step_budget_is_refused_naming_the_setting():
    # One report fragment spread in many scopes (each range length is a scope of its own).
    aliases = " ".join(
        f'd{day}: usage(timeRange: {{start: "2026-06-01T00:00:00Z", '
        f'end: "2026-06-{day:02d}T00:00:00Z"}}) {{ ...R }}'
        for day in range(2, 30)
    )
    query = (
        f"{{ organization {{ {aliases} }} }}"
        " fragment R on UsageReport { calls creditsConsumed ...S }"
        " fragment S on UsageReport { lastEventAt change { callsPercent creditsPercent } }"
    )
    document = parse(query)
    generous = price(document, None)
    assert generous > 0
    with pytest.raises(GraphQLError) as refused:
        price(document, None, max_steps=100)
    error = refused.value
    assert error.extensions["code"] == "QUERY_TOO_COMPLEX"
    assert error.extensions["limit"] == "max_analysis_steps"
    assert error.extensions["maximum"] == 100
    assert "max_analysis_steps" in error.message


async def test_the_step_budget_is_a_setting_answered_as_query_too_complex(clean_database, clock):
    application = create_app(
        Settings(database_url=clean_database, max_analysis_steps=100), clock=clock
    )
    async with application.router.lifespan_context(application):
        tenant = await make_tenant(application.state.engine, now=clock())
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            small = await graphql(client, tenant.token, doubling(3))
            assert small.json() == {"data": {"viewer": {"name": "Viewer"}}}
            for _ in range(2):  # the refusal is remembered, and answered the same again
                response = await graphql(client, tenant.token, doubling(120))
                [error] = response.json()["errors"]
                assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
                assert error["extensions"]["limit"] == "max_analysis_steps"


def test_an_estimate_is_remembered_by_the_request_text_and_variables():
    schema = build_schema(Settings())._schema
    memo = CostMemo(maxsize=4)
    limits = CostLimits(max_page_size=100, max_series_points=10_000)
    query = "query($n: Int!) { organization { apiKeys(first: $n) { nodes { id } } } }"

    def ask(document, n):
        return memo.estimate(
            schema,
            document,
            query=query,
            operation_name=None,
            variables={"n": n},
            limits=limits,
        )

    assert ask(parse(query), 5) == 1 + 1 + 5 * 2
    # Same text and variables: the remembered estimate, without walking the document.
    assert ask(parse("{ viewer { name } }"), 5) == 1 + 1 + 5 * 2
    # Other variables: priced again.
    assert ask(parse(query), 7) == 1 + 1 + 7 * 2


def test_the_memo_forgets_the_least_recently_used_first():
    recent: Recent[int] = Recent(2)
    recent.put("a", 1)
    recent.put("b", 2)
    assert recent.get("a") == 1
    recent.put("c", 3)
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (1, None, 3)
