"""The records every layer passes around: who is who, and what a report row holds.

``db`` builds them from rows; ``resolvers`` apply rules to them; GraphQL types wrap them.
Plain frozen dataclasses, so a record cannot change under a request that shares it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.plans import Plan
from domain.roles import Role


@dataclass(frozen=True, slots=True)
class OrganizationRecord:
    id: int
    slug: str
    name: str
    plan: Plan
    timezone: str
    credit_allowance: int
    billing_cycle_anchor: datetime
    created_at: datetime
    last_event_at: datetime | None
    # Answers about the organization change only when this moves (the answer cache keys on
    # it). Last and defaulted, so records built by position before it existed stay valid.
    data_version: int = 0

    @property
    def is_paid(self) -> bool:
        return self.plan.is_paid


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    organization_id: int
    external_id: str
    name: str
    email: str | None
    role: Role
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    organization_id: int
    external_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    # The key's earliest event; None until it has one. Last and defaulted, so records built
    # by position before it existed stay valid.
    first_seen_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Tally:
    """Calls and credits of one group."""

    calls: int
    credits: int


@dataclass(frozen=True, slots=True)
class Share:
    """One row of a breakdown: its calls and credits, and its percent of the credits."""

    value: str | int
    calls: int
    credits: int
    percent: float


@dataclass(frozen=True, slots=True)
class UsageTickRecord:
    """Live usage of an organization (or one of its keys) at ``at``: what a subscription
    pushes after each ingest that touches it."""

    at: datetime
    cycle_consumed: int
    today_calls: int
    today_credits: int
    last_event_at: datetime | None
