"""``previous(alignment: TO_DATE)`` and ``change(alignment: TO_DATE)`` over GraphQL, against
the raw events cut by hand at the same elapsed local wall time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests import oracle
from tests.factories import event, make_tenant, post_events
from tests.reports.queries import ask, instant, utc

QUERY = """
query($preset: TimeRangePreset!) {
  organization {
    usage(timeRange: {preset: $preset}) {
      calls creditsConsumed
      full: previous { range { start end } calls creditsConsumed }
      toDate: previous(alignment: TO_DATE) { range { start end } calls creditsConsumed }
      fullChange: change { creditsPercent }
      toDateChange: change(alignment: TO_DATE) { callsPercent creditsPercent }
    }
  }
}
"""

CASES = {
    # Monday 09:00 CEST, the day after Berlin's spring change, against Monday 09:00 CET.
    "berlin-week-after-spring": (
        "Europe/Berlin",
        "THIS_WEEK",
        utc(2026, 3, 30, 7),
        (utc(2026, 3, 29, 22), utc(2026, 4, 5, 22)),
        (utc(2026, 3, 22, 23), utc(2026, 3, 23, 8)),
    ),
    # Monday 09:00 CET, the day after Berlin's autumn change, against Monday 09:00 CEST.
    "berlin-week-after-autumn": (
        "Europe/Berlin",
        "THIS_WEEK",
        utc(2026, 10, 26, 8),
        (utc(2026, 10, 25, 23), utc(2026, 11, 1, 23)),
        (utc(2026, 10, 18, 22), utc(2026, 10, 19, 7)),
    ),
    # Noon on Berlin's autumn day (13 real hours in) against Saturday noon (12 hours).
    "berlin-autumn-day": (
        "Europe/Berlin",
        "TODAY",
        utc(2026, 10, 25, 11),
        (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)),
        (utc(2026, 10, 23, 22), utc(2026, 10, 24, 10)),
    ),
    # 30 November 20:50 in Kathmandu (+05:45) against 30 October 20:50.
    "kathmandu-month": (
        "Asia/Kathmandu",
        "THIS_MONTH",
        utc(2026, 11, 30, 15, 5),
        (utc(2026, 10, 31, 18, 15), utc(2026, 11, 30, 18, 15)),
        (utc(2026, 9, 30, 18, 15), utc(2026, 10, 30, 15, 5)),
    ),
}


def percent(now: int, before: int) -> float:
    return 100 * (now - before) / before


@pytest.mark.parametrize(
    ("zone", "preset", "now", "current", "aligned"), CASES.values(), ids=list(CASES)
)
async def test_to_date_compares_the_same_elapsed_wall_time(
    client, engine, clock, ingest, zone, preset, now, current, aligned
):
    clock.now = now
    tenant = await make_tenant(engine, now=now, timezone=zone)
    first = aligned[0] - timedelta(hours=3)
    # One event every 97 minutes from before the previous period up to now, credits 0-4.
    steps = int((now - first) / timedelta(minutes=97))
    events = [
        event(tenant.slug, first + timedelta(minutes=97 * i), credits=i % 5) for i in range(steps)
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    report = (await ask(client, tenant.token, QUERY, {"preset": preset}))["usage"]

    now_calls, now_credits = oracle.totals(oracle.select(events, *current))
    before_calls, before_credits = oracle.totals(oracle.select(events, *aligned))
    full_calls, full_credits = oracle.totals(oracle.select(events, aligned[0], current[0]))
    assert (report["calls"], report["creditsConsumed"]) == (now_calls, now_credits)
    to_date = report["toDate"]
    assert (instant(to_date["range"]["start"]), instant(to_date["range"]["end"])) == aligned
    assert (to_date["calls"], to_date["creditsConsumed"]) == (before_calls, before_credits)
    assert (report["full"]["calls"], report["full"]["creditsConsumed"]) == (
        full_calls,
        full_credits,
    )
    assert before_credits < full_credits  # the alignment really cut something off
    assert report["toDateChange"]["callsPercent"] == pytest.approx(
        percent(now_calls, before_calls), abs=1e-4
    )
    assert report["toDateChange"]["creditsPercent"] == pytest.approx(
        percent(now_credits, before_credits), abs=1e-4
    )
    assert report["fullChange"]["creditsPercent"] == pytest.approx(
        percent(now_credits, full_credits), abs=1e-4
    )


async def test_to_date_on_a_finished_period_is_the_full_period(client, tenant, ingest):
    at = utc(2027, 1, 6, 10)
    events = [event(tenant.slug, at - timedelta(days=d, hours=d)) for d in range(14)]
    assert (await post_events(client, ingest, events)).status_code == 200
    report = (await ask(client, tenant.token, QUERY, {"preset": "LAST_WEEK"}))["usage"]
    assert report["toDate"] == report["full"]
    assert report["toDateChange"]["creditsPercent"] == report["fullChange"]["creditsPercent"]


async def test_an_explicit_null_alignment_is_the_full_period(client, tenant, ingest):
    events = [event(tenant.slug, utc(2027, 1, 15, 11) - timedelta(days=d)) for d in range(9)]
    assert (await post_events(client, ingest, events)).status_code == 200
    query = """
    { organization { usage(timeRange: {preset: TODAY}) {
        a: previous(alignment: null) { range { start end } calls }
        b: previous { range { start end } calls }
        c: change(alignment: null) { callsPercent }
    } } }
    """
    report = (await ask(client, tenant.token, query, {}))["usage"]
    assert report["a"] == report["b"]
    assert report["a"]["calls"] == 1
