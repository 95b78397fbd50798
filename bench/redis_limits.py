"""What a rate-limit decision costs: in process against Redis (one Lua script call).

    python bench/redis_limits.py --decisions 5000

Sequential ``take`` calls on one event loop against the local Redis (database 14), as a
request makes them; prints the mean and p99 per decision. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

from redis.asyncio import Redis

from app.metrics import Metrics
from app.rate_limit import Limiter, RateLimiter
from app.shared_rate_limit import RedisRateLimiter


def now() -> datetime:
    return datetime.now(UTC)


async def measure(limiter: Limiter, decisions: int) -> list[float]:
    timings = []
    for index in range(decisions):
        started = time.perf_counter()
        await limiter.take(("graphql", index % 100))
        timings.append(time.perf_counter() - started)
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=5000)
    args = parser.parse_args()
    redis = Redis.from_url("redis://127.0.0.1:6379/14")
    await redis.flushdb()
    limiters: dict[str, Limiter] = {
        "in process": RateLimiter(10**9, now),
        "redis lua": RedisRateLimiter("bench", 10**9, now, redis=redis, metrics=Metrics()),
    }
    print("| limiter | mean us | p99 us |")
    print("|---|---|---|")
    for name, limiter in limiters.items():
        await measure(limiter, 200)  # warm: connection, script cache
        timings = sorted(await measure(limiter, args.decisions))
        mean = statistics.fmean(timings) * 1e6
        p99 = timings[int(len(timings) * 0.99)] * 1e6
        print(f"| {name} | {mean:.1f} | {p99:.1f} |")
    await redis.flushdb()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
