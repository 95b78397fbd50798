"""Who hears that an ingest touched an organization: the fan-out behind ``usageUpdates``.

The ingest route calls ``published`` after its commit with the organizations it touched.
Without Redis the notice goes to this worker's subscriptions only (one worker: all of
them). With ``CREDITLENS_REDIS_URL`` it is published on the Redis channel
``creditlens:usage`` and every worker relays what it hears to its own subscriptions: one
Redis subscriber per worker, however many WebSocket subscriptions it holds. Redis pub/sub
over PostgreSQL LISTEN/NOTIFY: Redis is already there for the limits, and NOTIFY would hold
one more PostgreSQL connection per worker. A notice carries only an organization id;
subscribers read the figures themselves, so a lost notice delays a tick, never falsifies one.

Redis down: publishing falls back to this worker's subscriptions (logged, counted as
``creditlens_redis_errors_total{operation="publish"}``) and does not try Redis again for
``RETRY_SECONDS``, so a stream of ingests (``creditlens ingest FILE`` publishes after each
batch) pays one failed call per outage window, not one per batch; the relay reconnects
every ``RETRY_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.metrics import Metrics
from db.session import RequestDatabase
from resolvers.context import Context

log = logging.getLogger("creditlens.live")

CHANNEL = "creditlens:usage"
RETRY_SECONDS = 1.0


class LiveUsageHub:
    """``resolvers.context.LiveUsage`` for one worker."""

    def __init__(self, engine: AsyncEngine, *, redis: Redis | None, metrics: Metrics) -> None:
        self.engine = engine
        self.redis = redis
        self.metrics = metrics
        self._listeners: defaultdict[int, set[asyncio.Event]] = defaultdict(set)
        self._relay: asyncio.Task[None] | None = None
        self._redis_down_until = 0.0  # time.monotonic(): skip Redis until then

    @asynccontextmanager
    async def changes(self, organization_id: int) -> AsyncIterator[AsyncIterator[None]]:
        """While open, the iterator yields after each notice (several folded into one)."""
        self._start_relay()
        flag = asyncio.Event()
        self._listeners[organization_id].add(flag)

        async def notices() -> AsyncIterator[None]:
            while True:
                await flag.wait()
                flag.clear()
                yield None

        try:
            yield notices()
        finally:
            self._listeners[organization_id].discard(flag)
            if not self._listeners[organization_id]:
                del self._listeners[organization_id]

    @asynccontextmanager
    async def fresh(self, context: Context) -> AsyncIterator[Context]:
        """A context for one tick: its own connection and loaders."""
        db = RequestDatabase(self.engine)
        try:
            yield Context(
                db=db,
                clock=context.clock,
                viewer=context.viewer,
                organization=context.organization,
                limits=context.limits,
                request_id=context.request_id,
                token_id=context.token_id,
                live=self,
            )
        finally:
            await db.close()

    async def published(self, organization_ids: Iterable[int]) -> None:
        """Tell every subscription of these organizations, on every worker."""
        ids = sorted(set(organization_ids))
        if not ids:
            return
        if self.redis is not None and time.monotonic() >= self._redis_down_until:
            try:
                await self.redis.publish(CHANNEL, ",".join(map(str, ids)))
                return
            except (RedisError, OSError) as error:
                self._redis_down_until = time.monotonic() + RETRY_SECONDS
                self.metrics.redis_error("publish")
                log.warning("redis unavailable for live usage (%s)", type(error).__name__)
        self.notify(ids)

    def notify(self, organization_ids: Iterable[int]) -> None:
        """Wake this worker's subscriptions of these organizations."""
        for organization_id in organization_ids:
            for flag in self._listeners.get(organization_id, ()):
                flag.set()

    def _start_relay(self) -> None:
        if self.redis is not None and (self._relay is None or self._relay.done()):
            self._relay = asyncio.get_running_loop().create_task(self._relay_forever())

    async def _relay_forever(self) -> None:
        assert self.redis is not None
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                while True:
                    # Timeout None: block until a message (the socket timeout does not apply).
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        data = message["data"]
                        text = data.decode() if isinstance(data, bytes) else str(data)
                        self.notify(int(part) for part in text.split(",") if part.isdigit())
            except (RedisError, OSError) as error:
                self.metrics.redis_error("subscribe")
                log.warning("live usage relay lost redis (%s); retrying", type(error).__name__)
                await asyncio.sleep(RETRY_SECONDS)
            finally:
                with suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py

    async def close(self) -> None:
        """Stop the relay (application shutdown)."""
        if self._relay is not None:
            self._relay.cancel()
            with suppress(asyncio.CancelledError):
                await self._relay
