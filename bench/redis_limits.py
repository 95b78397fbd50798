"""What a rate-limit decision costs and whether it holds under concurrency: our token bucket
(one Lua script, app/shared_rate_limit.py) against the ``limits`` library's async Redis
strategies (redis-py client), with the in-process bucket as the floor.

    python bench/redis_limits.py --decisions 5000 --concurrency 32

``limits`` is not a dependency of creditlens: install it into the venv to run this
(``.venv/bin/pip install limits``); without it only our limiters are measured.

Three measurements per limiter, on the local Redis (database 14, flushed):

1. latency: sequential decisions on one event loop, as a request makes them (mean, p99);
2. throughput: ``--concurrency`` tasks in each of 2 processes, 100 callers, a limit no one
   reaches; decisions/s over both processes, the client's CPU per decision (robust to the
   machine's load), and Redis's own time per call from ``INFO commandstats``;
3. correctness: 2 processes x ``--concurrency`` tasks hit ONE caller whose limit is 100 a
   minute, 1,000 attempts in all; how many were allowed (should be 100, plus what a token
   bucket refills during the burst: 100/60 per second).

Nothing is asserted; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.asyncio import Redis

from app.metrics import Metrics
from app.rate_limit import RateLimiter
from app.shared_rate_limit import RedisRateLimiter

REDIS_URL = "redis://127.0.0.1:6379/14"
LIMITERS = ["in process", "ours: token bucket (Lua)"]
LIBRARY = ["limits: moving window", "limits: sliding window counter", "limits: fixed window"]
try:
    import limits  # noqa: F401

    LIMITERS += LIBRARY
except ImportError:
    print("limits is not installed: measuring our limiters only", file=sys.stderr)

Decide = Callable[[object], Awaitable[bool]]


def now() -> datetime:
    return datetime.now(UTC)


def make(name: str, per_minute: int) -> tuple[Decide, Callable[[], Awaitable[None]]]:
    """(one decision for a caller -> allowed, close) for limiter ``name``."""
    if name == "in process":
        local = RateLimiter(per_minute, now)

        async def local_take(key: object) -> bool:
            return (await local.take(("graphql", key))).allowed

        async def nothing() -> None:
            return None

        return local_take, nothing
    if name.startswith("ours"):
        redis = Redis.from_url(REDIS_URL)
        ours = RedisRateLimiter("bench", per_minute, now, redis=redis, metrics=Metrics())

        async def take(key: object) -> bool:
            return (await ours.take(("graphql", key))).allowed

        return take, redis.aclose
    from limits import RateLimitItemPerMinute
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import (
        FixedWindowRateLimiter,
        MovingWindowRateLimiter,
        SlidingWindowCounterRateLimiter,
    )

    storage = RedisStorage("async+" + REDIS_URL, implementation="redispy")
    strategy = {
        "limits: moving window": MovingWindowRateLimiter,
        "limits: sliding window counter": SlidingWindowCounterRateLimiter,
        "limits: fixed window": FixedWindowRateLimiter,
    }[name](storage)
    item = RateLimitItemPerMinute(per_minute)

    async def hit(key: object) -> bool:
        return await strategy.hit(item, "graphql", str(key))

    async def close() -> None:
        await storage.bridge.get_connection().aclose()  # type: ignore[attr-defined]

    return hit, close


async def latency(name: str, decisions: int) -> tuple[list[float], float]:
    """Sorted seconds per sequential decision, and Python function calls per decision
    (cProfile: a count the machine's load does not change)."""
    decide, close = make(name, 10**6)
    try:
        for index in range(200):  # warm: connection, script cache
            await decide(index % 100)
        timings = []
        for index in range(decisions):
            started = time.perf_counter()
            await decide(index % 100)
            timings.append(time.perf_counter() - started)
        profile = cProfile.Profile()
        profile.enable()
        for index in range(500):
            await decide(index % 100)
        profile.disable()
    finally:
        await close()
    return sorted(timings), pstats.Stats(profile).total_calls / 500  # type: ignore[attr-defined]


async def _burst(
    name: str, per_minute: int, attempts: int, tasks: int, start_at: float
) -> dict[str, Any]:
    decide, close = make(name, per_minute)
    one_caller = per_minute < 1000
    try:
        await decide("warm-up")  # connect and load scripts before the clock starts
        await asyncio.sleep(max(0.0, start_at - time.time()))
        cpu_before = time.process_time()
        started = time.perf_counter()
        allowed = 0
        per_task = attempts // tasks

        async def worker(offset: int) -> None:
            nonlocal allowed
            for index in range(per_task):
                key = "one" if one_caller else (offset * per_task + index) % 100
                # Await first: `allowed += await ...` reads `allowed` before the await and
                # would lose the other tasks' updates.
                ok = await decide(key)
                allowed += ok

        await asyncio.gather(*(worker(offset) for offset in range(tasks)))
        return {
            "allowed": allowed,
            "decisions": per_task * tasks,
            "seconds": time.perf_counter() - started,
            "cpu": time.process_time() - cpu_before,
        }
    finally:
        await close()


def burst(args: tuple[str, int, int, int, float]) -> dict[str, Any]:
    return asyncio.run(_burst(*args))


def in_two_processes(name: str, per_minute: int, attempts: int, tasks: int) -> dict[str, Any]:
    start_at = time.time() + 1.5  # both processes start deciding at the same instant
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        parts = pool.map(burst, [(name, per_minute, attempts // 2, tasks, start_at)] * 2)
    return {
        "allowed": sum(p["allowed"] for p in parts),
        "decisions": sum(p["decisions"] for p in parts),
        "seconds": max(p["seconds"] for p in parts),
        "cpu": sum(p["cpu"] for p in parts),
    }


async def redis_stats(reset: bool) -> dict[str, tuple[int, float]]:
    """{command: (calls, microseconds per call)} from INFO commandstats."""
    redis = Redis.from_url(REDIS_URL)
    try:
        if reset:
            await redis.config_resetstat()
            await redis.flushdb()
            return {}
        info = await redis.info("commandstats")
    finally:
        await redis.aclose()
    return {
        name.removeprefix("cmdstat_"): (int(value["calls"]), float(value["usec_per_call"]))
        for name, value in info.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()}", file=sys.stderr)
    print(
        "| limiter | sequential mean us | p99 us | Python calls per decision | concurrent "
        "decisions/s | client CPU us per decision | Redis us per decision (commands) | "
        "allowed of 1,000 at 100/min |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in LIMITERS:
        asyncio.run(redis_stats(reset=True))
        timings, calls = asyncio.run(latency(name, args.decisions))
        mean = statistics.fmean(timings) * 1e6
        p99 = timings[int(len(timings) * 0.99)] * 1e6
        asyncio.run(redis_stats(reset=True))
        fast = in_two_processes(name, 10**6, 2 * args.decisions, args.concurrency)
        stats = asyncio.run(redis_stats(reset=False))
        commands = {
            command: calls
            for command, (calls, _) in stats.items()
            if command not in ("config|resetstat", "flushdb", "info", "hello", "client|setinfo")
        }
        redis_us = sum(calls * stats[command][1] for command, calls in commands.items())
        per_decision = redis_us / fast["decisions"] if commands else 0.0
        described = ", ".join(f"{command} {calls}" for command, calls in sorted(commands.items()))
        asyncio.run(redis_stats(reset=True))
        exact = in_two_processes(name, 100, 1000, args.concurrency)
        rate = fast["decisions"] / fast["seconds"]
        client_us = 1e6 * fast["cpu"] / fast["decisions"]
        print(
            f"| {name} | {mean:.0f} | {p99:.0f} | {calls:.0f} | {rate:,.0f} | {client_us:.0f} | "
            f"{per_decision:.1f} ({described or 'none'}) | {exact['allowed']} "
            f"(burst {exact['seconds']:.2f} s) |",
            flush=True,
        )
    asyncio.run(redis_stats(reset=True))


if __name__ == "__main__":
    main()
