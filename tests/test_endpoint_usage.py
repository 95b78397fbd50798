"""The consumption table, checked against plain Python over the raw events."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tests import oracle
from tests.factories import (
    STORAGE,
    event,
    graphql,
    make_ingest_token,
    make_tenant,
    post_events,
    settle,
)

QUERY = """
query($range: TimeRangeInput!, $key: ID) {
  organization {
    endpointUsage(timeRange: $range, keyId: $key) {
      endpoint calls creditsConsumed percentOfTotal
    }
  }
}
"""
ENDPOINTS = [
    "/v2/person",
    "/v2/company",
    "prospecting/contact/enrich",
    "prospecting/company/search",
]


def random_events(slug: str, rng: random.Random, start: datetime, count: int) -> list[dict]:
    events = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.randrange(40 * 86400))
        events.append(
            event(
                slug,
                at,
                api_key=rng.choice(["key-a", "key-b", None]),
                endpoint=rng.choice(ENDPOINTS),
                credits=rng.choice([0, 1, 1, 2, 5]),
            )
        )
    return events


@pytest.fixture(params=STORAGE)
async def loaded(request, client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    ingest = await make_ingest_token(engine, now=clock())
    rng = random.Random(7)
    events = random_events(tenant.slug, rng, datetime(2026, 5, 1, tzinfo=UTC), 1500)
    response = await post_events(client, ingest, events)
    assert response.status_code == 200, response.text
    await settle(engine, request.param)
    return tenant, events


def expected(events, start, end, key=None):
    rows = oracle.table(oracle.select(events, start, end, key), lambda item: item["endpoint"])
    total = sum(credits for _, _, credits in rows)
    return [
        {
            "endpoint": name,
            "calls": calls,
            "creditsConsumed": credits,
            "percent": 100.0 * credits / total if total else 0.0,
        }
        for name, calls, credits in rows
    ]


def assert_matches(rows, wanted):
    assert [row["endpoint"] for row in rows] == [row["endpoint"] for row in wanted]
    for row, want in zip(rows, wanted, strict=True):
        assert row["calls"] == want["calls"]
        assert row["creditsConsumed"] == want["creditsConsumed"]
        assert row["percentOfTotal"] == pytest.approx(want["percent"], abs=1e-3)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 10, tzinfo=UTC)),
        (datetime(2026, 5, 3, 7, 13, 27, tzinfo=UTC), datetime(2026, 5, 29, 18, 2, 1, tzinfo=UTC)),
        (datetime(2026, 5, 10, 5, 30, tzinfo=UTC), datetime(2026, 5, 10, 6, 15, tzinfo=UTC)),
    ],
    ids=["whole-range", "ragged-edges", "sub-hour"],
)
async def test_endpoint_table_equals_raw_events(client, loaded, start, end):
    tenant, events = loaded
    variables = {"range": {"start": start.isoformat(), "end": end.isoformat()}}
    response = await graphql(client, tenant.token, QUERY, variables)
    body = response.json()
    assert "errors" not in body, body
    assert_matches(body["data"]["organization"]["endpointUsage"], expected(events, start, end))


async def test_key_filter_equals_raw_events_of_that_key(client, loaded):
    tenant, events = loaded
    start, end = datetime(2026, 5, 2, 3, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    variables = {"range": {"start": start.isoformat(), "end": end.isoformat()}, "key": "key-b"}
    body = (await graphql(client, tenant.token, QUERY, variables)).json()
    assert "errors" not in body, body
    rows = body["data"]["organization"]["endpointUsage"]
    assert_matches(rows, expected(events, start, end, "key-b"))
    assert sum(row["percentOfTotal"] for row in rows) == pytest.approx(100.0, abs=0.01)


async def test_empty_range_gives_an_empty_list(client, loaded):
    tenant, _ = loaded
    variables = {"range": {"start": "2025-01-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"}}
    body = (await graphql(client, tenant.token, QUERY, variables)).json()
    assert body == {"data": {"organization": {"endpointUsage": []}}}


async def test_preset_uses_the_organization_time_zone(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), timezone="America/New_York")
    ingest = await make_ingest_token(engine, now=clock())
    # clock: 2026-06-15 12:00 UTC = 08:00 in New York; "today" there began at 04:00 UTC.
    inside = event(tenant.slug, datetime(2026, 6, 15, 4, 0, tzinfo=UTC), credits=3)
    before = event(tenant.slug, datetime(2026, 6, 15, 3, 59, 59, tzinfo=UTC), credits=7)
    assert (await post_events(client, ingest, [inside, before])).status_code == 200
    body = (await graphql(client, tenant.token, QUERY, {"range": {"preset": "TODAY"}})).json()
    rows = body["data"]["organization"]["endpointUsage"]
    assert rows == [
        {"endpoint": "/v2/person", "calls": 1, "creditsConsumed": 3, "percentOfTotal": 100.0}
    ]


async def test_rows_are_ordered_by_credits_then_calls_then_name(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    ingest = await make_ingest_token(engine, now=clock())
    at = datetime(2026, 6, 1, tzinfo=UTC)
    events = [
        event(tenant.slug, at, endpoint="/b", credits=2),
        event(tenant.slug, at, endpoint="/a", credits=1),
        event(tenant.slug, at, endpoint="/a", credits=1),
        event(tenant.slug, at, endpoint="/c", credits=2),
        event(tenant.slug, at, endpoint="/d", credits=0),
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    variables = {"range": {"start": "2026-06-01T00:00:00Z", "end": "2026-06-02T00:00:00Z"}}
    body = (await graphql(client, tenant.token, QUERY, variables)).json()
    names = [row["endpoint"] for row in body["data"]["organization"]["endpointUsage"]]
    assert names == ["/a", "/b", "/c", "/d"]


async def test_counts_beyond_32_bits_are_exact_integers(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    ingest = await make_ingest_token(engine, now=clock())
    at = datetime(2026, 6, 1, tzinfo=UTC)
    big = 900_000_000_000
    events = [event(tenant.slug, at, credits=big), event(tenant.slug, at, credits=big)]
    assert (await post_events(client, ingest, events)).status_code == 200
    variables = {"range": {"start": "2026-06-01T00:00:00Z", "end": "2026-06-02T00:00:00Z"}}
    response = await graphql(client, tenant.token, QUERY, variables)
    assert '"creditsConsumed":1800000000000' in response.text.replace(" ", "")
