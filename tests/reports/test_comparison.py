"""The previous period, change against it, and when the newest event arrived."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests import oracle
from tests.factories import event, make_tenant, post_events
from tests.reports.queries import (
    ask,
    instant,
    utc,
)

COMPARE = """
query($key: ID) {
  organization {
    usage(timeRange: {preset: THIS_WEEK}, keyId: $key) {
      range { start end }
      calls creditsConsumed
      previous { range { start end } calls creditsConsumed previous { range { start end } } }
      change { callsPercent creditsPercent }
    }
    lastWeek: usage(timeRange: {preset: LAST_WEEK}, keyId: $key) { range { start end } }
  }
}
"""


async def test_this_week_against_last_week_in_one_query(client, engine, clock, ingest):
    # Berlin changes to summer time on Sunday 2026-03-29: last week had 167 hours.
    clock.now = utc(2026, 4, 2, 12)
    tenant = await make_tenant(engine, now=clock(), timezone="Europe/Berlin")
    slug = tenant.slug
    events = [
        event(slug, utc(2026, 3, 15) + timedelta(minutes=53 * index), credits=index % 4)
        for index in range(480)
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    data = await ask(client, tenant.token, COMPARE, {})
    report = data["usage"]
    this_start, this_end = instant(report["range"]["start"]), instant(report["range"]["end"])
    assert (this_start, this_end) == (utc(2026, 3, 29, 22), utc(2026, 4, 5, 22))
    previous = report["previous"]
    assert previous["range"] == data["lastWeek"]["range"]
    assert (instant(previous["range"]["start"]), instant(previous["range"]["end"])) == (
        utc(2026, 3, 22, 23),
        utc(2026, 3, 29, 22),
    )
    assert previous["previous"]["range"]["end"] == previous["range"]["start"]
    assert instant(previous["previous"]["range"]["start"]) == utc(2026, 3, 15, 23)
    now_calls, now_credits = oracle.totals(oracle.select(events, this_start, this_end))
    before = oracle.select(events, utc(2026, 3, 22, 23), utc(2026, 3, 29, 22))
    before_calls, before_credits = oracle.totals(before)
    assert (report["calls"], report["creditsConsumed"]) == (now_calls, now_credits)
    assert (previous["calls"], previous["creditsConsumed"]) == (before_calls, before_credits)
    assert report["change"]["callsPercent"] == pytest.approx(
        100 * (now_calls - before_calls) / before_calls, abs=1e-4
    )
    assert report["change"]["creditsPercent"] == pytest.approx(
        100 * (now_credits - before_credits) / before_credits, abs=1e-4
    )


async def test_change_is_null_when_the_previous_period_had_nothing(client, tenant, ingest):
    at = utc(2027, 1, 13)
    assert (await post_events(client, ingest, [event(tenant.slug, at)])).status_code == 200
    report = (await ask(client, tenant.token, COMPARE, {}))["usage"]
    assert report["calls"] == 1
    assert report["previous"]["calls"] == 0
    assert report["change"] == {"callsPercent": None, "creditsPercent": None}


LAST_EVENT = """
query($key: ID) {
  organization { usage(timeRange: {preset: TODAY}, keyId: $key) { calls lastEventAt } }
}
"""


async def test_last_event_at_tells_no_spend_from_no_data(client, tenant, ingest):
    quiet = (await ask(client, tenant.token, LAST_EVENT, {}))["usage"]
    assert quiet == {"calls": 0, "lastEventAt": None}
    events = [
        event(tenant.slug, utc(2027, 1, 3, 8), api_key="k-1"),
        event(tenant.slug, utc(2027, 1, 9, 8), api_key="k-2"),
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    report = (await ask(client, tenant.token, LAST_EVENT, {}))["usage"]
    assert report["calls"] == 0
    assert instant(report["lastEventAt"]) == utc(2027, 1, 9, 8)
    keyed = (await ask(client, tenant.token, LAST_EVENT, {"key": "k-1"}))["usage"]
    assert instant(keyed["lastEventAt"]) == utc(2027, 1, 3, 8)
