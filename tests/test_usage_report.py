"""UsageReport over GraphQL: calendar series in many zones, exact ragged edges, breakdowns,
the key filter, bad input and the comparison with the previous period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests import oracle
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events

SERIES = """
query($range: TimeRangeInput!, $granularity: Granularity!, $key: ID) {
  organization {
    usage(timeRange: $range, keyId: $key) {
      range { start end timezone preset }
      calls creditsConsumed
      series(granularity: $granularity) { start end calls creditsConsumed }
    }
  }
}
"""

# Only the series: a failing field must not have siblings still reading when the request
# closes its connection (see docs/reports.md, "Known issues").
SERIES_ONLY = """
query($range: TimeRangeInput!, $granularity: Granularity!) {
  organization { usage(timeRange: $range) { series(granularity: $granularity) { calls } } }
}
"""

REPORT = """
query($range: TimeRangeInput!, $key: ID) {
  organization {
    usage(timeRange: $range, keyId: $key) {
      calls creditsConsumed
      byEndpoint { endpoint calls creditsConsumed percentOfTotal }
      bySource { source calls creditsConsumed percentOfTotal }
      byUser { user { id name } calls creditsConsumed percentOfTotal }
      byApiKey { apiKey { id name } calls creditsConsumed percentOfTotal }
    }
  }
}
"""


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


async def ask(client, token, query, variables) -> dict[str, Any]:
    body = (await graphql(client, token, query, variables)).json()
    assert "errors" not in body, body
    return body["data"]["organization"]


async def error_of(client, token, query, variables) -> dict[str, Any]:
    body = (await graphql(client, token, query, variables)).json()
    assert body.get("data") is None or body["data"].get("organization") is None, body
    assert len(body["errors"]) == 1, body
    return body["errors"][0]


def explicit(start: datetime, end: datetime, zone: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat()}
    if zone is not None:
        value["timezone"] = zone
    return value


def grid_events(slug: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Events on both sides of every 15-minute UTC instant: any misplaced edge shows."""
    events = []
    point, index = start, 0
    while point < end:
        events.append(event(slug, point, credits=index % 3))
        events.append(event(slug, point + timedelta(minutes=14, seconds=59), credits=1))
        point += timedelta(minutes=15)
        index += 1
    return events


def edge_events(slug: str, edges: list[datetime]) -> list[dict[str, Any]]:
    """Grid events for two hours around each edge and one event every five hours between:
    enough to catch a misplaced edge in a long range without a huge batch."""
    events = []
    for edge in edges:
        events.extend(grid_events(slug, edge - timedelta(hours=2), edge + timedelta(hours=2)))
    point = edges[0]
    while point < edges[-1]:
        events.append(event(slug, point + timedelta(minutes=7), credits=2))
        point += timedelta(hours=5)
    return events


@pytest.fixture
async def tenant(client, engine, clock):
    # Late 2026 events are in the future of the default clock: move it past them.
    clock.now = utc(2027, 1, 15, 12)
    return await make_tenant(engine, now=clock(), timezone="UTC")


@pytest.fixture
async def ingest(engine, clock):
    return await make_ingest_token(engine, now=clock())


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


def user_row(row):
    return (None if row["user"] is None else row["user"]["name"], row["calls"], row["credits"])


async def test_breakdowns_equal_raw_events_with_one_row_for_no_user_and_no_key(
    client, tenant, ingest
):
    at = utc(2026, 6, 2, 9)
    slug = tenant.slug
    events = [
        event(slug, at, user={"id": "u-z", "name": "Zed"}, api_key="k-1", credits=3),
        event(slug, at, user={"id": "u-a", "name": "Amy"}, api_key="k-2", credits=3),
        event(slug, at, user=None, api_key=None, credits=3, source="extension"),
        event(slug, at, user="u-a", api_key=None, credits=5, source="Extension"),
        event(slug, at, user=None, api_key="k-1", credits=0, endpoint="/v2/company"),
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    variables = {"range": explicit(utc(2026, 6, 1), utc(2026, 6, 3))}
    report = (await ask(client, tenant.token, REPORT, variables))["usage"]
    assert (report["calls"], report["creditsConsumed"]) == (5, 14)
    assert [
        (r["user"] and r["user"]["name"], r["calls"], r["creditsConsumed"])
        for r in report["byUser"]
    ] == [
        ("Amy", 2, 8),
        (None, 2, 3),
        ("Zed", 1, 3),
    ]
    assert [
        (r["apiKey"] and r["apiKey"]["id"], r["calls"], r["creditsConsumed"])
        for r in report["byApiKey"]
    ] == [
        (None, 2, 8),
        ("k-1", 2, 3),
        ("k-2", 1, 3),
    ]
    assert [(r["source"], r["calls"], r["creditsConsumed"]) for r in report["bySource"]] == [
        ("extension", 2, 8),
        ("api", 3, 6),
    ]
    for rows in (report["byEndpoint"], report["bySource"], report["byUser"], report["byApiKey"]):
        assert sum(row["percentOfTotal"] for row in rows) == pytest.approx(100.0, abs=1e-3)
    assert report["byUser"][0]["percentOfTotal"] == pytest.approx(100 * 8 / 14, abs=1e-4)


async def test_ties_are_ordered_by_display_name_not_by_internal_id(client, tenant, ingest):
    at = utc(2026, 6, 2, 9)
    slug = tenant.slug
    # Created in this order, so internal ids run Zed < Mia < Amy; names run the other way.
    events = [
        event(slug, at, user={"id": "u-1", "name": "Zed"}, api_key={"id": "k-1", "name": "zeta"}),
        event(slug, at, user={"id": "u-2", "name": "Mia"}, api_key={"id": "k-2", "name": "mu"}),
        event(slug, at, user={"id": "u-3", "name": "Amy"}, api_key={"id": "k-3", "name": "alpha"}),
        event(slug, at, user=None, api_key=None),
    ]
    for item in events:  # one batch each, so creation order is fixed
        assert (await post_events(client, ingest, [item])).status_code == 200
    variables = {"range": explicit(utc(2026, 6, 1), utc(2026, 6, 3))}
    report = (await ask(client, tenant.token, REPORT, variables))["usage"]
    assert [row["user"] and row["user"]["name"] for row in report["byUser"]] == [
        "Amy",
        "Mia",
        "Zed",
        None,
    ]
    assert [row["apiKey"] and row["apiKey"]["name"] for row in report["byApiKey"]] == [
        "alpha",
        "mu",
        "zeta",
        None,
    ]


async def test_percent_falls_back_to_calls_when_no_call_cost_credits(client, tenant, ingest):
    at = utc(2026, 6, 2, 9)
    events = [
        event(tenant.slug, at, endpoint="/a", credits=0),
        event(tenant.slug, at, endpoint="/a", credits=0),
        event(tenant.slug, at, endpoint="/b", credits=0),
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    variables = {"range": explicit(utc(2026, 6, 1), utc(2026, 6, 3))}
    rows = (await ask(client, tenant.token, REPORT, variables))["usage"]["byEndpoint"]
    assert [(row["endpoint"], row["percentOfTotal"]) for row in rows] == [
        ("/a", pytest.approx(66.6667, abs=1e-4)),
        ("/b", pytest.approx(33.3333, abs=1e-4)),
    ]


ENDPOINTS_EVERYWHERE = """
query($range: TimeRangeInput!, $key: ID!) {
  organization {
    endpointUsage(timeRange: $range, keyId: $key) { endpoint calls creditsConsumed percentOfTotal }
    usage(timeRange: $range, keyId: $key) {
      byEndpoint { endpoint calls creditsConsumed percentOfTotal }
    }
    apiKey(id: $key) {
      endpointUsage(timeRange: $range) { endpoint calls creditsConsumed percentOfTotal }
      usage(timeRange: $range) { byEndpoint { endpoint calls creditsConsumed percentOfTotal } }
    }
    apiKeys {
      nodes {
        id
        endpointUsage(timeRange: $range) { endpoint calls creditsConsumed percentOfTotal }
      }
    }
  }
}
"""


async def test_every_endpoint_table_of_a_key_agrees_with_the_raw_events(client, tenant, ingest):
    slug = tenant.slug
    events = [
        event(
            slug,
            utc(2026, 6, 1) + timedelta(minutes=37 * index),
            api_key=["k-1", "k-2", None][index % 3],
            endpoint=["/a", "/b", "/c", "/d"][index % 4],
            credits=index % 5,
        )
        for index in range(400)
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    start, end = utc(2026, 6, 1, 3, 7), utc(2026, 6, 8, 11, 59)
    variables = {"range": explicit(start, end, "Asia/Kathmandu"), "key": "k-2"}
    data = await ask(client, tenant.token, ENDPOINTS_EVERYWHERE, variables)
    wanted_rows = oracle.table(oracle.select(events, start, end, "k-2"), lambda e: e["endpoint"])
    wanted = [
        {"endpoint": name, "calls": calls, "creditsConsumed": credits}
        for name, calls, credits in wanted_rows
    ]
    page = {node["id"]: node["endpointUsage"] for node in data["apiKeys"]["nodes"]}
    tables = [
        data["endpointUsage"],
        data["usage"]["byEndpoint"],
        data["apiKey"]["endpointUsage"],
        data["apiKey"]["usage"]["byEndpoint"],
        page["k-2"],
    ]
    for rows in tables:
        assert rows == tables[0]
    assert [{k: row[k] for k in wanted[0]} for row in tables[0]] == wanted
    assert [row["percentOfTotal"] for row in tables[0]] == pytest.approx(
        oracle.percents(wanted_rows), abs=1e-4
    )


async def test_a_key_of_another_organization_is_not_found_like_an_unknown_key(
    client, engine, clock, tenant, ingest
):
    other = await make_tenant(engine, now=clock())
    at = utc(2026, 6, 2)
    assert (
        await post_events(client, ingest, [event(other.slug, at, api_key="theirs")])
    ).status_code
    variables = {"range": explicit(utc(2026, 6, 1), utc(2026, 6, 3)), "key": "theirs"}
    theirs = await error_of(client, tenant.token, REPORT, variables)
    variables["key"] = "nobody"
    unknown = await error_of(client, tenant.token, REPORT, variables)
    for error in (theirs, unknown):
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert error["extensions"]["field"] == "keyId"
    assert theirs["message"].replace("theirs", "X") == unknown["message"].replace("nobody", "X")
    # The owner sees it.
    assert (await ask(client, other.token, REPORT, {**variables, "key": "theirs"}))["usage"][
        "calls"
    ] == 1


BAD_INPUT = [
    ({"preset": "TODAY", "timezone": "Mars/Olympus"}, "DAY", "timeRange.timezone", "Mars/Olympus"),
    (
        {"start": "2026-06-02T00:00:00Z", "end": "2026-06-02T00:00:00Z"},
        "DAY",
        "timeRange.end",
        "after",
    ),
    (
        {"start": "2026-06-03T00:00:00Z", "end": "2026-06-02T00:00:00Z"},
        "DAY",
        "timeRange.end",
        "after",
    ),
    (
        {"preset": "TODAY", "start": "2026-06-02T00:00:00Z", "end": "2026-06-03T00:00:00Z"},
        "DAY",
        "timeRange",
        "not both",
    ),
    (
        {"start": "2026-06-02T00:00:00", "end": "2026-06-03T00:00:00Z"},
        "DAY",
        "timeRange.start",
        "UTC offset",
    ),
    ({"start": "2026-06-02T00:00:00Z"}, "DAY", "timeRange.end", "both start and end"),
]


@pytest.mark.parametrize(
    ("time_range", "granularity", "field", "says"),
    BAD_INPUT,
    ids=[
        "unknown-zone",
        "empty-range",
        "end-before-start",
        "preset-and-start",
        "naive-start",
        "missing-end",
    ],
)
async def test_bad_input_is_refused_naming_the_argument(
    client, tenant, time_range, granularity, field, says
):
    # Without a series: the cost limit would otherwise assume the longest one for a range
    # it cannot read, and refuse first.
    error = await error_of(client, tenant.token, REPORT, {"range": time_range})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert says in error["message"]


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
