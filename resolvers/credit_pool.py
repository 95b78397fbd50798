"""The organization's credit pool this billing cycle, and how fast it drains."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from db.queries import reports
from domain.records import OrganizationRecord
from domain.time_range import billing_cycle
from resolvers.context import Context

BURN_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class PoolStatus:
    cycle_start: datetime
    cycle_end: datetime
    allowance: int
    consumed: int
    burn_rate_per_day: float
    projected_exhaustion_at: datetime | None

    @property
    def remaining(self) -> int:
        return self.allowance - self.consumed


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
    rate = recent.credits / (BURN_WINDOW / timedelta(days=1))
    remaining = organization.credit_allowance - consumed.credits
    exhaustion: datetime | None
    if remaining <= 0:
        exhaustion = now  # already spent: it ran out no later than now
    elif rate <= 0:
        exhaustion = None
    else:
        exhaustion = now + timedelta(days=remaining / rate)
        if exhaustion >= end:
            exhaustion = None
    return PoolStatus(start, end, organization.credit_allowance, consumed.credits, rate, exhaustion)
