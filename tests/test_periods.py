"""Calendar periods in IANA zones, as UTC edges: DST days, odd offsets, missing midnights."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.periods import Granularity, add_months, count_periods, local_start, period_edges
from tests import oracle


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def wall(*parts: int) -> datetime:
    """A naive wall-clock time, what ``local_start`` reads in a zone."""
    return datetime(*parts, tzinfo=UTC).replace(tzinfo=None)


def day_edges(zone: str, year: int, month: int, day: int) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    first = wall(year, month, day)
    return local_start(first, tz), local_start(first + timedelta(days=1), tz)


@pytest.mark.parametrize(
    ("zone", "day", "start", "hours"),
    [
        ("America/New_York", (2026, 3, 8), utc(2026, 3, 8, 5), 23),
        ("America/New_York", (2026, 11, 1), utc(2026, 11, 1, 4), 25),
        ("America/New_York", (2026, 6, 15), utc(2026, 6, 15, 4), 24),
        ("Europe/Berlin", (2026, 3, 29), utc(2026, 3, 28, 23), 23),
        ("Europe/Berlin", (2026, 10, 25), utc(2026, 10, 24, 22), 25),
        # Lord Howe moves its clocks by 30 minutes: 23.5- and 24.5-hour days.
        ("Australia/Lord_Howe", (2026, 10, 4), utc(2026, 10, 3, 13, 30), 23.5),
        ("Australia/Lord_Howe", (2026, 4, 5), utc(2026, 4, 4, 13), 24.5),
        ("Asia/Kolkata", (2026, 6, 15), utc(2026, 6, 14, 18, 30), 24),
        ("Asia/Kathmandu", (2026, 6, 15), utc(2026, 6, 14, 18, 15), 24),
        ("Pacific/Chatham", (2026, 6, 15), utc(2026, 6, 14, 11, 15), 24),
        ("Pacific/Chatham", (2026, 9, 27), utc(2026, 9, 26, 11, 15), 23),
        ("Pacific/Chatham", (2026, 4, 5), utc(2026, 4, 4, 10, 15), 25),
        # Midnight does not exist on these days: the day starts when clocks jump to 01:00.
        ("America/Havana", (2026, 3, 8), utc(2026, 3, 8, 5), 23),
        ("America/Santiago", (2026, 9, 6), utc(2026, 9, 6, 4), 23),
        ("Africa/Cairo", (2026, 4, 24), utc(2026, 4, 23, 22), 23),
    ],
    ids=[
        "new-york-spring",
        "new-york-fall",
        "new-york-plain",
        "berlin-spring",
        "berlin-fall",
        "lord-howe-spring",
        "lord-howe-fall",
        "kolkata",
        "kathmandu",
        "chatham",
        "chatham-spring",
        "chatham-fall",
        "havana-no-midnight",
        "santiago-no-midnight",
        "cairo-no-midnight",
    ],
)
def test_a_local_day_starts_and_lasts_as_its_wall_clock_says(zone, day, start, hours):
    low, high = day_edges(zone, *day)
    assert low == start
    assert high - low == timedelta(hours=hours)


def test_a_wall_time_in_a_gap_starts_when_the_clocks_jump():
    # New York skips 02:00-03:00 on 2026-03-08; 02:30 never happens.
    assert local_start(wall(2026, 3, 8, 2, 30), ZoneInfo("America/New_York")) == utc(2026, 3, 8, 7)
    # Lord Howe skips 02:00-02:30.
    assert local_start(wall(2026, 10, 4, 2, 10), ZoneInfo("Australia/Lord_Howe")) == utc(
        2026, 10, 3, 15, 30
    )


def test_a_repeated_wall_time_starts_at_its_first_occurrence():
    # 01:30 happens twice in New York on 2026-11-01: first at EDT (-4).
    assert local_start(wall(2026, 11, 1, 1, 30), ZoneInfo("America/New_York")) == utc(
        2026, 11, 1, 5, 30
    )


def test_hour_series_across_fall_back_keeps_the_repeated_hour_in_one_bucket():
    tz = ZoneInfo("America/New_York")
    low, high = day_edges("America/New_York", 2026, 11, 1)
    edges = period_edges(low, high, Granularity.HOUR, tz)
    lengths = [b - a for a, b in itertools.pairwise(edges)]
    assert len(lengths) == 24  # one bucket per wall-clock hour 00..23
    assert lengths[1] == timedelta(hours=2)  # 01:00 EDT .. 02:00 EST
    assert all(length == timedelta(hours=1) for i, length in enumerate(lengths) if i != 1)
    assert edges[1:3] == [utc(2026, 11, 1, 5), utc(2026, 11, 1, 7)]


def test_hour_series_across_spring_forward_skips_the_missing_hour():
    tz = ZoneInfo("Europe/Berlin")
    low, high = day_edges("Europe/Berlin", 2026, 3, 29)
    edges = period_edges(low, high, Granularity.HOUR, tz)
    assert len(edges) - 1 == 23
    walls = [edge.astimezone(tz).hour for edge in edges[:-1]]
    assert 2 not in walls
    assert walls == [0, 1, *range(3, 24)]


def test_hour_series_in_lord_howe_has_a_half_hour_bucket_when_clocks_jump():
    tz = ZoneInfo("Australia/Lord_Howe")
    low, high = day_edges("Australia/Lord_Howe", 2026, 10, 4)
    edges = period_edges(low, high, Granularity.HOUR, tz)
    lengths = [b - a for a, b in itertools.pairwise(edges)]
    assert len(lengths) == 24
    assert lengths[2] == timedelta(minutes=30)  # wall 02:30-03:00: the rest of hour 2
    assert sum(lengths, timedelta()) == timedelta(hours=23, minutes=30)


def test_iso_weeks_start_on_monday_at_local_midnight():
    tz = ZoneInfo("Asia/Kolkata")
    edges = period_edges(utc(2026, 6, 1), utc(2026, 6, 30), Granularity.WEEK, tz)
    inner = edges[1:-1]
    assert inner == [utc(2026, 6, day, 18, 30) for day in (7, 14, 21, 28)]
    assert {edge.astimezone(tz).weekday() for edge in inner} == {0}


def test_a_week_spanning_a_dst_change_is_167_hours():
    tz = ZoneInfo("America/New_York")
    edges = period_edges(utc(2026, 3, 2, 5), utc(2026, 3, 9, 4), Granularity.WEEK, tz)
    assert edges == [utc(2026, 3, 2, 5), utc(2026, 3, 9, 4)]
    assert edges[1] - edges[0] == timedelta(hours=167)


def test_months_start_at_local_midnight_of_the_first():
    tz = ZoneInfo("Pacific/Chatham")
    edges = period_edges(utc(2026, 1, 1), utc(2026, 6, 1), Granularity.MONTH, tz)
    # Chatham is +13:45 until April 5, +12:45 after.
    assert edges[1:-1] == [
        utc(2026, 1, 31, 10, 15),
        utc(2026, 2, 28, 10, 15),
        utc(2026, 3, 31, 10, 15),
        utc(2026, 4, 30, 11, 15),
        utc(2026, 5, 31, 11, 15),
    ]


def test_edges_are_clipped_to_a_ragged_range():
    tz = ZoneInfo("Europe/Berlin")
    start, end = utc(2026, 6, 1, 7, 13, 5), utc(2026, 6, 3, 1, 2, 3)
    edges = period_edges(start, end, Granularity.DAY, tz)
    assert edges == [start, utc(2026, 6, 1, 22), utc(2026, 6, 2, 22), end]


def test_add_months_clamps_to_the_month_length():
    assert add_months(wall(2026, 1, 31, 9), 1) == wall(2026, 2, 28, 9)
    assert add_months(wall(2024, 1, 31), 1) == wall(2024, 2, 29)
    assert add_months(wall(2026, 1, 31), 2) == wall(2026, 3, 31)
    assert add_months(wall(2026, 3, 30), -1) == wall(2026, 2, 28)
    assert add_months(wall(2026, 12, 15), 1) == wall(2027, 1, 15)


ZONES = oracle.TRICKY_ZONES


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    granularity=st.sampled_from(list(Granularity)),
    start=st.datetimes(wall(2025, 1, 1), wall(2027, 1, 1)),
    length=st.timedeltas(timedelta(minutes=1), timedelta(days=70)),
)
def test_every_edge_is_the_first_instant_of_its_local_period(zone, granularity, start, length):
    tz = ZoneInfo(zone)
    low = start.replace(tzinfo=UTC)
    high = low + length
    edges = period_edges(low, high, granularity, tz)
    assert edges[0] == low
    assert edges[-1] == high
    assert all(a < b for a, b in itertools.pairwise(edges))
    assert len(edges) - 1 <= count_periods(low, high, granularity, tz) * 2
    for edge in edges[1:-1]:
        before = (edge - timedelta(microseconds=1)).astimezone(tz).replace(tzinfo=None)
        after = edge.astimezone(tz).replace(tzinfo=None)
        assert _period(before, granularity) != _period(after, granularity)


def _period(wall: datetime, granularity: Granularity) -> tuple[int, ...]:
    if granularity is Granularity.HOUR:
        return (wall.year, wall.month, wall.day, wall.hour)
    if granularity is Granularity.DAY:
        return (wall.year, wall.month, wall.day)
    if granularity is Granularity.WEEK:
        return tuple(wall.isocalendar())[:2]
    return (wall.year, wall.month)
