"""Rate limits through Redis (issue 16): one budget for every worker, and a Redis outage
that degrades to per-worker limits instead of failing requests."""

from __future__ import annotations

import logging

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests.factories import graphql, make_tenant

# The in-process limit's own tests, run again with the buckets in Redis.
from tests.test_rate_limit import (
    test_a_token_over_its_limit_gets_429_until_the_bucket_refills,
    test_ingestion_has_its_own_limit,
    test_limits_are_per_token,
    test_rate_limited_requests_are_counted_in_metrics,
)

__all__ = [
    "test_a_token_over_its_limit_gets_429_until_the_bucket_refills",
    "test_ingestion_has_its_own_limit",
    "test_limits_are_per_token",
    "test_rate_limited_requests_are_counted_in_metrics",
]

QUERY = "{ viewer { id } }"
NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def settings(clean_database, redis_url):
    return Settings(
        database_url=clean_database,
        rate_limit_per_minute=3,
        ingest_rate_limit_per_minute=2,
        redis_url=redis_url,
    )


async def test_two_workers_share_one_budget(client, engine, clock, settings):
    tenant = await make_tenant(engine, now=clock())
    # A second application: its own memory, the same database and Redis. (Two real worker
    # processes: tests/test_workers.py.)
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as second:
            statuses = [
                (await graphql(http, tenant.token, QUERY)).status_code
                for http in (client, second, client, second)
            ]
    # Three per minute in all, not three per worker.
    assert statuses == [200, 200, 200, 429]


async def test_failed_authentications_are_counted_across_workers(clean_database, redis_url, clock):
    settings = Settings(
        database_url=clean_database, auth_failures_per_minute=2, redis_url=redis_url
    )
    first, second = create_app(settings, clock=clock), create_app(settings, clock=clock)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        statuses = []
        for application in (first, second, first):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                statuses.append((await graphql(http, "not-a-token", QUERY)).status_code)
    assert statuses == [401, 401, 429]


async def test_redis_down_limits_per_worker_without_failing_requests(clean_database, clock, caplog):
    settings = Settings(database_url=clean_database, rate_limit_per_minute=3, redis_url=NOWHERE)
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        engine = application.state.engine
        tenant = await make_tenant(engine, now=clock())
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            with caplog.at_level(logging.WARNING, logger="creditlens.redis"):
                statuses = [
                    (await graphql(http, tenant.token, QUERY)).status_code for _ in range(4)
                ]
            metrics = (await http.get("/metrics")).text
    # Answered, and still limited: by this worker's own buckets.
    assert statuses == [200, 200, 200, 429]
    [line] = [r for r in caplog.records if r.name == "creditlens.redis"]
    assert "limiting per worker" in line.getMessage()
    assert 'creditlens_redis_errors_total{operation="rate_limit"} 1.0' in metrics
