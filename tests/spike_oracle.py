"""The spike method of docs/spikes.md, recomputed in plain Python from a test's raw events.

Independent of domain/spikes.py and of the database: buckets from ``tests.oracle`` (which
labels instants by their local period), sums over the events, then the documented rule.
Ranges given here start and end on period edges, so every bucket is a whole period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests import oracle

# docs/spikes.md, "Parameters"
SAMPLES = {"HOUR": 4, "DAY": 8, "WEEK": 8}
MIN_SAMPLES = {"HOUR": 3, "DAY": 4, "WEEK": 4}
HISTORY = {"HOUR": timedelta(weeks=4), "DAY": timedelta(weeks=8), "WEEK": timedelta(weeks=8)}
SIGMAS, MIN_RATIO, FLOOR_FRACTION, FLOOR_CREDITS = 3.5, 1.5, 0.1, 2.0
DRIVERS = 3


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _phase(instant: datetime, zone: str, granularity: str) -> tuple[int, ...]:
    wall = instant.astimezone(ZoneInfo(zone))
    if granularity == "HOUR":
        return (wall.weekday(), wall.hour)
    if granularity == "DAY":
        return (wall.weekday(),)
    return ()


def buckets(start: datetime, end: datetime, zone: str, granularity: str) -> list[datetime]:
    """Edges of the history (local wall time moved back by whole weeks) and the range."""
    wall = start.astimezone(ZoneInfo(zone)).replace(tzinfo=None) - HISTORY[granularity]
    history_start = wall.replace(tzinfo=ZoneInfo(zone)).astimezone(start.tzinfo)
    history = oracle.bucket_edges(history_start, start, zone, granularity)
    return history[:-1] + oracle.bucket_edges(start, end, zone, granularity)


def _sums(
    events: list[dict[str, Any]], edges: list[datetime], group: Callable[[dict[str, Any]], Any]
) -> dict[Any, list[int]]:
    sums: dict[Any, list[int]] = defaultdict(lambda: [0] * (len(edges) - 1))
    for item in oracle.select(events, edges[0], edges[-1]):
        at = oracle.when(item)
        index = max(i for i, edge in enumerate(edges[:-1]) if edge <= at)
        sums[group(item)][index] += item["credits"]
    return sums


def _baseline(edges, credits, index, zone, granularity) -> list[int]:
    """Indexes of the same-phase buckets before ``index``, nearest first, none before the
    first bucket with credits."""
    active = [i for i, value in enumerate(credits) if value]
    if not active:
        return []
    wanted = _phase(edges[index], zone, granularity)
    same = [
        i
        for i in range(index - 1, active[0] - 1, -1)
        if _phase(edges[i], zone, granularity) == wanted
    ]
    return same[: SAMPLES[granularity]]


def _scaled(edges, values, indexes, index) -> list[float]:
    length = (edges[index + 1] - edges[index]).total_seconds()
    return [values[i] * length / (edges[i + 1] - edges[i]).total_seconds() for i in indexes]


def spikes(
    events: list[dict[str, Any]], start: datetime, end: datetime, zone: str, granularity: str
) -> list[dict[str, Any]]:
    """[{start, end, credits, expected, excess, drivers: {dimension: [(value, credits,
    expected, excess, share)]}}] as docs/spikes.md defines them."""
    edges = buckets(start, end, zone, granularity)
    credits = _sums(events, edges, lambda item: "")[""]
    first = edges.index(start)
    baselines = {}
    for index in range(len(edges) - 1):
        indexes = _baseline(edges, credits, index, zone, granularity)
        if len(indexes) < MIN_SAMPLES[granularity]:
            continue
        history = _scaled(edges, credits, indexes, index)
        expected = _median(history)
        sigma = 1.4826 * _median([abs(value - expected) for value in history])
        baselines[index] = (indexes, expected, max(sigma, FLOOR_FRACTION * expected, FLOOR_CREDITS))
    # The series' dispersion against counts: robust spread of Poisson-scaled residuals.
    residuals = [
        abs(credits[index] - expected) / max(expected, 1.0) ** 0.5
        for index, (_, expected, _) in baselines.items()
    ]
    factor = max(1.0, (1.4826 * _median(residuals)) ** 2) if residuals else 1.0
    found = []
    for index in range(first, len(edges) - 1):
        if index not in baselines:
            continue
        indexes, expected, sigma = baselines[index]
        sigma = max(sigma, (factor * expected) ** 0.5)
        value = credits[index]
        if value <= expected + SIGMAS * sigma or value <= MIN_RATIO * expected:
            continue
        excess = value - round(expected)
        found.append(
            {
                "start": edges[index],
                "end": edges[index + 1],
                "credits": value,
                "expected": round(expected),
                "excess": excess,
                "drivers": _drivers(events, edges, index, indexes, excess),
            }
        )
    return found


GROUPS = {
    "API_KEY": lambda item: oracle.key_of(item) or "",
    "ENDPOINT": lambda item: item["endpoint"],
    "SOURCE": lambda item: item["source"],
    "USER": lambda item: oracle.user_of(item) or "",
}


def _drivers(events, edges, index, indexes, excess) -> dict[str, list[tuple]]:
    found = {}
    for dimension, group in GROUPS.items():
        rows = []
        for value, credits in _sums(events, edges, group).items():
            if not credits[index]:
                continue
            expected = round(_median(_scaled(edges, credits, indexes, index)))
            grew = credits[index] - expected
            if grew > 0:
                rows.append((value, credits[index], expected, grew, round(grew / excess, 4)))
        rows.sort(key=lambda row: (-row[3], -row[1], str(row[0])))
        found[dimension] = rows[:DRIVERS]
    return found
