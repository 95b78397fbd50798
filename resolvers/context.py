"""What every resolver gets: the viewer, one database connection, loaders and the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from db.loaders import Loaders
from db.session import RequestDatabase
from domain.clock import Clock
from domain.records import OrganizationRecord, UserRecord
from domain.time_range import ResolvedRange, TimeRangeArgs
from resolvers.webhook_policy import NoWebhooks, WebhookPolicy


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits resolvers enforce themselves (the app fills them from its settings)."""

    max_page_size: int
    max_series_points: int


class LiveUsage(Protocol):
    """Live usage for subscriptions (``app/live_usage.py`` implements it): notices that an
    ingest commit touched an organization, and a fresh context (its own connection and
    loaders) for each tick of a long-lived subscription."""

    def changes(self, organization_id: int) -> AbstractAsyncContextManager[AsyncIterator[None]]:
        """While open, yields once per ingest commit touching the organization."""
        ...

    def fresh(self, context: Context) -> AbstractAsyncContextManager[Context]:
        """``context`` with a connection and loaders of its own, closed on exit."""
        ...


@dataclass
class Context:
    """The GraphQL context of one request."""

    db: RequestDatabase
    clock: Clock
    viewer: UserRecord
    organization: OrganizationRecord
    limits: Limits
    request_id: str = ""
    token_id: int = 0
    live: LiveUsage | None = None  # subscriptions only (WebSocket)
    # How webhook URLs are checked and signing secrets sealed (the app's settings).
    webhooks: WebhookPolicy = field(default_factory=NoWebhooks)
    loaders: Loaders = field(init=False)
    # Time ranges resolved in this request, by organization and argument (resolvers.usage).
    resolved_ranges: dict[tuple[int, TimeRangeArgs], ResolvedRange] = field(default_factory=dict)
    # Filled in by the QueryCost extension: what ran and what it was estimated to cost.
    operation_names: list[str] = field(default_factory=list)
    query_cost: int = 0

    def record_operation(self, name: str | None, cost: int) -> None:
        if name:
            self.operation_names.append(name)
        self.query_cost += cost

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db)
