"""Reused answers equal executed ones, whatever happens between two questions.

A seeded random walk over the things that change answers (batches of events for two
organizations, new keys and users, duplicates, the clock moving across local midnights, a
role taken away and given back) interleaved with the questions a dashboard and a partner
ask. Every question is put to the app as served (answer cache on) and to a second app on
the same database with the cache off: the two answers must be identical, byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from app.main import create_app
from app.settings import Settings
from db.engine import writing
from tests.factories import event, graphql, make_tenant, post_events

ROW = "calls creditsConsumed percentOfTotal"
QUESTIONS = [
    "{ organization { endpointUsage(timeRange: {preset: LAST_7_DAYS}) { endpoint " + ROW + " } } }",
    "{ organization { usage(timeRange: {preset: THIS_MONTH}) { calls creditsConsumed "
    "byApiKey { apiKey { id name } " + ROW + " } previous { calls } change { callsPercent } "
    "series(granularity: DAY) { start calls } } } }",
    "{ organization { usage(timeRange: {preset: TODAY}) { calls "
    "previous(alignment: TO_DATE) { calls } } } }",
    "{ organization { apiKeys(first: 5, includeRevoked: true) { nodes { id lastUsedAt "
    "endpointUsage(timeRange: {preset: LAST_30_DAYS}) { endpoint calls } } } } }",
    '{ organization { usage(timeRange: {start: "2026-05-01T00:00:00Z", '
    'end: "2026-07-01T00:00:00Z"}) { byUser { user { id name } ' + ROW + " } "
    "byOutcome { outcome calls } lastEventAt } } }",
    "{ viewer { name role } organization { name plan timezone } }",
    "{ organization { creditPool { consumed remaining } } }",
]
ZONES = ["UTC", "Asia/Kolkata"]


@pytest.fixture
async def uncached(settings, clock) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(
        Settings(database_url=settings.database_url, answer_cache_bytes=0), clock=clock
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_reused_answers_equal_executed_ones(
    app, client, uncached, engine, ingest, clock, seed
):
    rng = random.Random(seed)
    clock.now = datetime(2026, 6, 14, 20, 0, tzinfo=UTC)
    tenants = [
        await make_tenant(engine, now=clock(), timezone=zone, anchor=clock() - timedelta(days=9))
        for zone in ZONES
    ]
    asked = 0
    for _step in range(70):
        action = rng.random()
        if action < 0.2:
            tenant = rng.choice(tenants)
            batch = [
                event(
                    tenant.slug,
                    clock() - timedelta(minutes=rng.randrange(0, 40 * 24 * 60)),
                    id=f"e-{rng.randrange(400)}",  # some ids repeat: duplicates
                    api_key=rng.choice(["k-1", "k-2", f"k-{rng.randrange(30)}", None]),
                    user=rng.choice(["u-1", f"u-{rng.randrange(20)}", None]),
                    endpoint=rng.choice(["/a", "/b", "/c"]),
                    status=rng.choice([200, 200, 200, 404, 500]),
                    credits=rng.randrange(0, 6),
                )
                for _ in range(rng.randrange(1, 6))
            ]
            assert (await post_events(client, ingest, batch)).status_code == 200
        elif action < 0.3:
            clock.now += timedelta(minutes=rng.choice([7, 90, 6 * 60, 26 * 60]))
        elif action < 0.35:
            tenant = rng.choice(tenants)
            role = rng.choice(["MEMBER", "ADMIN", "ADMIN"])
            async with writing(engine) as conn:
                await conn.execute(
                    text("UPDATE users SET role = :role WHERE id = :id"),
                    {"role": role, "id": tenant.user_id},
                )
        else:
            # A dashboard's burst: a few questions, some asked again.
            for _ in range(rng.randrange(1, 5)):
                tenant = rng.choice(tenants)
                question = rng.choice(QUESTIONS)
                served = await graphql(client, tenant.token, question)
                executed = await graphql(uncached, tenant.token, question)
                assert served.status_code == executed.status_code
                assert served.content == executed.content, question
                asked += 1
    assert asked > 20
    registry = app.state.metrics.registry
    assert registry.get_sample_value("creditlens_answers_total", {"reused": "true"}) > 3
