"""The one Redis client of a worker (``CREDITLENS_REDIS_URL``), or none.

Short timeouts: Redis answers in well under a millisecond on a healthy network, and a
request must not wait seconds for a store it can do without (callers degrade, see
``app/shared_rate_limit.py`` and docs/deploy.md).
"""

from __future__ import annotations

from redis.asyncio import Redis

from app.settings import Settings

TIMEOUT_SECONDS = 0.5


def redis_client(settings: Settings) -> Redis | None:
    """A client for ``settings.redis_url`` (it connects on first use), or ``None``."""
    if settings.redis_url is None:
        return None
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
        health_check_interval=30,
    )
