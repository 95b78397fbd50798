"""The independent computation: plain Python over the raw events a test sent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo


def when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


def key_of(event: dict[str, Any]) -> str | None:
    ref = event.get("api_key")
    return ref["id"] if isinstance(ref, dict) else ref


def user_of(event: dict[str, Any]) -> str | None:
    ref = event.get("user")
    return ref["id"] if isinstance(ref, dict) else ref


def outcome_of(event: dict[str, Any]) -> str:
    """The call outcome of an event, from shared/DESIGN.md's table ("Domain"), written out
    here rather than taken from domain/outcomes.py so the tests check that module."""
    status = event["status"]
    if status == 404:
        return "NO_RESULT"
    if status == 429:
        return "RATE_LIMITED"
    if 400 <= status < 500:
        return "CLIENT_ERROR"
    if status >= 500:
        return "SERVER_ERROR"
    return "NO_RESULT" if event.get("outcome") == "no_result" else "SUCCESS"


def unique(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """First occurrence of each (organization, id): what exactly-once ingestion stores."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for item in events:
        seen.setdefault((str(item["organization"]), item["id"]), item)
    return list(seen.values())


def select(
    events: Iterable[dict[str, Any]],
    start: datetime,
    end: datetime,
    key: str | None = None,
) -> list[dict[str, Any]]:
    return [
        item
        for item in unique(events)
        if start <= when(item) < end and (key is None or key_of(item) == key)
    ]


def table(
    events: Iterable[dict[str, Any]], group: Callable[[dict[str, Any]], Any]
) -> list[tuple[Any, int, int]]:
    """(group, calls, credits) ordered by credits, then calls (descending), then name."""
    sums: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for item in events:
        slot = sums[group(item)]
        slot[0] += 1
        slot[1] += item["credits"]
    rows = [(name, calls, credits) for name, (calls, credits) in sums.items()]
    rows.sort(key=lambda row: (-row[2], -row[1], str(row[0])))
    return rows


# Calendar periods, computed independently of domain/periods.py: label every instant of a
# range by the local wall-clock period it shows, and start a bucket wherever the label
# passes every label seen before. When clocks go back, the repeated wall time keeps the
# bucket it first appeared in (a repeated hour makes one longer bucket, as documented in
# docs/reports.md). Walking the 15-minute UTC grid finds the quarter hour in which the
# label changes; a bisection on whole seconds inside it finds the instant. tzdata offsets
# are whole seconds, so every change is on a whole second: on the grid itself for today's
# offsets, anywhere for historical ones (+00:19:32, -00:44:30, local mean time). This
# assumes at most one change per quarter hour, true of every zone in tzdata.
GRID = timedelta(minutes=15)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def period_label(instant: datetime, zone: str, granularity: str) -> tuple[int, ...]:
    """The local period (by its calendar fields) that ``instant`` falls in."""
    wall = instant.astimezone(ZoneInfo(zone))
    if granularity == "HOUR":
        return (wall.year, wall.month, wall.day, wall.hour)
    if granularity == "DAY":
        return (wall.year, wall.month, wall.day)
    if granularity == "WEEK":
        year, week, _ = wall.isocalendar()
        return (year, week)
    return (wall.year, wall.month)


def _first_change(
    low: datetime, high: datetime, zone: str, granularity: str, label: tuple[int, ...]
) -> datetime:
    """The first whole second in ``(low, high]`` whose label passes ``label``; ``high``'s does."""
    below = (low - EPOCH) // SECOND  # its label (or that of ``low``, the same second) does not
    above = (high - EPOCH) // SECOND
    while above - below > 1:
        middle = (below + above) // 2
        if period_label(EPOCH + middle * SECOND, zone, granularity) > label:
            above = middle
        else:
            below = middle
    return EPOCH + above * SECOND


def bucket_edges(start: datetime, end: datetime, zone: str, granularity: str) -> list[datetime]:
    """``[start, e1, …, end]``: where the local period changes inside ``[start, end)``."""
    edges = [start]
    # A range may start inside a repeated wall time: its bucket is the one the latest period
    # seen so far began, so take the history of the two days before into account.
    label = period_label(start, zone, granularity)
    point = start - timedelta(days=2)
    while point < start:
        label = max(label, period_label(point, zone, granularity))
        point += GRID
    previous = start
    point = EPOCH + ((start - EPOCH) // GRID + 1) * GRID  # the first grid point after start
    while previous < end:
        now = period_label(min(point, end), zone, granularity)
        if now > label:
            edge = _first_change(previous, min(point, end), zone, granularity, label)
            if edge < end:
                edges.append(edge)
            label = now
        previous = point
        point += GRID
    edges.append(end)
    return edges


def series(
    events: Iterable[dict[str, Any]],
    start: datetime,
    end: datetime,
    zone: str,
    granularity: str,
    key: str | None = None,
) -> list[tuple[datetime, datetime, int, int]]:
    """(start, end, calls, credits) per local period of ``[start, end)``, zeros included."""
    edges = bucket_edges(start, end, zone, granularity)
    sums = [[0, 0] for _ in edges[:-1]]
    for item in select(events, start, end, key):
        index = max(i for i, edge in enumerate(edges[:-1]) if edge <= when(item))
        sums[index][0] += 1
        sums[index][1] += item["credits"]
    return [
        (low, high, calls, credits)
        for low, high, (calls, credits) in zip(edges[:-1], edges[1:], sums, strict=True)
    ]


def totals(events: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """(calls, credits) of already selected events."""
    items = list(events)
    return len(items), sum(item["credits"] for item in items)


def percents(rows: list[tuple[Any, int, int]]) -> list[float]:
    """Each row's share of the credits, or of the calls when no call cost credits."""
    credits = sum(row[2] for row in rows)
    calls = sum(row[1] for row in rows)
    if credits:
        return [100.0 * row[2] / credits for row in rows]
    return [100.0 * row[1] / calls if calls else 0.0 for row in rows]


# Zones whose calendars are hard: DST both ways, 30- and 45-minute offsets, +12:45, and
# midnights that do not exist. Shared by the pinned and the property-based tests.
TRICKY_ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/Havana",
    "America/Santiago",
]

# Zones whose offsets were off the 15-minute grid, with a window of such years each:
# (zone, first, last, events can be stored there). Ingestion accepts events from 2000 on,
# so tests write these through the writer, and only from 1970 on: rollup buckets are
# ``epoch - epoch % grain``, which SQL rounds toward zero before 1970. So only Monrovia and
# Kiritimati hold events; the older windows check the bucket edges.
OFF_GRID_WINDOWS = [
    ("Africa/Monrovia", datetime(1970, 1, 1, tzinfo=UTC), datetime(1972, 2, 1, tzinfo=UTC), True),
    (
        "Pacific/Kiritimati",
        datetime(1979, 1, 1, tzinfo=UTC),
        datetime(1980, 1, 1, tzinfo=UTC),
        True,
    ),
    ("Europe/Amsterdam", datetime(1930, 1, 1, tzinfo=UTC), datetime(1938, 1, 1, tzinfo=UTC), False),
    ("Asia/Kolkata", datetime(1853, 1, 1, tzinfo=UTC), datetime(1907, 1, 1, tzinfo=UTC), False),
    ("Europe/Berlin", datetime(1892, 1, 1, tzinfo=UTC), datetime(1894, 1, 1, tzinfo=UTC), False),
]
