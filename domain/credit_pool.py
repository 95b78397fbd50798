"""The credit pool of a billing cycle: what is left, and when it runs out at today's pace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# The burn rate is the average over this trailing window: long enough to smooth a weekend,
# short enough to follow a change of pace.
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


def pool_status(
    *,
    cycle: tuple[datetime, datetime],
    allowance: int,
    consumed: int,
    burned_in_window: int,
    now: datetime,
) -> PoolStatus:
    """The pool of ``cycle`` given its consumption and the credits of the trailing
    ``BURN_WINDOW``. Exhaustion is ``now`` once spent, None if the pool outlasts the cycle
    (or nothing burns)."""
    start, end = cycle
    rate = burned_in_window / (BURN_WINDOW / timedelta(days=1))
    remaining = allowance - consumed
    exhaustion: datetime | None
    if remaining <= 0:
        exhaustion = now  # already spent: it ran out no later than now
    elif rate <= 0:
        exhaustion = None
    else:
        exhaustion = now + timedelta(days=remaining / rate)
        if exhaustion >= end:
            exhaustion = None
    return PoolStatus(start, end, allowance, consumed, rate, exhaustion)
