"""Report rows: ranked shares of a total, and a series per period."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from db.queries.usage import tally
from domain.breakdowns import percent
from domain.dimensions import Dimension
from domain.outcomes import CallOutcome
from domain.records import Share, Tally


def ranked(groups: Mapping[str | int, Tally]) -> list[Share]:
    """Rows by credits, then calls (both descending), then name; percents of the credits
    (of the calls when no call cost credits: ``domain.breakdowns.percent``)."""
    total_credits = sum(group.credits for group in groups.values())
    total_calls = sum(group.calls for group in groups.values())
    rows = [
        Share(
            value,
            group.calls,
            group.credits,
            percent(
                group.calls, group.credits, total_calls=total_calls, total_credits=total_credits
            ),
        )
        for value, group in groups.items()
    ]
    rows.sort(key=lambda row: (-row.credits, -row.calls, str(row.value)))
    return rows


def by_name(shares: Sequence[Share], name: Callable[[str | int], str | None]) -> list[Share]:
    """``shares`` in report order, ties broken by display name instead of stored value.

    Users and keys are stored by internal id, which means nothing to a reader: rows of
    equal credits and calls are ordered by ``name(value)``, the row without a name (calls
    without a user or key) after the named ones, then by value so the order is total.
    """

    def order(share: Share) -> tuple[int, int, bool, str, str]:
        label = name(share.value)
        return (-share.credits, -share.calls, label is None, label or "", str(share.value))

    return sorted(shares, key=order)


async def totals(
    conn: AsyncConnection,
    *,
    organization_id: int,
    start: datetime,
    end: datetime,
    api_key_ids: Sequence[int] | None,
    outcomes: Collection[CallOutcome] | None = None,
) -> Tally:
    sums = await tally(
        conn,
        organization_id=organization_id,
        dimension=Dimension.TOTAL,
        edges=[start, end],
        api_key_ids=api_key_ids,
        outcomes=outcomes,
    )
    found = sums.get((0, 0, ""))
    return found or Tally(0, 0)


async def breakdown(
    conn: AsyncConnection,
    *,
    organization_id: int,
    dimension: Dimension,
    start: datetime,
    end: datetime,
    api_key_ids: Sequence[int] | None,
    outcomes: Collection[CallOutcome] | None = None,
) -> list[Share]:
    """Calls and credits per endpoint, source or user (users by id, None as "")."""
    sums = await tally(
        conn,
        organization_id=organization_id,
        dimension=dimension,
        edges=[start, end],
        api_key_ids=api_key_ids,
        outcomes=outcomes,
    )
    return ranked({value: group for (_, _, value), group in sums.items()})


async def by_api_key(
    conn: AsyncConnection,
    *,
    organization_id: int,
    start: datetime,
    end: datetime,
    api_key_ids: Sequence[int] | None,
    outcomes: Collection[CallOutcome] | None = None,
) -> list[Share]:
    """Calls and credits per API key id (0 for calls made without a key)."""
    sums = await tally(
        conn,
        organization_id=organization_id,
        dimension=Dimension.TOTAL,
        edges=[start, end],
        api_key_ids=api_key_ids,
        by_key=True,
        outcomes=outcomes,
    )
    return ranked({key: group for (key, _, _), group in sums.items()})


async def breakdown_per_key(
    conn: AsyncConnection,
    *,
    organization_id: int,
    dimension: Dimension,
    start: datetime,
    end: datetime,
    api_key_ids: Sequence[int],
    outcomes: Collection[CallOutcome] | None = None,
) -> dict[int, list[Share]]:
    """One breakdown for each of many keys, in one query (for the per-key DataLoader)."""
    sums = await tally(
        conn,
        organization_id=organization_id,
        dimension=dimension,
        edges=[start, end],
        api_key_ids=api_key_ids,
        by_key=True,
        outcomes=outcomes,
    )
    per_key: dict[int, dict[str | int, Tally]] = {key: {} for key in api_key_ids}
    for (key, _, value), group in sums.items():
        per_key.setdefault(key, {})[value] = group
    return {key: ranked(groups) for key, groups in per_key.items()}


async def by_outcome(
    conn: AsyncConnection,
    *,
    organization_id: int,
    start: datetime,
    end: datetime,
    api_key_ids: Sequence[int] | None,
    outcomes: Collection[CallOutcome] | None = None,
) -> list[Share]:
    """Calls and credits per call outcome (values are ``CallOutcome.value``, e.g.
    ``"NO_RESULT"``); outcomes without calls have no row."""
    sums = await tally(
        conn,
        organization_id=organization_id,
        dimension=Dimension.TOTAL,
        edges=[start, end],
        api_key_ids=api_key_ids,
        outcomes=outcomes,
        by_outcome=True,
    )
    return ranked({value: group for (_, _, value), group in sums.items()})


async def series(
    conn: AsyncConnection,
    *,
    organization_id: int,
    edges: Sequence[datetime],
    api_key_ids: Sequence[int] | None,
    outcomes: Collection[CallOutcome] | None = None,
) -> list[Tally]:
    """Calls and credits of each ``[edges[i], edges[i+1])``; empty periods give zeros."""
    sums = await tally(
        conn,
        organization_id=organization_id,
        dimension=Dimension.TOTAL,
        edges=edges,
        api_key_ids=api_key_ids,
        outcomes=outcomes,
    )
    return [sums.get((0, index, ""), Tally(0, 0)) for index in range(len(edges) - 1)]
