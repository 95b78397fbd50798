"""Rate limits shared by every worker and host, through Redis (``CREDITLENS_REDIS_URL``).

The same token bucket as ``app/rate_limit.py`` (``per_minute`` tokens, refilled at
``per_minute`` a minute, a costly request may overdraw), kept in one Redis hash per caller
and updated by one Lua script, so a read-refill-take is atomic however many workers ask at
once. One round trip per decision (measured in ``bench/redis_limits.py``).

"Now" is the application's clock, sent with each call (tests move it; hosts keep NTP time),
not Redis's ``TIME``. A bucket expires once it would be full again, so idle callers cost no
memory.

Redis down (refused, timed out, any ``RedisError``): the limiter **degrades to the
in-process buckets** of this worker, with one warning log line per outage and
``creditlens_redis_errors_total{operation="rate_limit"}``; it retries Redis after
``RETRY_SECONDS``. Requests are never refused or failed because Redis is away (no 500, no
blanket 429): the limit stays enforced per worker, N times looser across N workers, which
is the documented mode without Redis (docs/deploy.md).
"""

from __future__ import annotations

import logging
import math
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.metrics import Metrics
from app.rate_limit import Decision, Limiter, RateLimiter
from domain.clock import Clock

log = logging.getLogger("creditlens.redis")

RETRY_SECONDS = 5.0
KEY_PREFIX = "creditlens:rate:"

# KEYS[1] the bucket; ARGV: per_minute, now (s), amount, mode ("peek", "take", "charge").
# Returns {allowed (0/1), tokens left as a string} (Lua numbers would be truncated).
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local mode = ARGV[4]
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = rate
  updated = now
end
local elapsed = now - updated
if elapsed < 0 then elapsed = 0 end
tokens = math.min(rate, tokens + elapsed * rate / 60.0)
if now > updated then updated = now end
local allowed = 1
if mode == 'charge' then
  tokens = tokens - amount
elseif tokens < 1.0 then
  allowed = 0
elseif mode == 'take' then
  tokens = tokens - amount
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(updated))
local full_in = math.ceil((rate - tokens) * 60000.0 / rate) + 1000
redis.call('PEXPIRE', KEYS[1], full_in)
return {allowed, tostring(tokens)}
"""


class Outage:
    """Whether this worker is doing without Redis for now: shared by all its limiters, so
    one outage costs one failed call, one log line and one metric increment per
    ``RETRY_SECONDS``, not one per limit."""

    def __init__(self) -> None:
        self._until = 0.0

    @property
    def ongoing(self) -> bool:
        return time.monotonic() < self._until

    def begin(self, what: str, error: Exception, metrics: Metrics) -> None:
        metrics.redis_error("rate_limit")
        log.warning(
            "redis unavailable for the %s rate limit (%s): limiting per worker for %g s",
            what,
            type(error).__name__,
            RETRY_SECONDS,
        )
        self._until = time.monotonic() + RETRY_SECONDS


def redis_key(name: str, key: object) -> str:
    """``creditlens:rate:<limit>:<caller>``: a token id, or a client address."""
    parts = key if isinstance(key, tuple) else (key,)
    return KEY_PREFIX + name + ":" + ":".join(str(part) for part in parts)


class RedisRateLimiter:
    """Token buckets in Redis; ``fallback`` answers while Redis does not."""

    def __init__(
        self,
        name: str,
        per_minute: int,
        clock: Clock,
        *,
        redis: Redis,
        metrics: Metrics,
        outage: Outage | None = None,
        fallback: RateLimiter | None = None,
    ) -> None:
        self.name = name
        self.per_minute = per_minute
        self.clock = clock
        self.redis = redis
        self.metrics = metrics
        self.fallback = fallback or RateLimiter(per_minute, clock)
        self._script = redis.register_script(TOKEN_BUCKET)
        self.outage = outage or Outage()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    async def peek(self, key: object) -> Decision:
        """Whether ``take`` would allow ``key`` now, without taking anything."""
        return await self._call(key, 1.0, "peek")

    async def take(self, key: object, amount: float = 1.0) -> Decision:
        """Take ``amount`` if at least one token is there (see ``RateLimiter.take``)."""
        return await self._call(key, amount, "take")

    async def charge(self, key: object, amount: float) -> None:
        """Take ``amount`` more after the fact."""
        if amount > 0:
            await self._call(key, amount, "charge")

    async def _call(self, key: object, amount: float, mode: str) -> Decision:
        if not self.enabled:
            return Decision(True, 0, 0)
        if self.outage.ongoing:
            return self._local(key, amount, mode)
        try:
            allowed, tokens = await self._script(
                keys=[redis_key(self.name, key)],
                args=[self.per_minute, repr(self.clock().timestamp()), repr(amount), mode],
            )
        except (RedisError, OSError) as error:
            self.outage.begin(self.name, error, self.metrics)
            return self._local(key, amount, mode)
        left = float(tokens)
        if int(allowed):
            return Decision(True, 0, max(0, math.floor(left)))
        missing = 1.0 - left
        return Decision(False, max(1, math.ceil(missing * 60.0 / self.per_minute)), 0)

    def _local(self, key: object, amount: float, mode: str) -> Decision:
        if mode == "charge":
            self.fallback.charge_now(key, amount)
            return Decision(True, 0, 0)
        if mode == "peek":
            return self.fallback.peek_now(key)
        return self.fallback.take_now(key, amount)


def make_limiter(
    name: str,
    per_minute: int,
    clock: Clock,
    *,
    redis: Redis | None,
    metrics: Metrics,
    outage: Outage,
) -> Limiter:
    """The limit ``name``: shared through ``redis`` when there is one, else in process."""
    if redis is None:
        return RateLimiter(per_minute, clock)
    return RedisRateLimiter(name, per_minute, clock, redis=redis, metrics=metrics, outage=outage)
