"""Spikes of a usage report: its series and the history before it, judged by
``domain.spikes``; drivers read per dimension only when asked (docs/spikes.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from db.queries import reports
from db.queries.directory import api_keys_by_id, users_by_id
from db.queries.usage import tally
from db.rollup_keys import NO_KEY
from domain.dimensions import Dimension, UsageDimension
from domain.periods import Granularity, floor_wall, local_start, next_wall, period_edges
from domain.records import ApiKeyRecord, UserRecord
from domain.spikes import METHODS, Driver, Point, Spike, find_drivers, find_spikes, phase
from domain.spikes import history_wall_start as _history_wall_start
from resolvers import usage as usage_resolvers
from resolvers.context import Context
from resolvers.usage import ReportScope

# The breakdown each dimension of drivers is read from (API keys: the per-key totals).
STORED = {
    UsageDimension.ENDPOINT: Dimension.ENDPOINT,
    UsageDimension.SOURCE: Dimension.SOURCE,
    UsageDimension.USER: Dimension.USER,
    UsageDimension.API_KEY: Dimension.TOTAL,
}
GAP = -1  # the phase of the piece of a period before a range that starts inside it
# Buckets whose values are read for drivers, per request and dimension: the spikes with the
# largest excess are explained first (a DAY spike needs 9, an HOUR spike 5).
MAX_DRIVER_BUCKETS = 45


@dataclass(frozen=True, slots=True)
class DriverRow:
    dimension: UsageDimension
    driver: Driver
    label: str  # the value as clients know it: an endpoint, a source, an external id
    api_key: ApiKeyRecord | None = None
    user: UserRecord | None = None


@dataclass(frozen=True, slots=True)
class SpikeRow:
    start: datetime
    end: datetime
    spike: Spike


@dataclass(eq=False)
class SpikeAnalysis:
    """The spikes of one report and granularity, and (read once, when first asked) the
    drivers of all of them."""

    report: ReportScope
    edges: list[datetime]  # of every point: history, then the report's buckets
    points: list[Point]
    spikes: list[SpikeRow]
    _drivers: dict[int, list[DriverRow]] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def drivers(self, context: Context, row: SpikeRow) -> list[DriverRow]:
        async with self._lock:
            if self._drivers is None:
                self._drivers = await _all_drivers(context, self)
        return self._drivers.get(row.spike.index, [])


def _history_edges(
    report: ReportScope, granularity: Granularity
) -> tuple[list[datetime], datetime]:
    """Edges of the history buckets (whole periods before the report's first period), and
    the instant they end at (the start of the period holding the report's start)."""
    zone = report.range.zone
    wall = floor_wall(report.range.start.astimezone(zone).replace(tzinfo=None), granularity)
    try:
        end = local_start(wall, zone)
        start = local_start(_history_wall_start(wall, granularity), zone)
    except (OverflowError, ValueError):
        return [], report.range.start  # before the first day of the calendar: no history
    return period_edges(start, end, granularity, zone), end


def _point(start: datetime, credits: int, granularity: Granularity, report: ReportScope) -> Point:
    zone = report.range.zone
    wall = floor_wall(start.astimezone(zone).replace(tzinfo=None), granularity)
    try:
        length = (
            local_start(next_wall(wall, granularity), zone) - local_start(wall, zone)
        ).total_seconds()
    except (OverflowError, ValueError):
        length = 0.0
    if length <= 0:
        length = 1.0  # the last period of the calendar: its length matters to no one
    return Point(phase(start.astimezone(zone).replace(tzinfo=None), granularity), length, credits)


async def analyse(context: Context, report: ReportScope, granularity: Granularity) -> SpikeAnalysis:
    """The report's spikes at ``granularity``. The report's buckets are read and checked
    against ``max_series_points`` by ``series`` itself; the history before them adds a fixed
    number of whole periods per granularity (``domain.spikes.METHODS``), read by the same
    query over their edges."""
    report_buckets = await usage_resolvers.series(context, report, granularity)
    edges, history_end = _history_edges(report, granularity)
    gap = history_end < report.range.start  # the range starts inside a period
    if gap and edges:
        edges.append(report.range.start)
    points: list[Point] = []
    if len(edges) > 1:
        async with context.db.connection() as conn:
            tallies = await reports.series(
                conn,
                organization_id=report.organization.id,
                edges=edges,
                api_key_ids=report.key_filter,
                outcomes=report.outcomes,
            )
        points = [
            _point(low, figures.credits, granularity, report)
            for low, figures in zip(edges[:-1], tallies, strict=True)
        ]
        if gap:
            # The piece of a period before the range is history, but like no other bucket.
            points[-1] = Point(GAP, points[-1].length, points[-1].credits)
    else:
        edges = [report.range.start]
    first = len(points)
    for bucket in report_buckets:
        points.append(_point(bucket.start, bucket.tally.credits, granularity, report))
        edges.append(bucket.end)
    rows = [
        SpikeRow(edges[spike.index], edges[spike.index + 1], spike)
        for spike in find_spikes(points, first, METHODS[granularity])
    ]
    return SpikeAnalysis(report, edges, points, rows)


async def _per_value(
    context: Context, analysis: SpikeAnalysis, dimension: UsageDimension, run: range
) -> dict[str | int, dict[int, int]]:
    """Credits per value and point index, for the contiguous points of ``run``."""
    report = analysis.report
    async with context.db.connection() as conn:
        sums = await tally(
            conn,
            organization_id=report.organization.id,
            dimension=STORED[dimension],
            edges=analysis.edges[run.start : run.stop + 1],
            api_key_ids=report.key_filter,
            by_key=dimension is UsageDimension.API_KEY,
            outcomes=report.outcomes,
        )
    found: dict[str | int, dict[int, int]] = {}
    for (key, index, value), figures in sums.items():
        name: str | int = key if dimension is UsageDimension.API_KEY else value
        if figures.credits:
            slot = found.setdefault(name, {})
            slot[run.start + index] = slot.get(run.start + index, 0) + figures.credits
    return found


def _runs(indexes: set[int]) -> list[range]:
    """``indexes`` as runs of consecutive indexes, so each run is one read."""
    runs: list[range] = []
    for index in sorted(indexes):
        if runs and runs[-1].stop == index:
            runs[-1] = range(runs[-1].start, index + 1)
        else:
            runs.append(range(index, index + 1))
    return runs


def explained(spikes: list[SpikeRow]) -> list[SpikeRow]:
    """The spikes whose drivers are read: by excess, as many as ``MAX_DRIVER_BUCKETS``
    buckets (each spike's own and its baseline's) allow."""
    chosen: list[SpikeRow] = []
    needed: set[int] = set()
    for row in sorted(spikes, key=lambda row: -row.spike.excess):
        wanted = needed | {row.spike.index, *row.spike.baseline}
        if len(wanted) > MAX_DRIVER_BUCKETS:
            break
        chosen.append(row)
        needed = wanted
    return chosen


async def _all_drivers(context: Context, analysis: SpikeAnalysis) -> dict[int, list[DriverRow]]:
    """Drivers of the spikes ``explained`` chooses: per dimension, one read per run of
    consecutive buckets among theirs and their baselines' (not the span between them,
    whose rows per value and hour grow with the history)."""
    chosen = explained(analysis.spikes)
    if not chosen:
        return {}
    runs = _runs({index for row in chosen for index in (row.spike.index, *row.spike.baseline)})
    found: dict[int, list[tuple[UsageDimension, Driver]]] = {}
    for dimension in UsageDimension:
        per_value: dict[str | int, dict[int, int]] = {}
        for run in runs:
            for value, credits_at in (await _per_value(context, analysis, dimension, run)).items():
                per_value.setdefault(value, {}).update(credits_at)
        for row in chosen:
            for driver in find_drivers(row.spike, analysis.points, per_value):
                found.setdefault(row.spike.index, []).append((dimension, driver))
    keys = {
        int(driver.value)
        for drivers in found.values()
        for dimension, driver in drivers
        if dimension is UsageDimension.API_KEY and driver.value != NO_KEY
    }
    users = {
        int(driver.value)
        for drivers in found.values()
        for dimension, driver in drivers
        if dimension is UsageDimension.USER and driver.value != ""
    }
    organization_id = analysis.report.organization.id
    async with context.db.connection() as conn:
        key_rows = await api_keys_by_id(conn, organization_id=organization_id, key_ids=keys)
        user_rows = await users_by_id(conn, organization_id=organization_id, user_ids=users)
    return {
        index: [_row(dimension, driver, key_rows, user_rows) for dimension, driver in drivers]
        for index, drivers in found.items()
    }


def _row(
    dimension: UsageDimension,
    driver: Driver,
    keys: Mapping[int, ApiKeyRecord],
    users: Mapping[int, UserRecord],
) -> DriverRow:
    if dimension is UsageDimension.API_KEY:
        key = None if driver.value == NO_KEY else keys.get(int(driver.value))
        return DriverRow(dimension, driver, "" if key is None else key.external_id, api_key=key)
    if dimension is UsageDimension.USER:
        user = None if driver.value == "" else users.get(int(driver.value))
        return DriverRow(dimension, driver, "" if user is None else user.external_id, user=user)
    return DriverRow(dimension, driver, str(driver.value))
