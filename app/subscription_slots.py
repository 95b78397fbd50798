"""How many live subscriptions each token holds (``ws_max_subscriptions_per_token``):
across every worker and host through Redis, or in this worker without it.

With ``CREDITLENS_REDIS_URL`` each subscription holds a lease in one sorted set per token
(``creditlens:subs:<token id>``; member: this worker's id and a number, score: when the
lease ends, wall-clock seconds). One Lua script drops the ended leases, counts the rest and
adds one if the token is under its limit, so two workers cannot both take the last place.
A worker renews its leases every ``lease_seconds / 3``; a worker that dies without
releasing (kill -9, a lost host) stops renewing, and its places come back within
``lease_seconds`` instead of never, which is what a plain INCR/DECR counter would do.

Without Redis the count is this worker's own: with one worker that is the whole server.

Redis down (refused, timed out): this worker counts only its own subscriptions, as without
Redis, so the limit holds per worker (at most N x the limit across N workers) until Redis
answers again; one warning per outage and
``creditlens_redis_errors_total{operation="subscriptions"}``. A subscription is never
refused because Redis is away, as a request is never refused because the rate limiter is.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.metrics import Metrics

log = logging.getLogger("creditlens.ws")

KEY_PREFIX = "creditlens:subs:"
LEASE_SECONDS = 60.0
RETRY_SECONDS = 5.0

# KEYS[1] the token's leases; ARGV: now, limit, lease end, member, key lifetime (ms).
ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


@dataclass(frozen=True)
class Slot:
    """One subscription's place; ``member`` names its Redis lease (``None``: counted here)."""

    token_id: int
    member: str | None


class SubscriptionSlots:
    """The places of one worker's subscriptions; ``redis`` ``None``: per worker."""

    def __init__(
        self,
        limit: int,
        *,
        redis: Redis | None,
        metrics: Metrics,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.limit = limit
        self.redis = redis
        self.metrics = metrics
        self.lease_seconds = lease_seconds
        self._here: Counter[int] = Counter()  # this worker's subscriptions, by token
        self._leases: dict[str, int] = {}  # member -> token id, renewed while held
        self._worker = uuid.uuid4().hex[:12]
        self._numbers = itertools.count(1)
        self._script = None if redis is None else redis.register_script(ACQUIRE)
        self._renewal: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._redis_down_until = 0.0

    async def acquire(self, token_id: int) -> Slot | None:
        """A place for one more subscription of ``token_id``, or ``None`` at the limit."""
        if self._script is not None and time.monotonic() >= self._redis_down_until:
            member = f"{self._worker}:{next(self._numbers)}"
            now = time.time()
            try:
                taken = await self._script(
                    keys=[_key(token_id)],
                    args=[
                        repr(now),
                        self.limit,
                        repr(now + self.lease_seconds),
                        member,
                        int(self.lease_seconds * 2000),
                    ],
                )
            except (RedisError, OSError) as error:
                self._outage(error)
            else:
                if not int(taken):
                    return None
                self._here[token_id] += 1
                self._leases[member] = token_id
                self._start_renewal()
                return Slot(token_id, member)
        if self._here[token_id] >= self.limit:
            return None
        self._here[token_id] += 1
        return Slot(token_id, None)

    def release(self, slot: Slot) -> None:
        """Give the place back (callable from a task's done callback)."""
        self._here[slot.token_id] -= 1
        if self._here[slot.token_id] <= 0:
            del self._here[slot.token_id]
        if slot.member is not None and self._leases.pop(slot.member, None) is not None:
            task = asyncio.get_running_loop().create_task(self._remove(slot))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Stop renewing (application shutdown); leases still held end on their own."""
        if self._renewal is not None:
            self._renewal.cancel()
            with suppress(asyncio.CancelledError):
                await self._renewal
        if self._background:
            await asyncio.wait(self._background, timeout=1)

    async def _remove(self, slot: Slot) -> None:
        assert self.redis is not None
        assert slot.member is not None
        try:
            await self.redis.zrem(_key(slot.token_id), slot.member)
        except (RedisError, OSError) as error:
            self._outage(error)  # the lease ends by itself within lease_seconds

    def _start_renewal(self) -> None:
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        assert self.redis is not None
        while self._leases:
            await asyncio.sleep(self.lease_seconds / 3)
            ends = time.time() + self.lease_seconds
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for member, token_id in list(self._leases.items()):
                        # ZADD, not ZADD XX: a lease dropped during an outage is taken again,
                        # since its subscription is still live.
                        # Queued, not awaited: the pipeline sends them in one round trip.
                        _ = pipe.zadd(_key(token_id), {member: ends})
                        _ = pipe.pexpire(_key(token_id), int(self.lease_seconds * 2000))
                    await pipe.execute()
            except (RedisError, OSError) as error:
                self._outage(error)

    def _outage(self, error: Exception) -> None:
        if time.monotonic() >= self._redis_down_until:
            self.metrics.redis_error("subscriptions")
            log.warning(
                "redis unavailable for the subscription limit (%s): counting per worker for %g s",
                type(error).__name__,
                RETRY_SECONDS,
            )
        self._redis_down_until = time.monotonic() + RETRY_SECONDS


def _key(token_id: int) -> str:
    return f"{KEY_PREFIX}{token_id}"
