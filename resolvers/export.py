"""The rows of a usage export (``GET /v1/exports/usage.csv``, ``creditlens export``).

The same code path as the GraphQL reports: the range and key are resolved by
``resolvers.usage.scope``, every figure is ``db.queries.usage.tally`` ranked by
``db.queries.reports.ranked`` (docs/reports.md, "One code path"), so the rows of a range
sum to what ``Organization.usage`` answers. What differs is the size: an export lists every
row (no ``limit``, no "other" row) and may cut a year into hours, so it is produced in
chunks of at most ``BUCKETS_PER_CHUNK`` buckets, each read, ranked, handed on and dropped
before the next is read: memory stays flat however long the range (docs/export.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from db.queries import reports
from db.queries.directory import api_keys_by_id, users_by_id
from db.queries.usage import RawScanTooLarge, tally
from db.rollup_keys import NO_KEY
from domain.dimensions import Dimension
from domain.errors import InvalidInput
from domain.periods import (
    SHORTEST,
    Granularity,
    format_offset,
    off_grid_offset,
    period_edges,
)
from domain.records import Share, Tally
from resolvers.context import Context
from resolvers.usage import LOOKUP_CHUNK, ReportScope

# What one statement reads: at most this many buckets, and at most a week of them unless
# one bucket is longer. The week bounds the rollup rows read (a day that is not a UTC day
# is summed from hour rows: 168 local days would be 4,032 hours of rows per group); the
# count bounds the rows produced. A year is about 52 statements at any granularity.
BUCKETS_PER_CHUNK = 168
CHUNK_SPAN = timedelta(days=7)


class ExportGroup(Enum):
    """What an export's rows are grouped by (its ``groupBy``); the value is the CSV
    header of the group column."""

    ENDPOINT = "endpoint"
    SOURCE = "source"
    USER = "user"
    API_KEY = "api_key"
    OUTCOME = "outcome"


DIMENSION = {
    ExportGroup.ENDPOINT: Dimension.ENDPOINT,
    ExportGroup.SOURCE: Dimension.SOURCE,
    ExportGroup.USER: Dimension.USER,
    ExportGroup.API_KEY: Dimension.TOTAL,  # grouped by key instead (``by_key``)
    ExportGroup.OUTCOME: Dimension.TOTAL,  # grouped by outcome instead (``by_outcome``)
}


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One row: a group's figures in a bucket (``start``/``end`` None without buckets).
    ``label`` is the endpoint, source or outcome (``NO_RESULT``), or the id of the user or
    key ("" for calls without one); ``percent`` is the row's share of its bucket's credits
    (of the calls when none cost credits), as in ``UsageShare.percentOfTotal``."""

    start: datetime | None
    end: datetime | None
    label: str
    calls: int
    credits: int
    percent: float


def _chunks(edges_of: Iterator[datetime]) -> Iterator[list[datetime]]:
    """Consecutive runs of buckets (sharing their edges): at most ``BUCKETS_PER_CHUNK``,
    and spanning at most ``CHUNK_SPAN`` unless a single bucket is longer."""
    chunk: list[datetime] = []
    for edge in edges_of:
        chunk.append(edge)
        buckets = len(chunk) - 1
        if buckets >= BUCKETS_PER_CHUNK or (buckets and chunk[-1] - chunk[0] >= CHUNK_SPAN):
            yield chunk
            chunk = [edge]
    if len(chunk) > 1:
        yield chunk


def _edges(report: ReportScope, granularity: Granularity | None) -> Iterator[datetime]:
    """The bucket edges of the range, produced lazily a stretch at a time: a year of hours
    is never held as one list."""
    start, end = report.range.start, report.range.end
    if granularity is None:
        yield from (start, end)
        return
    zone = report.range.zone
    # A stretch this long holds at most about a chunk of buckets, and always more than one
    # (the shortest periods of the granularity, e.g. 23-hour days).
    span = SHORTEST[granularity] * BUCKETS_PER_CHUNK
    yield start
    low = start
    while low < end:
        try:
            high = min(end, low + span)
        except OverflowError:  # near the end of the calendar
            high = end
        stretch = period_edges(low, high, granularity, zone)
        if high < end:
            stretch.pop()  # ``high`` cuts a period: continue from its start instead
        yield from stretch[1:]
        low = stretch[-1]


async def _labels(
    context: Context, report: ReportScope, group: ExportGroup, values: set[str | int]
) -> dict[str | int, tuple[str, str | None]]:
    """(label, display name) of each user or key id; other groups label themselves."""
    if group not in (ExportGroup.USER, ExportGroup.API_KEY):
        return {value: (str(value), str(value)) for value in values}
    # Users are tallied by id as text ("" without a user), keys by id (NO_KEY without one).
    ids = sorted({int(value) for value in values if value not in ("", NO_KEY)})
    found: dict[str | int, tuple[str, str | None]] = {}
    async with context.db.connection() as conn:
        for at in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[at : at + LOOKUP_CHUNK]
            if group is ExportGroup.USER:
                users = await users_by_id(
                    conn, organization_id=report.organization.id, user_ids=chunk
                )
                found.update({str(id_): (u.external_id, u.name) for id_, u in users.items()})
            else:
                keys = await api_keys_by_id(
                    conn, organization_id=report.organization.id, key_ids=chunk
                )
                found.update({id_: (k.external_id, k.name) for id_, k in keys.items()})
    # Calls without a user or key (and any no longer on record): an empty cell, last of
    # their ties, as the row with a null user or key in GraphQL.
    return {value: found.get(value, ("", None)) for value in values}


async def _read(
    context: Context, report: ReportScope, group: ExportGroup, edges: list[datetime]
) -> dict[tuple[int, int, str], Tally]:
    try:
        async with context.db.connection() as conn:
            return await tally(
                conn,
                organization_id=report.organization.id,
                dimension=DIMENSION[group],
                edges=edges,
                api_key_ids=report.key_filter,
                by_key=group is ExportGroup.API_KEY,
                outcomes=report.outcomes,
                by_outcome=group is ExportGroup.OUTCOME,
            )
    except RawScanTooLarge as error:
        offset = off_grid_offset(edges, report.range.zone)
        if offset is None:
            raise
        raise InvalidInput(
            f"{report.range.timezone} used the UTC offset {format_offset(offset)} in this "
            "range, off the 15-minute grid that usage is summed on: choose a shorter range, "
            "a coarser granularity or a time zone such as UTC.",
            field="granularity",
        ) from error


async def rows(
    context: Context, report: ReportScope, group: ExportGroup, granularity: Granularity | None
) -> AsyncIterator[list[ExportRow]]:
    """The export's rows, a chunk of buckets at a time: per bucket, its groups ordered as
    the GraphQL lists are (credits, calls, then display name). Empty buckets have no rows."""
    for edges in _chunks(_edges(report, granularity)):
        sums = await _read(context, report, group, edges)
        per_bucket: dict[int, dict[str | int, Tally]] = {}
        for (key, index, value), figures in sums.items():
            per_bucket.setdefault(index, {})[key if group is ExportGroup.API_KEY else value] = (
                figures
            )
        del sums
        values = {value for groups in per_bucket.values() for value in groups}
        labels = await _labels(context, report, group, values)
        display = {value: name for value, (_, name) in labels.items()}
        chunk: list[ExportRow] = []
        for index in sorted(per_bucket):
            shares: list[Share] = reports.by_name(reports.ranked(per_bucket[index]), display.get)
            low, high = (edges[index], edges[index + 1]) if granularity else (None, None)
            chunk.extend(
                ExportRow(
                    low, high, labels[share.value][0], share.calls, share.credits, share.percent
                )
                for share in shares
            )
        yield chunk
