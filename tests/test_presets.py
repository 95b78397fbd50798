"""Every preset, resolved with the pinned clock in a zone that is not UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import graphql, make_tenant

QUERY = """
query($preset: TimeRangePreset!, $zone: String) {
  organization {
    usage(timeRange: {preset: $preset, timezone: $zone}) {
      range { start end timezone preset }
    }
  }
}
"""


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# Clock: 2026-03-10T03:30Z = Monday 2026-03-09 23:30 in New York (EDT, -4), two days after
# the spring change (Sunday 03-08). The billing anchor is 2026-01-31 09:00 New York.
NOW = utc(2026, 3, 10, 3, 30)
PRESETS = {
    "TODAY": (utc(2026, 3, 9, 4), utc(2026, 3, 10, 4)),
    "YESTERDAY": (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4)),  # 23 hours
    "LAST_7_DAYS": (utc(2026, 3, 3, 5), utc(2026, 3, 10, 4)),
    "LAST_30_DAYS": (utc(2026, 2, 8, 5), utc(2026, 3, 10, 4)),
    "LAST_90_DAYS": (utc(2025, 12, 10, 5), utc(2026, 3, 10, 4)),
    "THIS_WEEK": (utc(2026, 3, 9, 4), utc(2026, 3, 16, 4)),
    "LAST_WEEK": (utc(2026, 3, 2, 5), utc(2026, 3, 9, 4)),  # 167 hours
    "THIS_MONTH": (utc(2026, 3, 1, 5), utc(2026, 4, 1, 4)),
    "LAST_MONTH": (utc(2026, 2, 1, 5), utc(2026, 3, 1, 5)),
    # Anchor day 31 clamps to February 28, then goes back to the 31st in March.
    "THIS_BILLING_CYCLE": (utc(2026, 2, 28, 14), utc(2026, 3, 31, 13)),
}


@pytest.mark.parametrize(("preset", "expected"), PRESETS.items(), ids=list(PRESETS))
async def test_preset_resolves_in_the_organization_zone(client, engine, clock, preset, expected):
    clock.now = NOW
    tenant = await make_tenant(
        engine, now=NOW, timezone="America/New_York", anchor=utc(2026, 1, 31, 14)
    )
    body = (await graphql(client, tenant.token, QUERY, {"preset": preset})).json()
    assert "errors" not in body, body
    resolved = body["data"]["organization"]["usage"]["range"]
    got = (
        datetime.fromisoformat(resolved["start"]),
        datetime.fromisoformat(resolved["end"]),
    )
    assert got == expected
    assert resolved["timezone"] == "America/New_York"
    assert resolved["preset"] == preset


# The same instant is already Tuesday 2026-03-10 09:00 in Kolkata (+05:30).
KOLKATA = {
    "TODAY": (utc(2026, 3, 9, 18, 30), utc(2026, 3, 10, 18, 30)),
    "YESTERDAY": (utc(2026, 3, 8, 18, 30), utc(2026, 3, 9, 18, 30)),
    "THIS_WEEK": (utc(2026, 3, 8, 18, 30), utc(2026, 3, 15, 18, 30)),
    "THIS_MONTH": (utc(2026, 2, 28, 18, 30), utc(2026, 3, 31, 18, 30)),
}


@pytest.mark.parametrize(("preset", "expected"), KOLKATA.items(), ids=list(KOLKATA))
async def test_preset_follows_the_requested_zone(client, engine, clock, preset, expected):
    clock.now = NOW
    tenant = await make_tenant(engine, now=NOW, timezone="America/New_York")
    variables = {"preset": preset, "zone": "Asia/Kolkata"}
    body = (await graphql(client, tenant.token, QUERY, variables)).json()
    resolved = body["data"]["organization"]["usage"]["range"]
    got = (datetime.fromisoformat(resolved["start"]), datetime.fromisoformat(resolved["end"]))
    assert got == expected
    assert resolved["timezone"] == "Asia/Kolkata"


async def test_one_request_resolves_a_preset_against_one_now(engine, clock, settings):
    """Fields of one request share the range they ask for, even if the clock moves while the
    request runs (here: a day on at every reading)."""
    import httpx

    from app.main import create_app

    tenant = await make_tenant(engine, now=clock(), timezone="Europe/Berlin")

    class TickingClock:
        def __init__(self, start: datetime) -> None:
            self.now = start

        def __call__(self) -> datetime:
            self.now += timedelta(days=1)
            return self.now

    application = create_app(settings, clock=TickingClock(clock.now))
    query = """{ organization {
      a: usage(timeRange: {preset: TODAY}) { range { start end } }
      b: usage(timeRange: {preset: TODAY}) { range { start end } }
      c: usage(timeRange: {preset: TODAY, timezone: "UTC"}) { range { start } }
    } }"""
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            body = (await graphql(http, tenant.token, query)).json()
    organization = body["data"]["organization"]
    assert organization["a"]["range"] == organization["b"]["range"]
    assert organization["c"]["range"]["start"] != organization["a"]["range"]["start"]
