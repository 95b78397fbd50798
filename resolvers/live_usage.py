"""Live usage: the figures a ``usageUpdates`` subscription pushes, and when it pushes them.

A tick is sent when the subscription starts, then after each ingest commit that touches the
organization, at most one per ``MIN_INTERVAL`` seconds: notices arriving faster are folded
into the next tick, so a busy organization costs one set of reads a second per subscriber.
``cycleConsumed`` is the organization's pool (credits are drawn from one pool; a key is
only a filter); ``todayCalls``, ``todayCredits`` and ``lastEventAt`` follow ``keyId``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from db.queries import reports
from db.queries.directory import find_organization
from domain.errors import NotFound
from domain.presets import Preset
from domain.records import UsageTickRecord
from domain.time_range import TimeRangeArgs, billing_cycle
from resolvers.context import Context
from resolvers.usage import last_event_at, resolve_key, scope, totals

MIN_INTERVAL = 1.0
TODAY = TimeRangeArgs(preset=Preset.TODAY, start=None, end=None, timezone=None)


async def usage_tick(context: Context, api_key_id: int | None) -> UsageTickRecord:
    """The figures now, read on ``context``'s connection."""
    async with context.db.connection() as conn:
        organization = await find_organization(conn, ref=str(context.organization.id))
    if organization is None:
        raise NotFound("The organization is gone.")
    now = context.clock()
    start, end = billing_cycle(organization, now)
    async with context.db.connection() as conn:
        cycle = await reports.totals(
            conn, organization_id=organization.id, start=start, end=end, api_key_ids=None
        )
    today = await scope(context, organization, TODAY, api_key_id=api_key_id)
    figures = await totals(context, today)
    return UsageTickRecord(
        at=now,
        cycle_consumed=cycle.credits,
        today_calls=figures.calls,
        today_credits=figures.credits,
        last_event_at=await last_event_at(context, today),
    )


async def usage_ticks(context: Context, key_id: str | None) -> AsyncIterator[UsageTickRecord]:
    """A tick now, then one after each change (at most one a second), until cancelled."""
    live = context.live
    if live is None:
        raise NotFound("Live usage is served over WebSocket (graphql-transport-ws) only.")
    async with live.fresh(context) as first:
        api_key_id = await resolve_key(first, key_id)  # an unknown key fails before any tick
    async with live.changes(context.organization.id) as changes:
        last = 0.0
        while True:
            async with live.fresh(context) as now_context:
                tick = await usage_tick(now_context, api_key_id)
            last = time.monotonic()
            yield tick
            # At most one a second: notices of that second are folded into the next tick
            # (``changes`` remembers that one came, not how many).
            await asyncio.sleep(max(0.0, last + MIN_INTERVAL - time.monotonic()))
            await anext(changes)
