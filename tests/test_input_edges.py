"""Inputs at the edges of what Python can represent get a coded 4xx, never a 500 (issue 10,
class 5): datetimes whose offset pushes them past year 1 or 9999, text that lower-casing
lengthens, malformed or overflowing cursors, and `previous` and `series` at the ends of
the calendar. Each through the real app (or the real ``creditlens`` process), on SQLite and
on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events
from tests.test_cli_ingest import run_cli
from tests.test_ingest_totals import totals

BAD_TIMESTAMPS = [
    ("0001-01-01T00:00:00+05:00", "is before 2000-01-01"),
    ("0001-01-01T04:59:59.999999+05:00", "is before 2000-01-01"),
    ("9999-12-31T23:59:59-05:00", "is more than a day in the future"),
    ("9999-12-31T23:59:59.999999999-00:01", "is more than a day in the future"),
]
LONG_WHEN_LOWERED = "İ" * 100  # 100 characters; lower-cased, 200 ('i' + a combining dot)


@pytest.fixture
async def world(engine, clock):
    tenant = await make_tenant(engine, now=clock())
    return tenant, await make_ingest_token(engine, now=clock())


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _error(body: dict[str, Any]) -> dict[str, Any]:
    [error] = body["errors"]
    return error


# --- events ------------------------------------------------------------------------------


async def test_events_past_the_calendar_are_refused_whole_and_listed(world, client, engine, clock):
    tenant, token = world
    before = await totals(engine)
    good = clock() - timedelta(minutes=5)
    batch = [event(tenant.slug, good)]
    for timestamp, _ in BAD_TIMESTAMPS:
        batch += [event(tenant.slug, good, timestamp=timestamp), event(tenant.slug, good)]

    response = await post_events(client, token, batch)

    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"index": 1 + 2 * place, "field": "timestamp", "reason": reason}
        for place, (_, reason) in enumerate(BAD_TIMESTAMPS)
    ]
    assert await totals(engine) == before


async def test_a_source_is_measured_after_lower_casing(world, client, engine, clock):
    tenant, token = world
    before = await totals(engine)
    at = clock() - timedelta(minutes=5)

    refused = await post_events(
        client,
        token,
        [event(tenant.slug, at), event(tenant.slug, at, source=LONG_WHEN_LOWERED)],
    )

    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert (error["index"], error["field"]) == (1, "source")
    assert "once lower-cased" in error["reason"]
    assert await totals(engine) == before

    # 50 of them lower-case to exactly 100 characters: stored, and reported as stored.
    fits = "İ" * 50
    accepted = await post_events(client, token, [event(tenant.slug, at, source=fits)])
    assert accepted.status_code == 200, accepted.text
    query = "{ organization { usage(timeRange: {preset: TODAY}) { bySource { source calls } } } }"
    tenant_token = tenant.token
    body = (await graphql(client, tenant_token, query)).json()
    assert body["data"]["organization"]["usage"]["bySource"] == [
        {"source": fits.lower(), "calls": 1}
    ]
    assert len(fits.lower()) == 100


async def test_the_cli_names_events_past_the_calendar_without_a_traceback(
    world, database_url, clock, tmp_path
):
    tenant, _ = world
    good = clock() - timedelta(minutes=5)
    lines = [
        event(tenant.slug, good),
        event(tenant.slug, good, timestamp=BAD_TIMESTAMPS[0][0]),
        event(tenant.slug, good, timestamp=BAD_TIMESTAMPS[2][0]),
        event(tenant.slug, good, source=LONG_WHEN_LOWERED),
    ]
    path = tmp_path / "edges.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")

    code, _, err = await run_cli(database_url, "ingest", str(path), "--quiet")

    assert code == 1, err
    assert "Traceback" not in err
    assert "event 1 (timestamp): is before 2000-01-01" in err
    assert "event 2 (timestamp): is more than a day in the future" in err
    assert "event 3 (source): must be a string of 1 to 100 characters (once lower-cased)" in err


async def test_the_cli_names_a_csv_field_too_large_to_read_without_a_traceback(
    world, database_url, clock, tmp_path
):
    tenant, _ = world
    at = (clock() - timedelta(minutes=5)).isoformat()
    header = "id,organization,source,endpoint,status,credits,timestamp\n"
    rows = f"a,{tenant.slug},api,/x,200,1,{at}\nb,{tenant.slug},{'x' * 200_000},/x,200,1,{at}\n"
    path = tmp_path / "edges.csv"
    path.write_text(header + rows, encoding="utf-8")

    code, _, err = await run_cli(database_url, "ingest", str(path), "--quiet")

    assert code == 1, err
    assert "Traceback" not in err
    assert "event 1 (event): malformed CSV at line 3: field larger than field limit" in err


# --- cursors -----------------------------------------------------------------------------

BAD_CURSORS = [
    _cursor("apikey:" + "9" * 5000),  # int() refuses more than 4,300 digits
    _cursor("apikey:" + "9" * 40),  # an int, but no BIGINT
    _cursor("apikey:9223372036854775808"),  # one past the largest BIGINT
    _cursor("apikey:١٢٣"),  # Arabic-Indic digits: str.isdigit and int accept them
    _cursor("apikey:٣"),
    _cursor("apikey:007"),  # another spelling of key 7
    _cursor("apikey:-1"),
    _cursor("apikey:"),
    _cursor("apikey:1").rstrip("="),  # the same bytes without padding
    "YXBpa2V5OjE=\n",
    "é",
    "",
    "%%%",
    "A" * 100_000,
]


@pytest.mark.parametrize(
    "cursor",
    BAD_CURSORS,
    ids=[
        "5000-digits",
        "40-digits",
        "bigint-plus-one",
        "arabic-indic-digits",
        "one-arabic-indic-digit",
        "leading-zeros",
        "negative",
        "no-digits",
        "unpadded",
        "trailing-newline",
        "non-ascii",
        "empty",
        "not-base64",
        "very-long",
    ],
)
async def test_a_malformed_cursor_is_refused_naming_after(world, client, cursor):
    tenant, _ = world
    query = (
        "query($after: String) { organization { apiKeys(first: 2, after: $after) { totalCount } } }"
    )
    response = await graphql(client, tenant.token, query, {"after": cursor})

    assert response.status_code == 200
    error = _error(response.json())
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_a_cursor_from_a_page_still_reads_the_next_page(world, client, clock):
    tenant, token = world
    at = clock() - timedelta(minutes=5)
    keys = [f"key-{n}" for n in range(3)]
    accepted = await post_events(client, token, [event(tenant.slug, at, api_key=k) for k in keys])
    assert accepted.status_code == 200
    query = """query($after: String) { organization { apiKeys(first: 2, after: $after) {
      edges { cursor node { name } } pageInfo { hasNextPage endCursor } } } }"""

    first = (await graphql(client, tenant.token, query)).json()["data"]["organization"]
    after = first["apiKeys"]["pageInfo"]["endCursor"]
    second = (await graphql(client, tenant.token, query, {"after": after})).json()

    names = [edge["node"]["name"] for edge in first["apiKeys"]["edges"]]
    names += [edge["node"]["name"] for edge in second["data"]["organization"]["apiKeys"]["edges"]]
    assert sorted(names) == keys


# --- time ranges -------------------------------------------------------------------------

RANGE_QUERY = """query($range: TimeRangeInput!) {
  organization { usage(timeRange: $range) { calls } }
}"""


@pytest.mark.parametrize(
    ("time_range", "field"),
    [
        ({"start": "0001-01-01T00:00:00+05:00", "end": "2026-01-01T00:00:00Z"}, "timeRange.start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:59:59-05:00"}, "timeRange.end"),
        (
            {
                "start": "9999-12-01T00:00:00Z",
                "end": "9999-12-31T23:00:00Z",
                "timezone": "Asia/Tokyo",
            },
            "timeRange.end",
        ),
        (
            {
                "start": "0001-01-01T00:00:00Z",
                "end": "0001-02-01T00:00:00Z",
                "timezone": "America/New_York",
            },
            "timeRange.start",
        ),
    ],
    ids=[
        "start-before-year-1",
        "end-after-9999",
        "end-after-9999-in-tokyo",
        "start-in-year-0-locally",
    ],
)
async def test_a_range_past_the_calendar_is_refused_naming_the_field(
    world, client, time_range, field
):
    tenant, _ = world
    response = await graphql(client, tenant.token, RANGE_QUERY, {"range": time_range})

    assert response.status_code == 200
    error = _error(response.json())
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert "outside the calendar" in error["message"]


SERIES_QUERY = """query($range: TimeRangeInput!) {
  organization { usage(timeRange: $range) {
    calls
    range { start end }
    hour: series(granularity: HOUR) { start end }
    day: series(granularity: DAY) { start end }
    week: series(granularity: WEEK) { start end }
    month: series(granularity: MONTH) { start end }
  } }
}"""


def _edges(rows: list[dict[str, str]]) -> list[datetime]:
    return [datetime.fromisoformat(rows[0]["start"])] + [
        datetime.fromisoformat(row["end"]) for row in rows
    ]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


async def test_series_at_the_first_days_of_the_calendar_are_answered(world, client):
    tenant, _ = world
    start, end = utc(1, 1, 1), utc(1, 3, 1)
    variables = {"range": {"start": start.isoformat(), "end": end.isoformat()}}
    body = (await graphql(client, tenant.token, SERIES_QUERY, variables)).json()

    assert "errors" not in body, body
    report = body["data"]["organization"]["usage"]
    assert _edges(report["day"]) == [start + timedelta(days=n) for n in range(59)] + [end]
    # 0001-01-01 was a Monday (proleptic Gregorian calendar).
    assert _edges(report["week"]) == [start + timedelta(weeks=n) for n in range(9)] + [end]
    assert _edges(report["month"]) == [start, utc(1, 2, 1), end]
    assert len(report["hour"]) == 59 * 24


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Pacific/Kiritimati"])
async def test_series_at_the_last_days_of_the_calendar_end_with_the_range(world, client, zone):
    tenant, _ = world
    # The latest end the zone can show: 9999-12-31 23:59:59.999999 in UTC and on its wall
    # clock (east of UTC, that wall time comes first).
    tz = ZoneInfo(zone)
    last = datetime.max.replace(tzinfo=UTC)
    offset = tz.utcoffset(last.replace(tzinfo=None)) or timedelta(0)
    end = last - max(offset, timedelta(0))
    start = end - timedelta(days=62)
    variables = {"range": {"start": start.isoformat(), "end": end.isoformat(), "timezone": zone}}
    body = (await graphql(client, tenant.token, SERIES_QUERY, variables)).json()

    assert "errors" not in body, body
    report = body["data"]["organization"]["usage"]
    for granularity in ("hour", "day", "week", "month"):
        edges = _edges(report[granularity])
        assert (edges[0], edges[-1]) == (start, end), granularity
        assert edges == sorted(set(edges)), granularity
        for edge in edges[1:-1]:  # each inner edge starts a local period
            wall = edge.astimezone(tz)
            assert (wall.minute, wall.second, wall.microsecond) == (0, 0, 0), granularity
    assert len(report["day"]) == 63  # 62 days, cut at both ends


PREVIOUS_QUERY = """query($range: TimeRangeInput!) {
  organization { usage(timeRange: $range) { %s } }
}"""


@pytest.mark.parametrize(
    ("time_range", "selection"),
    [
        ({"start": "0001-01-01T00:00:00Z", "end": "0001-02-01T00:00:00Z"}, "previous { calls }"),
        (
            {"start": "0001-01-01T00:00:00Z", "end": "0001-02-01T00:00:00Z"},
            "change { callsPercent }",
        ),
        (
            {"start": "0001-03-01T00:00:00Z", "end": "0001-05-01T00:00:00Z"},
            "previous { previous { calls } }",
        ),
        (
            {
                "start": "0001-01-05T00:00:00Z",
                "end": "0001-01-09T00:00:00Z",
                "timezone": "Asia/Tokyo",
            },
            "previous { previous { calls } }",
        ),
        (
            {"start": "0001-01-01T12:00:00Z", "end": "0001-01-02T12:00:00Z"},
            "previous { calls }",
        ),
    ],
    ids=[
        "previous-of-the-first-month",
        "change-of-the-first-month",
        "previous-of-previous-months",
        "previous-starting-in-year-0-in-tokyo",
        "previous-of-a-ragged-first-day",
    ],
)
async def test_previous_before_the_calendar_is_refused(world, client, time_range, selection):
    tenant, _ = world
    response = await graphql(
        client, tenant.token, PREVIOUS_QUERY % selection, {"range": time_range}
    )

    assert response.status_code == 200
    error = _error(response.json())
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "timeRange.start"}
    assert "no previous period" in error["message"]


async def test_previous_near_the_start_of_the_calendar_is_answered(world, client):
    tenant, _ = world
    query = PREVIOUS_QUERY % "previous { range { start end } }"
    variables = {"range": {"start": "0001-02-01T00:00:00Z", "end": "0001-03-01T00:00:00Z"}}
    body = (await graphql(client, tenant.token, query, variables)).json()

    assert "errors" not in body, body
    assert body["data"]["organization"]["usage"]["previous"]["range"] == {
        "start": "0001-01-01T00:00:00+00:00",
        "end": "0001-02-01T00:00:00+00:00",
    }
