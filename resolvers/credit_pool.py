"""The organization's credit pool this billing cycle, and how fast it drains."""

from __future__ import annotations

from db.queries import reports
from domain.credit_pool import BURN_WINDOW, PoolStatus, pool_status
from domain.records import OrganizationRecord
from domain.time_range import billing_cycle
from resolvers.context import Context


async def credit_pool(context: Context, organization: OrganizationRecord) -> PoolStatus:
    now = context.clock()
    start, end = billing_cycle(organization, now)
    async with context.db.connection() as conn:
        consumed = await reports.totals(
            conn, organization_id=organization.id, start=start, end=end, api_key_ids=None
        )
        recent = await reports.totals(
            conn,
            organization_id=organization.id,
            start=now - BURN_WINDOW,
            end=now,
            api_key_ids=None,
        )
    return pool_status(
        cycle=(start, end),
        allowance=organization.credit_allowance,
        consumed=consumed.credits,
        burned_in_window=recent.credits,
        now=now,
    )
