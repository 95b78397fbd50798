"""Per-token rate limits: a token bucket for each access token, in process memory.

A bucket holds up to ``per_minute`` tokens and refills at ``per_minute`` per minute; each
request takes one (or, cost-aware, as many as its query cost says). A request that finds the
bucket empty is refused with 429 and ``Retry-After``: the whole seconds until a token is back.

The buckets live in the worker's memory, so with N uvicorn workers (or hosts) each has its own
buckets and a client may get up to N times the limit, depending on how the balancer spreads
it. With ``CREDITLENS_REDIS_URL`` set the same buckets live in Redis instead
(``app/shared_rate_limit.py``), behind the ``Limiter`` protocol below; this in-process one
stays the default, and the fallback while Redis is down.

Time comes from the application's clock, so tests move it instead of sleeping; a clock that
steps backwards refills nothing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from domain.clock import Clock


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds; 0 when allowed
    remaining: int


class Limiter(Protocol):
    """What the routes need of a rate limiter, in process or shared."""

    per_minute: int

    @property
    def enabled(self) -> bool: ...

    async def peek(self, key: object) -> Decision: ...

    async def take(self, key: object, amount: float = 1.0) -> Decision: ...

    async def charge(self, key: object, amount: float) -> None: ...


class RateLimiter:
    """Token buckets keyed by caller (a token id, or a client address for failed
    authentications). ``per_minute == 0`` disables the limit."""

    def __init__(self, per_minute: int, clock: Clock, *, max_callers: int = 100_000) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: OrderedDict[object, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def _now(self) -> float:
        return self.clock().timestamp()

    def _bucket(self, key: object) -> _Bucket:
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.per_minute), updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_callers:
                self._buckets.popitem(last=False)  # forget the longest-idle caller
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(
                float(self.per_minute), bucket.tokens + elapsed * self.per_minute / 60.0
            )
            bucket.updated = now
        self._buckets.move_to_end(key)
        return bucket

    async def peek(self, key: object) -> Decision:
        """Whether ``take`` would allow ``key`` now, without taking anything."""
        return self.peek_now(key)

    def peek_now(self, key: object) -> Decision:
        """``peek`` without a suspension point."""
        if not self.enabled:
            return Decision(True, 0, 0)
        bucket = self._bucket(key)
        if bucket.tokens < 1.0:
            missing = 1.0 - bucket.tokens
            return Decision(False, max(1, math.ceil(missing * 60.0 / self.per_minute)), 0)
        return Decision(True, 0, math.floor(bucket.tokens))

    async def take(self, key: object, amount: float = 1.0) -> Decision:
        """Take ``amount`` if at least one token is there (a costly request may overdraw
        the bucket; the caller then waits until it is back above one)."""
        return self.take_now(key, amount)

    def take_now(self, key: object, amount: float = 1.0) -> Decision:
        """``take`` without a suspension point."""
        decision = self.peek_now(key)
        if not decision.allowed or not self.enabled:
            return decision
        bucket = self._buckets[key]
        bucket.tokens -= amount
        return Decision(True, 0, max(0, math.floor(bucket.tokens)))

    async def charge(self, key: object, amount: float) -> None:
        """Take ``amount`` more after the fact (the cost of a query, known once validated)."""
        self.charge_now(key, amount)

    def charge_now(self, key: object, amount: float) -> None:
        """``charge`` without a suspension point."""
        if self.enabled and amount > 0:
            self._bucket(key).tokens -= amount
