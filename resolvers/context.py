"""What every resolver gets: the viewer, one database connection, loaders and the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from db.loaders import Loaders, Reads
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


FOREVER = datetime.max.replace(tzinfo=UTC)


class Freshness:
    """How long this request's answer stays what it is, for the answer cache.

    Every read of the clock is counted; a resolver that knows until when what it decided
    from the clock holds says so (``holds_until``). An answer is reusable only if every
    read was so bounded: a resolver that reads the clock without bounding it (the credit
    pool's outlook, alerts) makes the answer depend on the moment itself. So a new use of
    the clock is safe by default: it turns the cache off for its answers until bounded.
    """

    __slots__ = ("_bounded", "_reads", "_until")

    def __init__(self) -> None:
        self._reads = 0
        self._bounded = 0
        self._until = FOREVER

    def read(self) -> None:
        self._reads += 1

    def depends_on_the_instant(self) -> None:
        """The answer uses an instant read earlier (a running period's "to date"): it may
        differ at any later moment: a read of the clock that nothing bounds."""
        self.read()

    def holds_until(self, instant: datetime | None) -> None:
        """What the last clock read decided holds until ``instant`` (None: not past now)."""
        if instant is None:
            return
        self._bounded += 1
        self._until = min(self._until, instant)

    def valid_until(self) -> datetime | None:
        """The first instant the answer may differ at, or None if it may differ now."""
        return self._until if self._bounded >= self._reads else None


class _CountedClock:
    """The request's clock, telling ``Freshness`` of each read."""

    __slots__ = ("_clock", "_freshness")

    def __init__(self, clock: Clock, freshness: Freshness) -> None:
        self._clock = clock
        self._freshness = freshness

    def __call__(self) -> datetime:
        self._freshness.read()
        return self._clock()


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

    freshness: Freshness = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(Reads(self.db))
        self.freshness = Freshness()
        self.clock = _CountedClock(self.clock, self.freshness)
