"""Read-your-write under continuous load: a report issued right after a batch's 200
includes the whole batch, while other batches keep arriving and the rollup tail is folded
in small chunks all the time (so folds commit between, and during, the reads)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import datetime, timedelta

from db.folding import fold
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events

REPORT = """
query($range: TimeRangeInput!) {
  organization { usage(timeRange: $range) {
    calls creditsConsumed
    byEndpoint { endpoint calls creditsConsumed }
    hours: series(granularity: HOUR) { calls creditsConsumed }
  } }
}
"""
ROUNDS = 12
BATCH = 40


async def test_a_report_right_after_each_200_includes_that_batch(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), timezone="Asia/Kathmandu")
    # The continuous load goes to another organization, so this one's figures are exact.
    other = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    end = clock() - timedelta(minutes=1)
    start = end - timedelta(days=3)
    # +05:45 and a ragged start: rollup, pending and raw pieces in every report.
    window = {
        "start": (start + timedelta(seconds=7)).isoformat(),
        "end": end.isoformat(),
        "timezone": "Asia/Kathmandu",
    }
    rng = random.Random(7)

    def at() -> datetime:
        return start + timedelta(seconds=rng.randrange(10, int((end - start).total_seconds())))

    stop = asyncio.Event()
    folds = 0

    async def background_load() -> None:
        while not stop.is_set():
            noise = [event(other.slug, at(), endpoint="/noise", credits=1) for _ in range(60)]
            assert (await post_events(client, token, noise)).status_code == 200
            await asyncio.sleep(0)

    async def folding() -> None:
        nonlocal folds
        while not stop.is_set():
            folds += (await fold(engine, limit=37)).events > 0
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(background_load()), asyncio.create_task(folding())]
    expected: dict[str, tuple[int, int]] = {}
    try:
        for round_ in range(ROUNDS):
            endpoint = f"/mine-{round_}"
            batch = [
                event(tenant.slug, at(), endpoint=endpoint, credits=rng.randrange(1, 9))
                for _ in range(BATCH)
            ]
            assert (await post_events(client, token, batch)).status_code == 200
            expected[endpoint] = (BATCH, sum(item["credits"] for item in batch))

            body = (await graphql(client, tenant.token, REPORT, {"range": window})).json()
            assert "errors" not in body, body
            usage = body["data"]["organization"]["usage"]
            rows = {
                row["endpoint"]: (row["calls"], row["creditsConsumed"])
                for row in usage["byEndpoint"]
            }
            # This batch and every earlier one, exactly: none missing, none counted twice.
            assert {name: rows.get(name) for name in expected} == expected
            assert usage["calls"] == len(expected) * BATCH
            assert sum(hour["calls"] for hour in usage["hours"]) == usage["calls"]
            assert (
                sum(hour["creditsConsumed"] for hour in usage["hours"])
                == (usage["creditsConsumed"])
            )
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert folds > 0  # folds did commit while the reports were read
