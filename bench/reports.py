"""Latency of a 30-day usage report with a daily series, at 100 thousand and 1 million events.

Not a test: run it and read the markdown table it prints.

    .venv/bin/python -m bench.reports [--sizes 100000 1000000] [--runs 300]

Each size gets its own SQLite file under ``bench/out/`` (gitignored), loaded once through
``db.ingestion.ingest`` in batches of 1,000 events in time order and reused by later runs.
The organization's zone is Europe/Berlin, so its local days are not UTC days: the report
reads day rollups for the whole UTC days and hour rollups for the edges, and the daily
series reads hour rollups. Latency is one GraphQL request executed in process through
httpx's ASGI transport (auth, parsing, validation, resolvers, SQL, JSON), after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.main import create_app
from app.settings import Settings
from db import migrate
from db.engine import create_engine, writing
from db.ingestion.writer import ingest
from db.queries.directory import create_organization, create_user
from db.queries.tokens import create_token
from domain.scopes import TokenScope

OUT = Path(__file__).parent / "out"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
HISTORY = timedelta(days=365)  # events are spread over the year before NOW
BATCH = 1_000
SLUG = "bench-org"
PEPPER = "creditlens-development-pepper"
ENDPOINTS = [f"/v2/{name}" for name in ("person", "company", "search", "enrich", "match")] + [
    f"prospecting/{kind}/{verb}"
    for kind in ("contact", "company", "deal")
    for verb in ("enrich", "search", "export")
]
SOURCES = ["api", "crm_integration", "extension", "zapier", "sheets"]
KEYS = [f"key-{number}" for number in range(20)]
USERS = [f"user-{number}" for number in range(50)]

REPORT = """
query Report {
  organization {
    usage(timeRange: {preset: LAST_30_DAYS}) {
      calls creditsConsumed
      byEndpoint { endpoint calls creditsConsumed percentOfTotal }
      bySource { source calls creditsConsumed percentOfTotal }
      byUser { user { id name } calls creditsConsumed percentOfTotal }
      byApiKey { apiKey { id name } calls creditsConsumed percentOfTotal }
      series(granularity: DAY) { start end calls creditsConsumed }
    }
  }
}
"""
ENDPOINT_TABLE = """
query Table {
  organization {
    endpointUsage(timeRange: {preset: LAST_30_DAYS}) {
      endpoint calls creditsConsumed percentOfTotal
    }
  }
}
"""


class Clock:
    def __call__(self) -> datetime:
        return NOW


def _events(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` events in time order over HISTORY, as a producer would send them."""
    rng = random.Random(seed)
    first = NOW - HISTORY
    step = HISTORY / count
    events: list[dict[str, Any]] = []
    for index in range(count):
        at = first + step * index + timedelta(microseconds=rng.randrange(1_000_000))
        body: dict[str, Any] = {
            "id": f"evt-{index}",
            "organization": SLUG,
            "source": rng.choice(SOURCES),
            "endpoint": rng.choice(ENDPOINTS),
            "status": 200,
            "credits": rng.choice((0, 1, 1, 1, 2, 5)),
            "timestamp": at.isoformat(),
        }
        if rng.random() < 0.9:
            body["api_key"] = rng.choice(KEYS)
        if rng.random() < 0.8:
            body["user"] = rng.choice(USERS)
        events.append(body)
    return events


async def _load(url: str, count: int) -> str:
    """Create the organization, an admin token and ``count`` events; returns the token."""
    await asyncio.to_thread(migrate.upgrade, url)  # alembic runs its own event loop
    engine = create_engine(url)
    try:
        async with writing(engine) as conn:
            organization_id = await create_organization(
                conn,
                slug=SLUG,
                name="Bench",
                plan="PRO",
                timezone="Europe/Berlin",
                credit_allowance=10_000_000,
                billing_cycle_anchor=datetime(2026, 1, 1, tzinfo=UTC),
                now=NOW,
            )
            user_id = await create_user(
                conn,
                organization_id=organization_id,
                external_id="bench-admin",
                name="Bench Admin",
                email=None,
                role="ADMIN",
                now=NOW,
            )
            _, token = await create_token(
                conn, pepper=PEPPER, scope=TokenScope.USER, user_id=user_id, now=NOW
            )
        events = _events(count, seed=count)
        started = time.perf_counter()
        for offset in range(0, count, BATCH):
            await ingest(engine, events[offset : offset + BATCH], now=NOW)
        elapsed = time.perf_counter() - started
        print(f"<!-- loaded {count:,} events in {elapsed:.0f} s -->")
        return token
    finally:
        await engine.dispose()


async def _database(count: int) -> tuple[str, str]:
    """URL and admin token of the database holding ``count`` events, loaded if needed."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"reports-{count}.db"
    token_file = OUT / f"reports-{count}.token"
    url = f"sqlite+aiosqlite:///{path}"
    if path.exists() and token_file.exists():
        return url, token_file.read_text().strip()
    for stale in OUT.glob(f"reports-{count}.db*"):
        stale.unlink()
    token = await _load(url, count)
    token_file.write_text(token)
    return url, token


async def _measure(url: str, token: str, query: str, runs: int) -> list[float]:
    settings = Settings(database_url=url, rate_limit_per_minute=0, log_level="WARNING")
    app = create_app(settings, clock=Clock())
    timings: list[float] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for run in range(runs + 20):
                started = time.perf_counter()
                response = await client.post("/graphql", json={"query": query}, headers=headers)
                elapsed = time.perf_counter() - started
                body = response.json()
                if response.status_code != 200 or "errors" in body:
                    raise SystemExit(f"request failed: {response.status_code} {body}")
                if run >= 20:  # the first requests warm caches and the connection pool
                    timings.append(elapsed * 1000)
    return timings


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def main(sizes: list[int], runs: int) -> None:
    rows = []
    for size in sizes:
        url, token = await _database(size)
        for label, query in (
            ("full report + daily series", REPORT),
            ("endpoint table", ENDPOINT_TABLE),
        ):
            timings = await _measure(url, token, query, runs)
            rows.append(
                (
                    f"{size:,}",
                    label,
                    statistics.median(timings),
                    _percentile(timings, 0.99),
                    len(timings),
                )
            )
    print("| stored events | query (LAST_30_DAYS, Europe/Berlin) | p50 ms | p99 ms | runs |")
    print("|---:|---|---:|---:|---:|")
    for size, label, p50, p99, count in rows:
        print(f"| {size} | {label} | {p50:.2f} | {p99:.2f} | {count} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=300)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.sizes, arguments.runs))
