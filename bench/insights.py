"""Latency and statements of the insight fields (spikes, byOutcome) beside a plain series,
on a dataset of bench/generate.py. Not a test: run it and read the markdown it prints.

    .venv/bin/python bench/generate.py --size 1m --backend sqlite --via bulk
    .venv/bin/python bench/insights.py --dataset bench/out/sqlite-1m.json [--runs 100]

Queries run in process through httpx's ASGI transport (auth, parsing, validation,
resolvers, SQL, JSON), round-robin, so load on the machine hits them alike; statements are
counted per request with a SQLAlchemy cursor event (independent of load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.main import create_app
from app.settings import Settings

RANGE = "{preset: LAST_30_DAYS}"
QUERIES = {
    "series(DAY), the reference": f"{{ organization {{ usage(timeRange: {RANGE}) "
    "{ series(granularity: DAY) { start creditsConsumed } } } }",
    "spikes(DAY)": f"{{ organization {{ usage(timeRange: {RANGE}) "
    "{ spikes(granularity: DAY) { start expectedCredits excessCredits } } } }",
    "spikes(DAY) with drivers": f"{{ organization {{ usage(timeRange: {RANGE}) "
    "{ spikes(granularity: DAY) { start excessCredits drivers { dimension value "
    "apiKey { name } user { name } excessCredits shareOfExcess } } } } }",
    "spikes(HOUR), LAST_7_DAYS": "{ organization { usage(timeRange: {preset: LAST_7_DAYS}) "
    "{ spikes(granularity: HOUR) { start excessCredits } } } }",
    "spikes(HOUR) with drivers, LAST_7_DAYS": "{ organization { usage(timeRange: "
    "{preset: LAST_7_DAYS}) { spikes(granularity: HOUR) { start excessCredits drivers "
    "{ dimension value apiKey { name } user { name } excessCredits shareOfExcess } } } } }",
    "byOutcome": f"{{ organization {{ usage(timeRange: {RANGE}) "
    "{ byOutcome { outcome calls creditsConsumed percentOfTotal } } } }",
    "endpointUsage, outcomes: [NO_RESULT]": f"{{ organization {{ endpointUsage(timeRange: "
    f"{RANGE}, outcomes: [NO_RESULT]) {{ endpoint calls creditsConsumed }} }} }}",
    "previous, THIS_MONTH": "{ organization { usage(timeRange: {preset: THIS_MONTH}) "
    "{ previous { calls creditsConsumed } } } }",
    "previous(alignment: TO_DATE), THIS_MONTH": "{ organization { usage(timeRange: "
    "{preset: THIS_MONTH}) { previous(alignment: TO_DATE) { calls creditsConsumed } } } }",
    "change, THIS_MONTH": "{ organization { usage(timeRange: {preset: THIS_MONTH}) "
    "{ change { creditsPercent } } } }",
    "change(alignment: TO_DATE), THIS_MONTH": "{ organization { usage(timeRange: "
    "{preset: THIS_MONTH}) { change(alignment: TO_DATE) { creditsPercent } } } }",
}

statements = 0


@event.listens_for(Engine, "before_cursor_execute")
def _count(*_args: Any) -> None:
    global statements
    statements += 1


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def main(described: dict[str, Any], name: str, runs: int) -> None:
    global statements
    settings = Settings(database_url=described["url"], rate_limit_per_minute=0, log_level="WARNING")
    app = create_app(settings, clock=Clock(datetime.fromisoformat(described["end"])))
    timings: dict[str, list[float]] = {label: [] for label in QUERIES}
    counted: dict[str, int] = {}
    answers: dict[str, Any] = {}
    load_before = os.getloadavg()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {described['token']}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for run in range(runs + 3):
                for label, query in QUERIES.items():
                    before = statements
                    started = time.perf_counter()
                    response = await client.post("/graphql", json={"query": query}, headers=headers)
                    elapsed = time.perf_counter() - started
                    body = response.json()
                    if "errors" in body:
                        answers[label] = body["errors"][0]["message"][:80]
                        continue
                    if run < 3:  # warm-up
                        counted[label] = statements - before
                        answers[label] = next(iter(body["data"]["organization"].values()))
                        continue
                    timings[label].append(elapsed * 1000)
    load_after = os.getloadavg()
    print(
        f"Dataset {name}: {described['organization']}, LAST_30_DAYS unless said; {runs} rounds; "
        f"load {load_before[0]:.2f} {load_before[1]:.2f} before, "
        f"{load_after[0]:.2f} {load_after[1]:.2f} after.\n"
    )
    print("| query | p50 ms | p90 ms | statements | answer |")
    print("|---|---:|---:|---:|---|")
    for label, values in timings.items():
        answer = answers.get(label)
        if isinstance(answer, dict):
            answer = next(iter(answer.values()))
        if isinstance(answer, list):
            answer = f"{len(answer)} rows"
        if not values:
            print(f"| {label} | - | - | - | {answer} |")
            continue
        ordered = sorted(values)
        p90 = ordered[round(0.9 * (len(ordered) - 1))]
        print(
            f"| {label} | {statistics.median(values):.1f} | {p90:.1f} | "
            f"{counted.get(label, 0)} | {answer} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("bench/out/sqlite-1m.json"))
    parser.add_argument("--runs", type=int, default=100)
    arguments = parser.parse_args()
    dataset: Path = arguments.dataset
    asyncio.run(main(json.loads(dataset.read_text()), dataset.name, arguments.runs))
