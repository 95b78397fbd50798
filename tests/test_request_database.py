"""A request's one connection outlives none of its fields, even when a field fails."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from app.settings import Settings
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events

QUERY = """
{
  organization {
    usage(timeRange: {start: "2026-06-01T00:00:00Z", end: "2026-06-04T00:00:00Z"}) {
      calls
      series(granularity: HOUR) { calls }
      creditsConsumed
      bySource { source calls }
      byEndpoint { endpoint calls }
    }
  }
}
"""


@pytest.fixture
def settings(clean_database: str) -> Settings:
    return Settings(database_url=clean_database, max_series_points=48)


async def test_a_failing_field_beside_readers_answers_cleanly(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    ingest = await make_ingest_token(engine, now=clock())
    at = datetime(2026, 6, 2, tzinfo=UTC)
    events = [event(tenant.slug, at + timedelta(minutes=n)) for n in range(50)]
    assert (await post_events(client, ingest, events)).status_code == 200
    for _ in range(5):
        response = await graphql(client, tenant.token, QUERY)
        assert response.status_code == 200
        body = response.json()
        assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
        assert "48" in body["errors"][0]["message"]
    # Fields still running when the response was made must not leave a connection open:
    # they give it back once they stop (polled, so a loaded machine cannot fail it; a leak
    # never gives it back).
    for _ in range(100):
        if engine.pool.checkedout() == 0:
            break
        await asyncio.sleep(0.1)
    assert engine.pool.checkedout() == 0
    follow_up = await graphql(
        client,
        tenant.token,
        "{ organization { usage(timeRange: {preset: LAST_30_DAYS}) { calls } } }",
    )
    assert follow_up.json() == {"data": {"organization": {"usage": {"calls": 50}}}}
