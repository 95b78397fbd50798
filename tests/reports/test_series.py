"""Series: local calendar periods in many zones, empty buckets, exact ragged edges, the
point limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests import oracle
from tests.factories import event, post_events
from tests.reports.queries import (
    SERIES,
    SERIES_ONLY,
    ask,
    edge_events,
    error_of,
    explicit,
    grid_events,
    instant,
    utc,
)

# (zone, local first day, local day after the last, granularity, bucket lengths in hours)
CALENDARS = [
    ("America/New_York", (2026, 3, 7), (2026, 3, 10), "DAY", [24, 23, 24]),
    ("America/New_York", (2026, 10, 31), (2026, 11, 3), "DAY", [24, 25, 24]),
    ("Europe/Berlin", (2026, 3, 28), (2026, 3, 31), "DAY", [24, 23, 24]),
    ("Europe/Berlin", (2026, 10, 24), (2026, 10, 27), "DAY", [24, 25, 24]),
    ("Australia/Lord_Howe", (2026, 10, 3), (2026, 10, 6), "DAY", [24, 23.5, 24]),
    ("Australia/Lord_Howe", (2026, 4, 4), (2026, 4, 7), "DAY", [24, 24.5, 24]),
    ("Asia/Kolkata", (2026, 6, 1), (2026, 6, 3), "DAY", [24, 24]),
    ("Asia/Kathmandu", (2026, 6, 1), (2026, 6, 3), "DAY", [24, 24]),
    ("Pacific/Chatham", (2026, 9, 26), (2026, 9, 29), "DAY", [24, 23, 24]),
    ("America/Havana", (2026, 3, 7), (2026, 3, 10), "DAY", [24, 23, 24]),
    ("America/Santiago", (2026, 9, 5), (2026, 9, 8), "DAY", [24, 23, 24]),
    ("America/New_York", (2026, 11, 1), (2026, 11, 2), "HOUR", [1, 2, *[1] * 22]),
    ("Europe/Berlin", (2026, 3, 29), (2026, 3, 30), "HOUR", [1] * 23),
    ("Australia/Lord_Howe", (2026, 10, 4), (2026, 10, 5), "HOUR", [1, 1, 0.5, *[1] * 21]),
    ("Europe/Berlin", (2026, 3, 16), (2026, 4, 6), "WEEK", [168, 167, 168]),
    ("Asia/Kathmandu", (2026, 1, 1), (2026, 4, 1), "MONTH", [744, 672, 744]),
    ("America/New_York", (2026, 2, 1), (2026, 4, 1), "MONTH", [672, 743]),
]


@pytest.mark.parametrize(
    ("zone", "first", "last", "granularity", "hours"),
    CALENDARS,
    ids=[
        "new-york-23h",
        "new-york-25h",
        "berlin-23h",
        "berlin-25h",
        "lord-howe-23.5h",
        "lord-howe-24.5h",
        "kolkata",
        "kathmandu",
        "chatham-23h",
        "havana-no-midnight",
        "santiago-no-midnight",
        "new-york-hours-fall-back",
        "berlin-hours-spring-forward",
        "lord-howe-half-hour",
        "berlin-weeks",
        "kathmandu-months",
        "new-york-months",
    ],
)
async def test_series_buckets_are_local_calendar_periods(
    client, tenant, ingest, zone, first, last, granularity, hours
):
    tz = ZoneInfo(zone)
    start = datetime(*first, tzinfo=tz).astimezone(UTC)
    end = datetime(*last, tzinfo=tz).astimezone(UTC)
    events = edge_events(tenant.slug, oracle.bucket_edges(start, end, zone, granularity))
    assert (await post_events(client, ingest, events)).status_code == 200
    # The zone comes from the argument, not the organization (which is UTC).
    variables = {"range": explicit(start, end, zone), "granularity": granularity}
    report = (await ask(client, tenant.token, SERIES, variables))["usage"]
    buckets = report["series"]
    got = [
        (instant(b["start"]), instant(b["end"]), b["calls"], b["creditsConsumed"]) for b in buckets
    ]
    assert got == oracle.series(events, start, end, zone, granularity)
    lengths = [(b_end - b_start) / timedelta(hours=1) for b_start, b_end, _, _ in got]
    assert lengths == hours
    assert report["range"]["timezone"] == zone
    assert report["calls"] == sum(b["calls"] for b in buckets)


async def test_series_include_empty_buckets_as_zeros(client, tenant, ingest):
    at = utc(2026, 6, 3, 10)
    assert (await post_events(client, ingest, [event(tenant.slug, at, credits=4)])).status_code
    variables = {
        "range": explicit(utc(2026, 6, 1), utc(2026, 6, 6), "Asia/Kolkata"),
        "granularity": "DAY",
    }
    series = (await ask(client, tenant.token, SERIES, variables))["usage"]["series"]
    assert [(b["calls"], b["creditsConsumed"]) for b in series] == [
        (0, 0),
        (0, 0),
        (1, 4),
        (0, 0),
        (0, 0),
        (0, 0),
    ]
    # The first and last buckets are cut to the range; the inner ones start at 18:30 UTC.
    assert series[0]["start"].startswith("2026-06-01T00:00:00")
    assert series[1]["start"].startswith("2026-06-01T18:30:00")
    assert series[-1]["end"].startswith("2026-06-06T00:00:00")


RAGGED = [
    (utc(2026, 5, 3, 7, 13, 27), utc(2026, 5, 29, 18, 2, 1)),
    (utc(2026, 5, 10, 5, 30, 0, 1), utc(2026, 5, 10, 6, 14, 59, 999999)),
    (utc(2026, 5, 10, 5, 7), utc(2026, 5, 10, 5, 8)),
]


@pytest.mark.parametrize(("start", "end"), RAGGED, ids=["days", "sub-hour", "one-minute"])
async def test_ragged_edges_are_answered_exactly_from_raw_events(
    client, tenant, ingest, start, end
):
    events = grid_events(tenant.slug, utc(2026, 5, 1), utc(2026, 6, 1))
    # Events exactly on and one microsecond around each edge.
    for edge in (start, end):
        for shift in (-1, 0, 1):
            events.append(event(tenant.slug, edge + timedelta(microseconds=shift), credits=7))
    assert (await post_events(client, ingest, events)).status_code == 200
    variables = {"range": explicit(start, end, "Europe/Berlin"), "granularity": "HOUR"}
    report = (await ask(client, tenant.token, SERIES, variables))["usage"]
    assert (report["calls"], report["creditsConsumed"]) == oracle.totals(
        oracle.select(events, start, end)
    )
    got = [
        (instant(b["start"]), instant(b["end"]), b["calls"], b["creditsConsumed"])
        for b in report["series"]
    ]
    assert got == oracle.series(events, start, end, "Europe/Berlin", "HOUR")


async def test_series_over_the_point_limit_is_refused_naming_the_limit(
    clean_database, clock, tenant
):
    # A small limit, so the query cost limit (which counts series points) stays out of it.
    settings = Settings(database_url=clean_database, max_series_points=48)
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            start = utc(2026, 6, 1)
            variables = {
                "range": explicit(start, start + timedelta(hours=48)),
                "granularity": "HOUR",
            }
            series = (await ask(http, tenant.token, SERIES, variables))["usage"]["series"]
            assert len(series) == 48
            variables["range"] = explicit(start, start + timedelta(hours=48, minutes=1))
            error = await error_of(http, tenant.token, SERIES_ONLY, variables)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "granularity"}
    assert "more than 48 points" in error["message"]
    assert "max_series_points" in error["message"]
