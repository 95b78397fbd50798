"""Rate limits per token: 429 with Retry-After, refilled as the clock moves (no sleeping)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.settings import Settings
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events

QUERY = "{ viewer { id } }"


@pytest.fixture
def settings(clean_database):
    return Settings(
        database_url=clean_database, rate_limit_per_minute=3, ingest_rate_limit_per_minute=2
    )


def assert_rate_limited(response, retry_after):
    assert response.status_code == 429
    assert response.headers["retry-after"] == str(retry_after)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert "rate_limit_per_minute" in error["message"]


async def test_a_token_over_its_limit_gets_429_until_the_bucket_refills(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    for _ in range(3):
        assert (await graphql(client, tenant.token, QUERY)).status_code == 200
    # Three per minute: one token comes back every 20 seconds.
    assert_rate_limited(await graphql(client, tenant.token, QUERY), 20)
    clock.now += timedelta(seconds=15)
    assert_rate_limited(await graphql(client, tenant.token, QUERY), 5)
    clock.now += timedelta(seconds=5)
    assert (await graphql(client, tenant.token, QUERY)).status_code == 200
    assert_rate_limited(await graphql(client, tenant.token, QUERY), 20)


async def test_limits_are_per_token(client, engine, clock):
    first = await make_tenant(engine, now=clock())
    second = await make_tenant(engine, now=clock())
    for _ in range(3):
        await graphql(client, first.token, QUERY)
    assert (await graphql(client, first.token, QUERY)).status_code == 429
    assert (await graphql(client, second.token, QUERY)).status_code == 200


async def test_rate_limited_requests_are_counted_in_metrics(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    for _ in range(4):
        await graphql(client, tenant.token, QUERY)
    metrics = (await client.get("/metrics")).text
    assert 'creditlens_rate_limited_total{surface="graphql"} 1' in metrics
    assert 'creditlens_graphql_errors_total{code="RATE_LIMITED"} 1' in metrics


async def test_ingestion_has_its_own_limit(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    batch = [event(tenant.slug, clock() - timedelta(hours=1))]
    assert (await post_events(client, token, batch)).json() == {"accepted": 1, "duplicates": 0}
    assert (await post_events(client, token, batch)).json() == {"accepted": 0, "duplicates": 1}
    response = await post_events(client, token, batch)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert response.json()["error"] == "rate_limited"
    assert "ingest_rate_limit_per_minute" in response.json()["message"]
    # The GraphQL budget of a user is untouched by the ingest token's.
    assert (await graphql(client, tenant.token, QUERY)).status_code == 200
    clock.now += timedelta(seconds=30)
    assert (await post_events(client, token, batch)).status_code == 200


class TestCostAware:
    @pytest.fixture
    def settings(self, clean_database):
        return Settings(
            database_url=clean_database,
            rate_limit_per_minute=10,
            rate_limit_cost_aware=True,
            rate_limit_cost_unit=100,
        )

    async def test_a_costly_query_uses_more_of_the_budget(self, client, engine, clock):
        tenant = await make_tenant(engine, now=clock())
        costly = "{ organization { apiKeys(first: 100) { nodes { id name } } } }"  # ~302
        assert (await graphql(client, tenant.token, costly)).status_code == 200  # 4 units
        assert (await graphql(client, tenant.token, costly)).status_code == 200  # 8 units
        assert (await graphql(client, tenant.token, costly)).status_code == 200  # 12: overdrawn
        response = await graphql(client, tenant.token, QUERY)
        assert response.status_code == 429
        # 3 units short of one token at 10 per minute: 18 seconds.
        assert response.headers["retry-after"] == "18"

    async def test_cheap_queries_cost_one_request_each(self, client, engine, clock):
        tenant = await make_tenant(engine, now=clock())
        for _ in range(10):
            assert (await graphql(client, tenant.token, QUERY)).status_code == 200
        assert (await graphql(client, tenant.token, QUERY)).status_code == 429


class TestDisabled:
    @pytest.fixture
    def settings(self, clean_database):
        return Settings(database_url=clean_database, rate_limit_per_minute=0)

    async def test_zero_disables_the_limit(self, client, engine, clock):
        tenant = await make_tenant(engine, now=clock())
        for _ in range(20):
            assert (await graphql(client, tenant.token, QUERY)).status_code == 200
