"""Is the spike bench/generate.py plants found, and are its figures right?

    .venv/bin/python bench/planted_spike.py --dataset bench/out/postgres-wip_m13_10m.json

Asks `spikes(granularity: DAY)` over four weeks around the planted day and
`spikes(granularity: HOUR)` over the planted day, with drivers, through the ASGI app (the
read path: rollups), and recomputes the planted buckets' credits, expected and excess
credits, and the planted key's and endpoint's own figures from the raw events with plain
SQL (asyncpg or sqlite3, no creditlens code): one `SUM(credits)` per bucket between UTC
bounds computed with zoneinfo, and the median of the same-phase buckets before it (8 same
weekdays for DAY, the same weekday and hour of 4 weeks for HOUR; docs/spikes.md). Prints
markdown. Not a test: the tests plant their own spikes; this checks the 10M datasets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.main import create_app
from app.settings import Settings

SPIKES = """{{ organization {{ usage(timeRange: {{start: "{start}", end: "{end}"}}) {{
  spikes(granularity: {granularity}) {{ start end creditsConsumed expectedCredits excessCredits
    drivers {{ dimension value apiKey {{ name }} creditsConsumed expectedCredits excessCredits
      shareOfExcess }} }} }} }} }}"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def ask(described: dict[str, Any], queries: list[str]) -> list[Any]:
    settings = Settings(database_url=described["url"], rate_limit_per_minute=0, log_level="WARNING")
    app = create_app(settings, clock=Clock(datetime.fromisoformat(described["end"])))
    answers = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {described['token']}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for query in queries:
                response = await client.post(
                    "/graphql", json={"query": query}, headers=headers, timeout=600
                )
                body = response.json()
                if "errors" in body:
                    raise SystemExit(f"{body['errors']}")
                answers.append(body["data"]["organization"]["usage"]["spikes"])
    return answers


class RawEvents:
    """Credits of raw events between two instants, by plain SQL on either database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")

    async def __aenter__(self) -> RawEvents:
        if self.sqlite:
            self.lite = sqlite3.connect(self.url.split("///", 1)[1])
        else:
            self.pg = await asyncpg.connect("postgresql://" + self.url.split("://", 1)[1])
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.sqlite:
            self.lite.close()
        else:
            await self.pg.close()

    async def credits(
        self, org: str, start: datetime, end: datetime, key: str | None, endpoint: str | None
    ) -> int:
        sql = (
            "SELECT COALESCE(SUM(e.credits), 0) FROM usage_events e"
            " JOIN organizations o ON o.id = e.organization_id"
            " LEFT JOIN api_keys k ON k.id = e.api_key_id"
            " WHERE o.slug = {0} AND e.occurred_at >= {1} AND e.occurred_at < {2}"
        )
        args: list[Any] = [org, start, end]
        if key is not None:
            sql += f" AND k.external_id = {{{len(args)}}}"
            args.append(key)
        if endpoint is not None:
            sql += f" AND e.endpoint = {{{len(args)}}}"
            args.append(endpoint)
        if self.sqlite:
            # Naive UTC text, 'YYYY-MM-DD HH:MM:SS[.ffffff]' (db/types.py): compare as text.
            marks = ["?"] * len(args)
            args = [
                f"{a.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if isinstance(a, datetime) else a
                for a in args
            ]
            return int(self.lite.execute(sql.format(*marks), args).fetchone()[0])
        marks = [f"${n + 1}" for n in range(len(args))]
        return int(await self.pg.fetchval(sql.format(*marks), *args))


def local(day: date, hour: int, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)


async def independent(
    described: dict[str, Any],
    buckets: list[tuple[datetime, datetime, list[tuple[datetime, datetime]]]],
) -> list[dict[str, Any]]:
    """For each (start, end, baseline buckets): total, key's and endpoint's credits and
    their medians over the baseline buckets (all 24-hour days or 1-hour hours here: the
    planted day is a weekday after the autumn DST change, so no scaling applies)."""
    spike = described["spike"]
    org, key, endpoint = spike["organization"], spike["api_key"], spike["endpoint"]
    out = []
    async with RawEvents(described["url"]) as raw:
        for start, end, baseline in buckets:
            row: dict[str, Any] = {"start": start}
            for name, k, e in (
                ("total", None, None),
                ("key", key, None),
                ("endpoint", None, endpoint),
            ):
                credits = await raw.credits(org, start, end, k, e)
                history = [await raw.credits(org, s, t, k, e) for s, t in baseline]
                expected = round(statistics.median(history))
                row[name] = {
                    "credits": credits,
                    "history": history,
                    "expected": expected,
                    "excess": credits - expected,
                }
            out.append(row)
    return out


def figures(row: dict[str, Any] | None, prefix: str = "") -> str:
    """credits/expected/excess of a spike, a driver or an independent row."""
    if row is None:
        return "not listed"
    names = ("creditsConsumed", "expectedCredits", "excessCredits")
    if prefix == "sql":
        names = ("credits", "expected", "excess")
    return "/".join(str(row[name]) for name in names)


def top(drivers: list[dict[str, Any]], dimension: str) -> str:
    """The first driver of a dimension: name credits/expected/excess (share of the excess)."""
    listed = [d for d in drivers if d["dimension"] == dimension]
    if not listed:
        return "-"
    d = listed[0]
    name = d["apiKey"]["name"] if d.get("apiKey") else d["value"] or "(none)"
    return f"{name} {figures(d)} ({d['shareOfExcess']:.2f})"


def same_phase(start: datetime, end: datetime, step: timedelta, count: int) -> list[Any]:
    """The ``count`` buckets ``step`` apart before one (UTC bounds; local calendar days
    are passed in already converted, and none of the planted day's are DST days)."""
    return [(start - step * n, end - step * n) for n in range(1, count + 1)]


def report(path: Path, described: dict[str, Any], days: list[Any], hours: list[Any]) -> None:
    spike = described["spike"]
    zone = ZoneInfo(described["timezone"])
    day = date.fromisoformat(spike["day"])
    # Independent buckets: the planted local day (8 same weekdays before it; computed with
    # local() so each is a local calendar day), then each hour of the planted window.
    buckets = [
        (
            local(day, 0, zone),
            local(day + timedelta(days=1), 0, zone),
            [
                (
                    local(day - timedelta(weeks=w), 0, zone),
                    local(day - timedelta(weeks=w, days=-1), 0, zone),
                )
                for w in range(1, 9)
            ],
        )
    ]
    at, window_end = (datetime.fromisoformat(spike[edge]) for edge in ("start", "end"))
    while at < window_end:
        hour = (at, at + timedelta(hours=1))
        buckets.append((*hour, same_phase(*hour, timedelta(weeks=1), 4)))
        at += timedelta(hours=1)
    checked = asyncio.run(independent(described, buckets))

    print(
        f"Dataset {path.name}: planted {spike['day']} {spike['start'][11:16]}-"
        f"{spike['end'][11:16]} UTC, key {spike['api_key']}, endpoint {spike['endpoint']} "
        f"({spike['credits_per_call']} credits a call, share {spike['share']}); "
        f"data end {described['end']}.\n"
    )
    for label, found in (("DAY, four weeks around the day", days), ("HOUR, the day", hours)):
        print(f"spikes({label}): {len(found)} spike(s); top driver per dimension as")
        print("name credits/expected/excess (share of the spike's excess)\n")
        print(
            "| bucket start (UTC) | credits/expected/excess | API_KEY | ENDPOINT | SOURCE | USER |"
        )
        print("|---|---|---|---|---|---|")
        for s in found:
            tops = " | ".join(
                top(s["drivers"], d) for d in ("API_KEY", "ENDPOINT", "SOURCE", "USER")
            )
            print(f"| {s['start'][:16]} | {figures(s)} | {tops} |")
        print()

    by_start = {datetime.fromisoformat(s["start"]): s for s in [*days, *hours]}
    print("Independent: plain SQL over raw events, median of the same-phase buckets before;")
    print("each cell credits/expected/excess, SQL then API\n")
    print(
        "| bucket (UTC) | SQL baseline credits | total SQL | total API | key SQL | key API "
        "| endpoint SQL | endpoint API | equal |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in checked:
        found = by_start.get(row["start"])
        drivers = (
            {}
            if found is None
            else {
                (
                    d["dimension"],
                    (d["apiKey"] or {}).get("name") if d["dimension"] == "API_KEY" else d["value"],
                ): d
                for d in found["drivers"]
            }
        )
        key = drivers.get(("API_KEY", spike["api_key"]))
        endpoint = drivers.get(("ENDPOINT", spike["endpoint"]))
        cells = [
            (figures(row["total"], "sql"), figures(found) if found else "not a spike"),
            (figures(row["key"], "sql"), figures(key)),
            (figures(row["endpoint"], "sql"), figures(endpoint)),
        ]
        equal = all(mine == theirs for mine, theirs in cells)
        print(
            f"| {row['start']:%Y-%m-%d %H:%M} | {row['total']['history']} | "
            + " | ".join(f"{mine} | {theirs}" for mine, theirs in cells)
            + f" | {'yes' if equal else 'NO'} |"
        )


def main(path: Path) -> None:
    described = json.loads(path.read_text())
    zone = ZoneInfo(described["timezone"])
    day = date.fromisoformat(described["spike"]["day"])
    ranges = {
        "DAY": (local(day - timedelta(days=21), 0, zone), local(day + timedelta(days=3), 0, zone)),
        "HOUR": (local(day, 0, zone), local(day + timedelta(days=1), 0, zone)),
    }
    queries = [
        SPIKES.format(start=start.isoformat(), end=end.isoformat(), granularity=granularity)
        for granularity, (start, end) in ranges.items()
    ]
    days, hours = asyncio.run(ask(described, queries))
    report(path, described, days, hours)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    main(parser.parse_args().dataset)
