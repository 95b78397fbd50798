"""Every preset, resolved with the pinned clock in a zone that is not UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.periods import local_start
from domain.plans import Plan
from domain.presets import Preset
from domain.records import OrganizationRecord
from domain.time_range import resolve_range
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


def _calendar_days(preset: Preset, today: date) -> tuple[date, date]:
    """A calendar preset's first day and the day after its last, by date arithmetic alone."""
    monday = today - timedelta(days=today.weekday())
    first_of_month = today.replace(day=1)
    before_month = (first_of_month - timedelta(days=1)).replace(day=1)
    after_month = (first_of_month + timedelta(days=31)).replace(day=1)
    tomorrow = today + timedelta(days=1)
    return {
        Preset.TODAY: (today, tomorrow),
        Preset.YESTERDAY: (today - timedelta(days=1), today),
        Preset.LAST_7_DAYS: (today - timedelta(days=6), tomorrow),
        Preset.LAST_30_DAYS: (today - timedelta(days=29), tomorrow),
        Preset.LAST_90_DAYS: (today - timedelta(days=89), tomorrow),
        Preset.THIS_WEEK: (monday, monday + timedelta(days=7)),
        Preset.LAST_WEEK: (monday - timedelta(days=7), monday),
        Preset.THIS_MONTH: (first_of_month, after_month),
        Preset.LAST_MONTH: (before_month, first_of_month),
    }[preset]


ZONES = ["America/New_York", "Europe/Berlin", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"]


@given(
    preset=st.sampled_from([p for p in Preset if p is not Preset.THIS_BILLING_CYCLE]),
    zone=st.sampled_from(ZONES),
    now=st.datetimes(
        min_value=datetime(2001, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2039, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
def test_a_calendar_preset_is_its_local_days_whatever_the_instant(preset, zone, now):
    """Each preset runs from the local midnight of its first day to the one after its
    last, the days counted from today's local date (across DST changes and odd offsets)."""
    tz = ZoneInfo(zone)
    organization = OrganizationRecord(
        id=1,
        slug="o",
        name="O",
        plan=Plan.PRO,
        timezone=zone,
        credit_allowance=1000,
        billing_cycle_anchor=utc(2001, 1, 1),
        created_at=utc(2001, 1, 1),
        last_event_at=None,
    )
    resolved = resolve_range(
        preset=preset, start=None, end=None, timezone=None, organization=organization, now=now
    )
    first, after = _calendar_days(preset, now.astimezone(tz).date())
    assert (resolved.start, resolved.end) == (
        local_start(datetime.combine(first, time()), tz),
        local_start(datetime.combine(after, time()), tz),
    )
