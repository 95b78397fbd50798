"""Series in zones whose historical offsets were off the 15-minute grid (issue 10, class 4).

Before the 1970s many zones kept offsets such as +00:19:32 (Europe/Amsterdam until 1937),
-00:44:30 (Africa/Monrovia until 1972) or local mean time, so every period edge of a series
falls off the grid the rollups are summed on. Such a series is answered exactly (the
oracle reads the raw events) with statements of a bounded size, or refused with
BAD_USER_INPUT saying why; never INTERNAL_SERVER_ERROR, never seconds of work.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from db import grains
from db.ingestion.validation import Reference, ValidEvent
from db.ingestion.writer import write
from db.queries import usage
from domain.dimensions import Dimension
from domain.outcomes import outcome_of
from domain.periods import Granularity, period_edges
from tests import oracle
from tests.factories import event, graphql, make_tenant
from tests.statements import recorded

NOW = datetime(2027, 1, 15, tzinfo=UTC)
SERIES = """
query($range: TimeRangeInput!, $granularity: Granularity!) {
  organization { usage(timeRange: $range) {
    calls
    series(granularity: $granularity) { start end calls creditsConsumed }
  } }
}
"""
# What one statement may hold, far above what a bounded read needs (a few hundred branches
# of ~300 characters) and far below the unbounded ones (1,000 to 4,000 branches, 0.3 to
# 1.5 MB here).
MAX_BRANCHES = usage.MAX_RANGES
MAX_STATEMENT_CHARS = 100_000
# Generous: the slowest case answers in about a second on a loaded laptop; before the
# fix it took 5 to 31 seconds and failed.
MAX_SECONDS = 10


@pytest.fixture
def statements(engine: Any) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the test runs."""
    with recorded(engine) as seen:
        yield seen


def _valid(index: int, item: dict[str, Any]) -> ValidEvent:
    """The checked event validation would make of ``item``, whatever its date."""
    return ValidEvent(
        index=index,
        id=item["id"],
        organization=item["organization"],
        api_key=Reference(item["api_key"], None),
        user=None,
        source=item["source"],
        endpoint=item["endpoint"],
        status=item["status"],
        credits=item["credits"],
        occurred_at=oracle.when(item).astimezone(UTC),
        outcome=outcome_of(item["status"]),
    )


async def _store(engine: Any, slug: str, instants: list[datetime]) -> list[dict[str, Any]]:
    """Events at ``instants``, written by the writer ingestion uses (ingestion itself
    refuses events before 2000, and every offset since then is on the grid)."""
    events = [
        event(slug, at, credits=index % 4) for index, at in enumerate(instants) if at.year >= 1970
    ]
    await write(engine, [_valid(index, item) for index, item in enumerate(events)], now=NOW)
    return events


def _buckets(rows: list[dict[str, Any]]) -> list[tuple[datetime, datetime, int, int]]:
    return [
        (
            datetime.fromisoformat(row["start"]),
            datetime.fromisoformat(row["end"]),
            row["calls"],
            row["creditsConsumed"],
        )
        for row in rows
    ]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "start", "end", "granularity"),
    [
        ("Europe/Amsterdam", utc(1935, 5, 1), utc(1935, 10, 15), "HOUR"),
        ("Africa/Monrovia", utc(1969, 1, 1), utc(1971, 12, 1), "DAY"),
        ("Africa/Monrovia", utc(1971, 10, 1), utc(1972, 3, 1, 0, 0, 0, 1), "HOUR"),
        ("Asia/Kolkata", utc(1867, 1, 1), utc(1870, 6, 1), "DAY"),
        ("Europe/Berlin", utc(1889, 1, 1), utc(1893, 6, 1), "WEEK"),
        ("Pacific/Kiritimati", utc(1975, 1, 1), utc(1979, 12, 1), "MONTH"),
        # On the grid but off the hour: 730 rollup ranges (PostgreSQL: bound as arrays).
        ("Asia/Kolkata", utc(2025, 12, 31, 18, 30), utc(2026, 12, 31, 18, 30), "DAY"),
    ],
    ids=[
        "amsterdam-1935-hours",
        "monrovia-three-years-of-days",
        "monrovia-hours-across-the-1972-change",
        "kolkata-days-across-the-1870-change",
        "berlin-lmt-weeks",
        "kiritimati-months-across-the-1979-change",
        "kolkata-a-year-of-days",
    ],
)
async def test_a_series_off_the_grid_is_exact_with_bounded_statements(
    client, engine, clock, statements, zone, start, end, granularity
):
    clock.now = NOW
    tenant = await make_tenant(engine, now=NOW, timezone=zone)
    # Events on both sides of edges, every 13 hours 17 minutes (off any grid).
    step = timedelta(hours=13, minutes=17, seconds=29)
    instants = [start + step * index for index in range(int((end - start) / step))]
    events = await _store(engine, tenant.slug, instants[:: max(1, len(instants) // 2000)])
    statements.clear()

    # CPU seconds of this process, not wall time: a busy machine cannot fail the bound.
    began = time.process_time()
    variables = {
        "range": {"start": start.isoformat(), "end": end.isoformat()},
        "granularity": granularity,
    }
    body = (await graphql(client, tenant.token, SERIES, variables)).json()
    elapsed = time.process_time() - began

    assert "errors" not in body, body
    report = body["data"]["organization"]["usage"]
    assert _buckets(report["series"]) == oracle.series(events, start, end, zone, granularity)
    assert report["calls"] == len(oracle.select(events, start, end))
    assert statements
    for statement in statements:
        assert statement.count("UNION ALL") < MAX_BRANCHES
        assert len(statement) < MAX_STATEMENT_CHARS
    assert elapsed < MAX_SECONDS


async def test_a_series_off_the_grid_over_too_many_events_is_refused_saying_why(
    client, engine, clock, monkeypatch
):
    # Stored events cannot reach the real limit before 2000: lower it to what a test stores.
    monkeypatch.setattr(usage, "MAX_RAW_SCAN_EVENTS", 10)
    clock.now = NOW
    tenant = await make_tenant(engine, now=NOW, timezone="Africa/Monrovia")
    await _store(
        engine, tenant.slug, [utc(1971, 3, 1) + timedelta(hours=hour) for hour in range(11)]
    )
    variables = {
        "range": {"start": "1971-01-01T00:00:00Z", "end": "1971-06-01T00:00:00Z"},
        "granularity": "HOUR",
    }
    body = (await graphql(client, tenant.token, SERIES, variables)).json()

    [error] = body["errors"]
    assert error["path"] == ["organization", "usage", "series"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "granularity"}
    assert "Africa/Monrovia used the UTC offset -00:44:30" in error["message"]
    assert "11 events, more than 10" in error["message"]


async def test_a_series_off_the_grid_within_the_event_limit_is_answered(
    client, engine, clock, monkeypatch
):
    monkeypatch.setattr(usage, "MAX_RAW_SCAN_EVENTS", 11)
    clock.now = NOW
    tenant = await make_tenant(engine, now=NOW, timezone="Africa/Monrovia")
    events = await _store(
        engine, tenant.slug, [utc(1971, 3, 1) + timedelta(hours=hour) for hour in range(11)]
    )
    start, end = utc(1971, 1, 1), utc(1971, 6, 1)
    variables = {
        "range": {"start": start.isoformat(), "end": end.isoformat()},
        "granularity": "HOUR",
    }
    body = (await graphql(client, tenant.token, SERIES, variables)).json()

    assert "errors" not in body, body
    got = _buckets(body["data"]["organization"]["usage"]["series"])
    assert got == oracle.series(events, start, end, "Africa/Monrovia", "HOUR")


@pytest.mark.parametrize("days", [7, 90])
def test_on_postgresql_a_series_is_one_statement_whatever_its_periods(days: int) -> None:
    """Daily buckets of a +05:30 zone are two rollup ranges each (an hour run and the
    quarter hours around local midnight). On PostgreSQL the ranges of a grain are bound as
    arrays, so the statement's text (hence the prepared statement PostgreSQL plans) is the
    same for 7 days as for 90; one branch per range made it plan 180 branches at every run
    (bench/PROPOSALS.md R30). SQLite keeps one branch per range."""
    zone = ZoneInfo("Asia/Kolkata")
    end = datetime(2027, 1, 15, tzinfo=zone).astimezone(UTC)
    edges = period_edges(end - timedelta(days=days), end, Granularity.DAY, zone)
    pieces = [piece for piece in usage._pieces_for(edges) if piece.grain]
    query = usage._Query(1, Dimension.ENDPOINT, None, None, False, True, False)
    shape, parameters = usage._rollup_call(query, pieces, arrays=True)
    week, _ = usage._rollup_call(
        query,
        [p for p in usage._pieces_for(edges[:8]) if p.grain],
        arrays=True,
    )
    assert shape == week
    assert shape.ranges
    assert usage._driver_sql(shape).sql.count("UNION ALL") == len(shape.grains)
    ranges = sum(len(parameters[f"lows_{grain}"]) for grain in shape.grains)
    assert ranges == len(pieces) > days  # every range is bound, none dropped
    per_piece, _ = usage._rollup_call(query, pieces, arrays=False)
    assert len(per_piece.grains) == len(pieces)
    # A read of a few ranges (a 30-day table) keeps a branch per range, the cheapest there.
    table, _ = usage._rollup_call(query, pieces[:3], arrays=True)
    assert not table.ranges
    assert len(table.grains) == 3


def test_on_postgresql_a_year_of_such_days_keeps_its_hour_runs() -> None:
    """730 ranges (a year of +05:30 days) are past what a statement of one branch per range
    may hold (SQLite: ``MAX_RANGES``, then one quarter-hour span over the whole year, 4x the
    rows of hour runs), but within what PostgreSQL's array-bound ranges take
    (``MAX_ARRAY_RANGES``): there the hour runs stay (24 -> 9 ms at 1M events, R30)."""
    zone = ZoneInfo("Asia/Kolkata")
    end = datetime(2027, 1, 15, tzinfo=zone).astimezone(UTC)
    edges = period_edges(end - timedelta(days=365), end, Granularity.DAY, zone)
    coarse = usage._pieces_for(edges)
    assert {piece.grain for piece in coarse} == {grains.QUARTER_HOUR}
    assert len(coarse) == 1
    fine = usage._pieces_for(edges, usage.MAX_ARRAY_RANGES)
    assert {piece.grain for piece in fine} == {grains.QUARTER_HOUR, grains.HOUR}
    assert usage.MAX_RANGES < len(fine) <= usage.MAX_ARRAY_RANGES
    # The same span, cut the same way at every edge: nothing dropped, nothing doubled.
    assert sum(piece.high - piece.low for piece in fine) == (
        sum(piece.high - piece.low for piece in coarse)
    )
