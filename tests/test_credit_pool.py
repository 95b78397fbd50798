"""Organization.creditPool: the cycle, what it consumed (checked against the raw events),
the trailing 7-day burn rate and when the pool runs dry."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tests import oracle
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events

QUERY = """
{
  organization {
    creditPool {
      cycleStart cycleEnd allowance consumed remaining burnRatePerDay projectedExhaustionAt
    }
  }
}
"""


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


async def pool_of(client, token):
    body = (await graphql(client, token, QUERY)).json()
    assert "errors" not in body, body
    return body["data"]["organization"]["creditPool"]


async def test_consumed_is_the_sum_of_the_events_in_the_cycle(client, engine, clock):
    clock.now = utc(2026, 6, 20, 8)
    tenant = await make_tenant(
        engine, now=clock(), timezone="Europe/Berlin", anchor=utc(2026, 1, 14, 23), allowance=5000
    )
    ingest = await make_ingest_token(engine, now=clock())
    rng = random.Random(5)
    events = [
        event(
            tenant.slug,
            utc(2026, 5, 1) + timedelta(seconds=rng.randrange(51 * 86400)),
            credits=rng.choice([0, 1, 2, 7]),
            api_key=rng.choice(["k-1", None]),
        )
        for _ in range(800)
    ]
    # The anchor is 2026-01-15 00:00 in Berlin (CET); cycles start at that wall time, so
    # in summer (CEST) at 22:00 UTC. Events right on the edge:
    edge = utc(2026, 6, 14, 22)
    events += [
        event(tenant.slug, edge - timedelta(microseconds=1), credits=100),
        event(tenant.slug, edge, credits=1000),
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    pool = await pool_of(client, tenant.token)
    start, end = instant(pool["cycleStart"]), instant(pool["cycleEnd"])
    assert (start, end) == (edge, utc(2026, 7, 14, 22))
    _, consumed = oracle.totals(oracle.select(events, start, end))
    assert pool["consumed"] == consumed
    assert pool["allowance"] == 5000
    assert pool["remaining"] == 5000 - consumed
    now = clock()
    _, recent = oracle.totals(oracle.select(events, now - timedelta(days=7), now))
    assert pool["burnRatePerDay"] == pytest.approx(recent / 7, abs=1e-4)


@pytest.mark.parametrize(
    ("anchor", "now", "start", "end"),
    [
        (utc(2026, 1, 31), utc(2026, 2, 15), utc(2026, 1, 31), utc(2026, 2, 28)),
        (utc(2026, 1, 31), utc(2026, 3, 1), utc(2026, 2, 28), utc(2026, 3, 31)),
        (utc(2026, 1, 31), utc(2026, 4, 29, 23), utc(2026, 3, 31), utc(2026, 4, 30)),
        (utc(2026, 1, 31), utc(2026, 4, 30), utc(2026, 4, 30), utc(2026, 5, 31)),
        (utc(2025, 12, 29), utc(2026, 2, 28, 12), utc(2026, 2, 28), utc(2026, 3, 29)),
        (utc(2024, 1, 30), utc(2024, 2, 29, 12), utc(2024, 2, 29), utc(2024, 3, 30)),
    ],
    ids=["31st-in-february", "31st-after-february", "31st-in-april", "on-the-edge", "29th", "leap"],
)
async def test_anchors_on_month_ends_clamp_to_shorter_months(
    client, engine, clock, anchor, now, start, end
):
    clock.now = now
    tenant = await make_tenant(engine, now=now, timezone="UTC", anchor=anchor)
    pool = await pool_of(client, tenant.token)
    assert (instant(pool["cycleStart"]), instant(pool["cycleEnd"])) == (start, end)


async def test_projection_is_null_when_the_pool_lasts_the_cycle(client, engine, clock):
    clock.now = utc(2026, 6, 10, 12)
    tenant = await make_tenant(engine, now=clock(), allowance=10_000, anchor=utc(2026, 1, 1))
    ingest = await make_ingest_token(engine, now=clock())
    # 70 credits over the last 7 days: 10/day; 9,930 left for 20.5 days.
    events = [
        event(tenant.slug, clock() - timedelta(days=day, hours=1), credits=10) for day in range(7)
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    pool = await pool_of(client, tenant.token)
    assert pool["burnRatePerDay"] == pytest.approx(10.0)
    assert pool["projectedExhaustionAt"] is None
    assert pool["remaining"] == 10_000 - 70


async def test_projection_is_when_the_pool_runs_out_at_the_burn_rate(client, engine, clock):
    clock.now = utc(2026, 6, 10, 12)
    tenant = await make_tenant(engine, now=clock(), allowance=1_000, anchor=utc(2026, 1, 1))
    ingest = await make_ingest_token(engine, now=clock())
    # 700 credits in the trailing 7 days (100/day), 800 this cycle: 200 left = 2 days.
    events = [
        event(tenant.slug, clock() - timedelta(days=day, hours=1), credits=100) for day in range(7)
    ]
    events.append(event(tenant.slug, utc(2026, 6, 1, 1), credits=100))  # before the window
    events.append(event(tenant.slug, utc(2026, 5, 31, 23), credits=999))  # previous cycle
    assert (await post_events(client, ingest, events)).status_code == 200
    pool = await pool_of(client, tenant.token)
    assert pool["consumed"] == 800
    assert pool["burnRatePerDay"] == pytest.approx(100.0)
    assert instant(pool["projectedExhaustionAt"]) == utc(2026, 6, 12, 12)


async def test_an_exhausted_pool_reports_now_and_a_negative_remainder(client, engine, clock):
    clock.now = utc(2026, 6, 10, 12)
    tenant = await make_tenant(engine, now=clock(), allowance=50, anchor=utc(2026, 1, 1))
    ingest = await make_ingest_token(engine, now=clock())
    events = [event(tenant.slug, utc(2026, 6, 2), credits=80)]
    assert (await post_events(client, ingest, events)).status_code == 200
    pool = await pool_of(client, tenant.token)
    assert (pool["consumed"], pool["remaining"]) == (80, -30)
    assert instant(pool["projectedExhaustionAt"]) == clock()


async def test_no_spend_gives_a_zero_rate_and_no_projection(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    pool = await pool_of(client, tenant.token)
    assert pool["consumed"] == 0
    assert pool["burnRatePerDay"] == 0
    assert pool["projectedExhaustionAt"] is None
