"""The fan-out behind ``usageUpdates`` (app/live_usage.py): through real Redis between two
hubs (two workers), and to the local worker only while Redis is down."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from app.live_usage import LiveUsageHub
from app.metrics import Metrics

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1


async def test_a_notice_published_on_one_hub_wakes_the_other(engine, redis_url):
    publisher_redis, listener_redis = Redis.from_url(redis_url), Redis.from_url(redis_url)
    publisher = LiveUsageHub(engine, redis=publisher_redis, metrics=Metrics())
    listener = LiveUsageHub(engine, redis=listener_redis, metrics=Metrics())
    try:
        async with listener.changes(7) as seven, listener.changes(8) as eight:
            # The relay subscribes in the background: publish until it hears.
            heard = asyncio.ensure_future(anext(seven))
            for _ in range(50):
                await publisher.published([7])
                done, _ = await asyncio.wait({heard}, timeout=0.1)
                if done:
                    break
            assert heard.done()
            other = asyncio.ensure_future(anext(eight))
            await asyncio.sleep(0.3)
            assert not other.done()  # organization 8 heard nothing
            other.cancel()
    finally:
        await publisher.close()
        await listener.close()
        await publisher_redis.aclose()
        await listener_redis.aclose()


async def test_redis_down_wakes_this_workers_subscriptions_and_counts(engine, caplog):
    redis = Redis.from_url(NOWHERE, socket_connect_timeout=0.5, socket_timeout=0.5)
    metrics = Metrics()
    hub = LiveUsageHub(engine, redis=redis, metrics=metrics)
    try:
        with caplog.at_level(logging.WARNING, logger="creditlens.live"):
            async with hub.changes(7) as seven:
                await hub.published([7])
                await asyncio.wait_for(anext(seven), 5)
    finally:
        await hub.close()
        await redis.aclose()
    assert 'creditlens_redis_errors_total{operation="publish"} 1.0' in metrics.render()
    assert any("redis unavailable for live usage" in r.getMessage() for r in caplog.records)
