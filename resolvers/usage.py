"""Usage reports: check the arguments, then read the figures from ``db.queries.reports``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from db.loaders import KeyRangeKey
from db.queries import reports
from db.queries.directory import api_keys_by_id, find_api_key, known_key_ids
from db.queries.directory import users_by_id as load_users
from db.queries.usage import RawScanTooLarge
from db.rollup_keys import NO_KEY
from domain import breakdowns
from domain.breakdowns import Limited
from domain.dimensions import Dimension
from domain.errors import InvalidInput, NotFound
from domain.outcomes import CallOutcome
from domain.periods import (
    Granularity,
    count_periods,
    format_offset,
    off_grid_offset,
    period_edges,
)
from domain.records import ApiKeyRecord, OrganizationRecord, Share, Tally, UserRecord
from domain.time_range import (
    ComparisonAlignment,
    ResolvedRange,
    TimeRangeArgs,
    resolution_holds_until,
    resolve_range,
)
from resolvers.context import Context, Freshness


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What a report covers: an organization, a range, optionally one API key, and
    optionally only some call outcomes (None: all of them)."""

    organization: OrganizationRecord
    range: ResolvedRange
    api_key_id: int | None
    outcomes: frozenset[CallOutcome] | None = None

    @property
    def key_filter(self) -> list[int] | None:
        return None if self.api_key_id is None else [self.api_key_id]

    def previous(
        self,
        freshness: Freshness,
        alignment: ComparisonAlignment = ComparisonAlignment.FULL_PERIOD,
    ) -> ReportScope:
        if alignment is ComparisonAlignment.TO_DATE and self.range.now is not None:
            # As much of the previous period as has elapsed of this one: that moves with
            # the instant the range was resolved at, so no answer holding it is reused.
            freshness.depends_on_the_instant()
        return replace(self, range=self.range.previous(self.organization, alignment))


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    end: datetime
    tally: Tally


async def resolve_key(context: Context, key_id: str | None) -> int | None:
    """The internal id of the viewer organization's key ``key_id``.

    A key of another organization answers exactly like a key that does not exist. An id
    found once is kept for the worker's next requests (``known_key_ids``: it never changes).
    """
    if key_id is None:
        return None
    known = known_key_ids(context.db.engine)
    memo_key = (context.organization.id, key_id)
    found = known.get(memo_key)
    if found is not None:
        return found
    async with context.db.connection() as conn:
        key = await find_api_key(conn, organization_id=context.organization.id, external_id=key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id!r}.", field="keyId")
    known.put(memo_key, key.id)
    return key.id


async def scope(
    context: Context,
    organization: OrganizationRecord,
    time_range: TimeRangeArgs,
    *,
    key_id: str | None = None,
    api_key_id: int | None = None,
    outcomes: Collection[CallOutcome] | None = None,
) -> ReportScope:
    # Resolved once per request and argument: the 50 keys of a page share one range (and
    # one "now"), and resolving a preset per key was 6% of such a request (bench P4).
    memo_key = (organization.id, time_range)
    resolved = context.resolved_ranges.get(memo_key)
    if resolved is None:
        now = context.clock()
        resolved = resolve_range(
            preset=time_range.preset,
            start=time_range.start,
            end=time_range.end,
            timezone=time_range.timezone,
            organization=organization,
            now=now,
        )
        context.freshness.holds_until(resolution_holds_until(resolved, now))
        context.resolved_ranges[memo_key] = resolved
    if key_id is not None:
        api_key_id = await resolve_key(context, key_id)
    return ReportScope(organization, resolved, api_key_id, _outcome_filter(outcomes))


def _outcome_filter(outcomes: Collection[CallOutcome] | None) -> frozenset[CallOutcome] | None:
    """The outcomes a report keeps; None (all) also for a list naming every outcome, so
    such a report reads the same rows as one without the argument. An empty list would
    keep nothing, which no one means: it is refused."""
    if outcomes is None:
        return None
    kept = frozenset(outcomes)
    if not kept:
        raise InvalidInput(
            "outcomes is empty: name at least one outcome, or leave it out for all.",
            field="outcomes",
        )
    return None if kept == frozenset(CallOutcome) else kept


async def totals(context: Context, report: ReportScope) -> Tally:
    """Calls and credits of the report, read once per request however often asked."""
    return await context.loaders.totals.load(
        (
            report.organization.id,
            report.api_key_id,
            report.range.start,
            report.range.end,
            report.outcomes,
        )
    )


def row_limit(context: Context, limit: int | None) -> int:
    """How many rows a breakdown lists: ``limit``, from 1 to ``max_page_size`` (also the
    default); the rows after it are summed into one."""
    most = context.limits.max_page_size
    if limit is None:
        return most
    if not 1 <= limit <= most:
        raise InvalidInput(
            f"limit must be from 1 to {most} (setting max_page_size); the rows after the "
            "limit are summed into one row with isOther: true.",
            field="limit",
        )
    return limit


async def _shares(context: Context, report: ReportScope, dimension: Dimension) -> list[Share]:
    async with context.db.connection() as conn:
        return await reports.breakdown(
            conn,
            organization_id=report.organization.id,
            dimension=dimension,
            start=report.range.start,
            end=report.range.end,
            api_key_ids=report.key_filter,
            outcomes=report.outcomes,
        )


async def breakdown(
    context: Context, report: ReportScope, dimension: Dimension, *, limit: int | None = None
) -> Limited[Share]:
    """The first ``limit`` rows per endpoint or source, and the rest summed."""
    rows = row_limit(context, limit)
    return breakdowns.top(await _shares(context, report, dimension), rows)


def _key_range(report: ReportScope, api_key_id: int) -> KeyRangeKey:
    return (
        report.organization.id,
        api_key_id,
        report.range.start,
        report.range.end,
        report.outcomes,
    )


async def endpoint_usage_of_key(
    context: Context, report: ReportScope, *, limit: int | None = None
) -> Limited[Share]:
    """Through the per-request DataLoader, so a page of keys whose tables are resolved
    key by key costs one query."""
    assert report.api_key_id is not None
    rows = row_limit(context, limit)
    shares = await context.loaders.endpoint_usage_by_key.load(_key_range(report, report.api_key_id))
    return breakdowns.top(shares, rows)


async def endpoint_usage_of_keys(
    context: Context, report: ReportScope, api_key_ids: Sequence[int], *, limit: int | None = None
) -> list[Limited[Share]]:
    """:func:`endpoint_usage_of_key` for each of ``api_key_ids`` (``report`` without a
    key): the same checks, once, and one read for all, shared with the DataLoader."""
    rows = row_limit(context, limit)
    tables = await context.loaders.endpoint_usage_of_keys(
        [_key_range(report, key_id) for key_id in api_key_ids]
    )
    return [breakdowns.top(shares, rows) for shares in tables]


Named = TypeVar("Named", UserRecord, ApiKeyRecord)

# Ids per lookup of users or keys: far below the bound-parameter limits of SQLite (32,766)
# and asyncpg (32,767), which a breakdown tied across thousands of users would pass.
LOOKUP_CHUNK = 1_000


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[at : at + LOOKUP_CHUNK] for at in range(0, len(ids), LOOKUP_CHUNK)]


def _limited_with_rows(
    shares: list[Share],
    contenders: list[Share],
    rows: int,
    row_of: Callable[[str | int], Named | None],
) -> Limited[tuple[Share, Named | None]]:
    """The first ``rows`` shares with their user or key row, ties ordered by that row's
    display name, and the rest of ``shares`` summed."""

    def name(value: str | int) -> str | None:
        row = row_of(value)
        return None if row is None else row.name

    kept = reports.by_name(contenders, name)[:rows]
    return Limited(
        [(share, row_of(share.value)) for share in kept], breakdowns.rest_of(shares, kept)
    )


async def by_user(
    context: Context, report: ReportScope, *, limit: int | None = None
) -> Limited[tuple[Share, UserRecord | None]]:
    """Rows per user, ties ordered by the user's display name; calls without a user
    (and any user no longer on record) form the row with ``None``. Only the users that
    may be listed are read."""
    rows = row_limit(context, limit)
    shares = await _shares(context, report, Dimension.USER)
    contenders = breakdowns.contenders(shares, rows)
    ids = [int(share.value) for share in contenders if share.value != ""]
    found: dict[int, UserRecord] = {}
    async with context.db.connection() as conn:
        for chunk in _chunks(ids):
            found.update(
                await load_users(conn, organization_id=report.organization.id, user_ids=chunk)
            )
    return _limited_with_rows(
        shares, contenders, rows, lambda value: None if value == "" else found.get(int(value))
    )


async def by_api_key(
    context: Context, report: ReportScope, *, limit: int | None = None
) -> Limited[tuple[Share, ApiKeyRecord | None]]:
    """Rows per key, ties ordered by the key's name; keyless calls form the ``None`` row."""
    rows = row_limit(context, limit)
    found: dict[int, ApiKeyRecord] = {}
    async with context.db.connection() as conn:
        shares = await reports.by_api_key(
            conn,
            organization_id=report.organization.id,
            start=report.range.start,
            end=report.range.end,
            api_key_ids=report.key_filter,
            outcomes=report.outcomes,
        )
        contenders = breakdowns.contenders(shares, rows)
        ids = [int(share.value) for share in contenders if share.value != NO_KEY]
        for chunk in _chunks(ids):
            found.update(
                await api_keys_by_id(conn, organization_id=report.organization.id, key_ids=chunk)
            )
    return _limited_with_rows(
        shares, contenders, rows, lambda value: None if value == NO_KEY else found.get(int(value))
    )


async def series(context: Context, report: ReportScope, granularity: Granularity) -> list[Bucket]:
    limit = context.limits.max_series_points
    message = (
        f"This series would have more than {limit} points (max_series_points): "
        "choose a coarser granularity or a shorter time range."
    )
    if count_periods(report.range.start, report.range.end, granularity, report.range.zone) > (
        limit * 2 + 10
    ):
        raise InvalidInput(message, field="granularity")
    edges = period_edges(report.range.start, report.range.end, granularity, report.range.zone)
    if len(edges) - 1 > limit:
        raise InvalidInput(message, field="granularity")
    try:
        async with context.db.connection() as conn:
            tallies = await reports.series(
                conn,
                organization_id=report.organization.id,
                edges=edges,
                api_key_ids=report.key_filter,
                outcomes=report.outcomes,
            )
    except RawScanTooLarge as error:
        offset = off_grid_offset(edges, report.range.zone)
        if offset is None:
            raise
        raise InvalidInput(
            f"{report.range.timezone} used the UTC offset {format_offset(offset)} in this "
            "range, off the 15-minute grid that usage is summed on, so each of the "
            f"series' {error.ragged_edges} period edges must be read event by event; the "
            f"range holds {error.events} events, more than {error.limit}. Choose a "
            "shorter range, a coarser granularity or a time zone such as UTC.",
            field="granularity",
        ) from error
    return [
        Bucket(low, high, figures)
        for low, high, figures in zip(edges[:-1], edges[1:], tallies, strict=True)
    ]


async def last_event_at(context: Context, report: ReportScope) -> datetime | None:
    """When the newest event (of the key, when filtered) was recorded; None if never."""
    if report.api_key_id is None:
        return report.organization.last_event_at
    async with context.db.connection() as conn:
        keys = await api_keys_by_id(
            conn, organization_id=report.organization.id, key_ids=[report.api_key_id]
        )
    key = keys.get(report.api_key_id)
    return None if key is None else key.last_used_at
