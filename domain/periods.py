"""Calendar periods (hour, day, ISO week, month) in an IANA time zone, as UTC instants.

Pure functions, no SQL. A local period starts at the first instant whose local wall time
is on or after the period's first wall time: that is exact across DST changes (23- and
25-hour days), for a midnight that does not exist (zones that spring forward at 00:00)
and for offsets such as +05:30, +05:45 and +12:45.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo


class Granularity(Enum):
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


# The shortest each period can be in any time zone, so a count of periods is never too low.
SHORTEST = {
    Granularity.HOUR: timedelta(minutes=30),  # a DST change of 30 minutes (Lord Howe Island)
    Granularity.DAY: timedelta(hours=23),
    Granularity.WEEK: timedelta(days=7, hours=-1),
    Granularity.MONTH: timedelta(days=28, hours=-1),
}


def local_start(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant at which local wall time ``wall`` (naive) begins in ``tz``.

    An ambiguous wall time (clocks going back) maps to its first occurrence. A wall time
    inside a gap (clocks going forward) maps to the end of the gap: the first instant whose
    wall time is later than ``wall``.
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # Inside a gap: fold=1 maps before the transition, fold=0 after it, and the answer is
    # the transition itself. Bisect on whole microseconds, so it ends for any offset (tzdata
    # has transitions off the minute, e.g. Antarctica/Casey) and is exact.
    # Invariant: the wall time at ``low`` is before ``wall``, at ``high`` it is not.
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = min(first, other), max(first, other)
    step = timedelta(microseconds=1)
    while high - low > step:
        middle = low + (high - low) // 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def floor_wall(wall: datetime, granularity: Granularity) -> datetime:
    """The first wall time of the period that contains ``wall`` (naive)."""
    if granularity is Granularity.HOUR:
        return wall.replace(minute=0, second=0, microsecond=0)
    day = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity is Granularity.DAY:
        return day
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_wall(wall: datetime, granularity: Granularity, periods: int = 1) -> datetime:
    """The first wall time of the period ``periods`` after the one starting at ``wall``
    (the next one by default; a negative count goes back)."""
    if granularity is Granularity.HOUR:
        return wall + timedelta(hours=periods)
    if granularity is Granularity.DAY:
        return wall + timedelta(days=periods)
    if granularity is Granularity.WEEK:
        return wall + timedelta(weeks=periods)
    return add_months(wall, periods)


def add_months(wall: datetime, months: int) -> datetime:
    """``wall`` moved by whole months, its day clamped to the target month's length."""
    index = wall.year * 12 + wall.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return wall.replace(year=year, month=month, day=min(wall.day, _month_length(year, month)))


def _month_length(year: int, month: int) -> int:
    if month == 12:
        return 31  # and no date(year + 1, 1, 1), which does not exist after December 9999
    return (date(year, month + 1, 1) - date(year, month, 1)).days


def period_edges(
    start: datetime, end: datetime, granularity: Granularity, tz: ZoneInfo
) -> list[datetime]:
    """UTC edges of the local periods covering ``[start, end)``, clipped to it.

    Returns ``[start, e1, e2, …, end]``: n + 1 edges for n buckets. The first and last
    bucket are partial when ``start`` or ``end`` falls inside a period. ``start`` and ``end``
    must have a local wall time in ``tz`` (``domain.time_range`` checks it).
    """
    if end <= start:
        return [start]
    edges = [start]
    wall = floor_wall(start.astimezone(tz).replace(tzinfo=None), granularity)
    while True:
        try:
            wall = next_wall(wall, granularity)
            instant = local_start(wall, tz)
        except (OverflowError, ValueError):
            # The next period starts after 9999-12-31 (as a wall time or in UTC), so after
            # ``end``, whose wall time exists: the last bucket ends at ``end``.
            break
        if instant <= edges[-1]:
            # A period swallowed by a DST gap (an hour that never happened) has no instant.
            continue
        if instant >= end:
            break
        edges.append(instant)
    edges.append(end)
    return edges


def count_periods(start: datetime, end: datetime, granularity: Granularity, tz: ZoneInfo) -> int:
    """An upper bound on the number of buckets in ``[start, end)``, computed without
    walking them, so a too-large series is refused before any work."""
    seconds = (end - start).total_seconds()
    length = {
        Granularity.HOUR: 3600,
        Granularity.DAY: 86400,
        Granularity.WEEK: 7 * 86400,
        Granularity.MONTH: 28 * 86400,
    }[granularity]
    return int(seconds // length) + 2


GRID = timedelta(minutes=15)  # the finest rollup grain (db.grains.QUARTER_HOUR)


def off_grid_offset(edges: list[datetime], tz: ZoneInfo) -> timedelta | None:
    """A UTC offset of ``tz`` off the 15-minute grid at one of the inner ``edges``, if any.

    Every offset in use today is a multiple of 15 minutes; many zones had others before
    the 1970s (Europe/Amsterdam +00:19:32 until 1937, Africa/Monrovia -00:44:30 until
    1972, and local mean time before standard time), which put period edges off the grid.
    """
    for edge in edges[1:-1]:
        offset = edge.astimezone(tz).utcoffset()
        if offset is not None and offset % GRID:
            return offset
    return None


def format_offset(offset: timedelta) -> str:
    """``+00:19:32`` or ``-00:44:30``; seconds only when there are any."""
    sign = "-" if offset < timedelta(0) else "+"
    seconds = abs(int(offset.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{text}:{seconds:02d}" if seconds else text
