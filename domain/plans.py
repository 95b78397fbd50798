"""Plans an organization can be on. Usage analytics are for the paid ones."""

from __future__ import annotations

from enum import Enum


class Plan(Enum):
    """Stored by value in ``organizations.plan``; the GraphQL ``Plan`` enum wraps this one."""

    FREE = "FREE"
    STARTER = "STARTER"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"

    @property
    def is_paid(self) -> bool:
        return self is not Plan.FREE


PAID_PLANS = frozenset(plan for plan in Plan if plan.is_paid)
