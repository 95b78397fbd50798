"""Query limits: depth, aliases, tokens, cost, body size and batching, each a setting."""

from __future__ import annotations

import pytest
from graphql import parse
from strawberry.extensions import SchemaExtension

from app.settings import Settings
from graphql_schema.limits.cost import CostLimits, estimate_cost
from graphql_schema.schema import build_schema
from tests.factories import graphql, make_tenant

LIMITS = {
    "max_query_depth": 6,
    "max_aliases": 3,
    "max_tokens": 200,
    "max_query_cost": 5_000,
    "max_body_bytes": 4_096,
}


@pytest.fixture
def settings(clean_database):
    return Settings(database_url=clean_database, **LIMITS)


@pytest.fixture
async def admin(engine, clock):
    return await make_tenant(engine, now=clock())


def refusal(response, setting):
    """The one QUERY_TOO_COMPLEX error, which names its setting; no data entry."""
    body = response.json()
    assert "data" not in body or body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == setting
    assert setting in error["message"]
    return error


DEEP = "{ organization { usage(timeRange: {preset: TODAY}) { previous { previous { %s } } } } }"


async def test_depth_at_the_limit_runs(client, admin):
    query = DEEP % "previous { calls }"  # 6 levels of fields
    response = await graphql(client, admin.token, query)
    assert response.status_code == 200
    assert "errors" not in response.json()


async def test_deeper_than_the_limit_is_refused_before_any_resolver(client, admin):
    query = DEEP % "previous { previous { calls } }"
    error = refusal(await graphql(client, admin.token, query), "max_query_depth")
    assert error["extensions"]["actual"] == 7
    assert error["extensions"]["maximum"] == 6


async def test_depth_counts_through_fragments(client, admin):
    query = (
        "{ organization { usage(timeRange: {preset: TODAY}) { ...P } } }"
        " fragment P on UsageReport { previous { previous { previous { previous { calls } } } } }"
    )
    refusal(await graphql(client, admin.token, query), "max_query_depth")


async def test_aliases_over_the_limit_are_refused(client, admin):
    ok = await graphql(
        client, admin.token, "{ a: viewer { name } b: viewer { name } c: viewer { id } }"
    )
    assert ok.json()["data"]["c"]["id"]
    query = "{ a: viewer { name } b: viewer { name } c: viewer { id } d: viewer { id } }"
    error = refusal(await graphql(client, admin.token, query), "max_aliases")
    assert error["extensions"]["actual"] == 4


async def test_too_many_tokens_are_refused_before_parsing(client, admin):
    query = "{ viewer { " + "name " * 300 + "} }"
    refusal(await graphql(client, admin.token, query), "max_tokens")


async def test_a_long_query_with_few_tokens_passes_the_token_limit(client, admin):
    query = "{ viewer { name } }" + " " * 1_000 + "# " + "x" * 1_000
    response = await graphql(client, admin.token, query)
    assert response.json() == {"data": {"viewer": {"name": "Viewer"}}}


COSTLY = """
query Keys($first: Int!, $range: TimeRangeInput!) {
  organization { apiKeys(first: $first) { nodes { usage(timeRange: $range) {
    series(granularity: HOUR) { start calls }
  } } } }
}"""


async def test_cost_over_the_limit_is_refused(client, admin):
    variables = {"first": 100, "range": {"preset": "LAST_30_DAYS"}}
    error = refusal(await graphql(client, admin.token, COSTLY, variables), "max_query_cost")
    assert error["extensions"]["actual"] > LIMITS["max_query_cost"]


async def test_cost_follows_the_variables(client, admin):
    variables = {"first": 2, "range": {"preset": "TODAY"}}
    response = await graphql(client, admin.token, COSTLY, variables)
    assert response.json() == {"data": {"organization": {"apiKeys": {"nodes": []}}}}


async def test_an_explicit_range_is_priced_by_its_length(client, admin):
    variables = {
        "first": 10,
        "range": {"start": "2026-06-01T00:00:00Z", "end": "2026-06-03T00:00:00Z"},
    }
    assert "errors" not in (await graphql(client, admin.token, COSTLY, variables)).json()
    variables["range"]["end"] = "2026-09-01T00:00:00Z"
    refusal(await graphql(client, admin.token, COSTLY, variables), "max_query_cost")


def cost(query, variables=None, *, page=100, points=10_000):
    schema = build_schema(Settings())._schema
    limits = CostLimits(max_page_size=page, max_series_points=points)
    return estimate_cost(
        schema, parse(query), operation_name=None, variables=variables, limits=limits
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ viewer { name } }", 2),
        ("{ organization { apiKeys(first: 5) { nodes { id name } } } }", 1 + 1 + 5 * 3),
        ("{ organization { apiKeys { totalCount } } }", 3),
        # Breakdowns count a full page (their default limit) and the row summing the rest;
        # nested lists multiply.
        (
            "{ organization { endpointUsage(timeRange: {preset: TODAY}) { endpoint } } }",
            1 + (100 + 1) * 2,
        ),
        (
            "{ organization { apiKeys(first: 3) { edges { node { usage(timeRange: {preset: "
            "TODAY}) { byEndpoint { calls } } } } } } }",
            1 + 1 + 3 * (1 + 1 + (1 + ((100 + 1) * 2))),
        ),
        # A day has at most 25 hours, so at most 25 / 0.5 + 2 hourly points are estimated.
        (
            "{ organization { usage(timeRange: {preset: TODAY}) { series(granularity: DAY) "
            "{ calls } } } }",
            1 + 1 + 3 * 2,
        ),
        # Introspection is free (bounded by the schema).
        ("{ __schema { types { name fields { name } } } }", 0),
    ],
    ids=["scalar", "page", "total", "unpaginated-list", "nested-lists", "series", "introspection"],
)
def test_cost_estimates(query, expected):
    assert cost(query) == expected


def test_a_series_without_a_known_range_is_priced_at_the_maximum_points():
    query = (
        "query($r: TimeRangeInput!) { organization { usage(timeRange: $r) "
        "{ series(granularity: MONTH) { calls } } } }"
    )
    assert cost(query, {"r": {"start": "not a date", "end": "2026-01-01T00:00:00Z"}}) == (
        1 + 1 + 10_000 * 2
    )
    assert cost(query, {"r": {"preset": "LAST_90_DAYS"}}) == 1 + 1 + (3 + 2) * 2


def test_aliases_and_fragments_cost_each_time_they_are_asked():
    once = cost("{ organization { apiKeys(first: 10) { nodes { name } } } }")
    twice = cost(
        "{ organization { a: apiKeys(first: 10) { ...N } b: apiKeys(first: 10) { ...N } } }"
        " fragment N on ApiKeyConnection { nodes { name } }"
    )
    assert twice == 2 * once - 1


async def test_body_over_the_cap_is_413_with_a_graphql_body(client, admin):
    query = "{ viewer { name } }" + " " * 5_000
    response = await graphql(client, admin.token, query)
    assert response.status_code == 413
    refusal(response, "max_body_bytes")


async def test_body_over_the_cap_without_a_declared_length_is_413(client, admin):
    async def chunks():
        yield b'{"query": "{ viewer { name } }", "pad": "'
        for _ in range(10):
            yield b"x" * 1_000
        yield b'"}'

    response = await client.post(
        "/graphql",
        content=chunks(),
        headers={"Authorization": f"Bearer {admin.token}", "content-type": "application/json"},
    )
    assert response.status_code == 413
    refusal(response, "max_body_bytes")


async def test_batches_are_refused_when_batching_is_off(client, admin):
    response = await client.post(
        "/graphql",
        json=[{"query": "{ viewer { name } }"}, {"query": "{ viewer { role } }"}],
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert response.status_code == 400
    refusal(response, "batching")


def test_extensions_are_classes_or_factories_never_shared_instances():
    schema = build_schema(Settings())
    assert schema.extensions
    for extension in schema.extensions:
        assert not isinstance(extension, SchemaExtension)
    first = [type(e) for e in schema.get_extensions()]
    instances = schema.get_extensions()
    assert [type(e) for e in instances] == first
    assert not set(map(id, instances)) & set(map(id, schema.get_extensions()))


class TestBatchingOn:
    @pytest.fixture
    def settings(self, clean_database):
        return Settings(database_url=clean_database, batching=True, max_batch_operations=2)

    async def test_a_batch_answers_each_operation(self, client, admin):
        response = await client.post(
            "/graphql",
            json=[{"query": "{ viewer { name } }"}, {"query": "{ nope }"}],
            headers={"Authorization": f"Bearer {admin.token}"},
        )
        assert response.status_code == 200
        first, second = response.json()
        assert first == {"data": {"viewer": {"name": "Viewer"}}}
        assert second["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    async def test_a_batch_over_the_cap_is_refused(self, client, admin):
        response = await client.post(
            "/graphql",
            json=[{"query": "{ viewer { name } }"}] * 3,
            headers={"Authorization": f"Bearer {admin.token}"},
        )
        assert response.status_code == 400
        refusal(response, "max_batch_operations")
