"""The subscription limit per token (app/subscription_slots.py): one count across workers
through real Redis, places of a killed worker coming back when its leases end, and the
per-worker count while Redis is down."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from redis.asyncio import Redis

from app.metrics import Metrics
from app.subscription_slots import SubscriptionSlots
from tests.live_server import ROOT

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1
TOKEN = 41

# A worker in its own process: takes two places with a short lease, says so, then waits to
# be killed (never releasing, never renewing once dead).
HOLDER = """
import asyncio, sys
from redis.asyncio import Redis
from app.metrics import Metrics
from app.subscription_slots import SubscriptionSlots

async def main():
    slots = SubscriptionSlots(2, redis=Redis.from_url(sys.argv[1]), metrics=Metrics(),
                              lease_seconds=1.5)
    held = [await slots.acquire(41), await slots.acquire(41)]
    print("held" if all(held) else "refused", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_two_workers_share_one_limit_per_token(redis_url):
    first_redis, second_redis = Redis.from_url(redis_url), Redis.from_url(redis_url)
    first = SubscriptionSlots(3, redis=first_redis, metrics=Metrics())
    second = SubscriptionSlots(3, redis=second_redis, metrics=Metrics())
    try:
        held = [await first.acquire(TOKEN), await second.acquire(TOKEN), await first.acquire(TOKEN)]
        assert all(held)
        assert await second.acquire(TOKEN) is None  # the third place was taken on `first`
        assert await first.acquire(TOKEN) is None
        assert await second.acquire(TOKEN + 1) is not None  # another token has its own
        first.release(held[0])
        await asyncio.sleep(0.2)  # the release reaches Redis in the background
        assert await second.acquire(TOKEN) is not None
        assert await first.acquire(TOKEN) is None
    finally:
        await first.close()
        await second.close()
        await first_redis.aclose()
        await second_redis.aclose()


async def test_a_killed_workers_places_come_back_when_its_leases_end(redis_url):
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        redis_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    redis = Redis.from_url(redis_url)
    slots = SubscriptionSlots(2, redis=redis, metrics=Metrics())
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"held\n"
        os.kill(holder.pid, signal.SIGKILL)
        await holder.wait()
        assert await slots.acquire(TOKEN) is None  # the dead worker's leases still hold
        await asyncio.sleep(1.6)
        assert await slots.acquire(TOKEN) is not None
        assert await slots.acquire(TOKEN) is not None
        assert await slots.acquire(TOKEN) is None
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await slots.close()
        await redis.aclose()


async def test_redis_down_counts_per_worker_and_says_so(caplog):
    redis = Redis.from_url(NOWHERE, socket_connect_timeout=0.5, socket_timeout=0.5)
    metrics = Metrics()
    slots = SubscriptionSlots(2, redis=redis, metrics=metrics)
    try:
        with caplog.at_level(logging.WARNING, logger="creditlens.ws"):
            held = [await slots.acquire(TOKEN), await slots.acquire(TOKEN)]
            assert all(held)
            assert await slots.acquire(TOKEN) is None
            slots.release(held[0])
            assert await slots.acquire(TOKEN) is not None
    finally:
        await slots.close()
        await redis.aclose()
    assert 'creditlens_redis_errors_total{operation="subscriptions"} 1.0' in metrics.render()
    warnings = [r for r in caplog.records if "subscription limit" in r.getMessage()]
    assert len(warnings) == 1
