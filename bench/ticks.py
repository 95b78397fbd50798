"""Tick latency of ``usageUpdates``: from an ingest's 200 (its commit) to the tick.

    python bench/ticks.py --dataset bench/out/sqlite-100k.json --samples 20

A real ``creditlens serve`` (one worker without Redis, then two workers through Redis), one
WebSocket subscription of the dataset's admin, and one event ingested every 1.2 s (ticks are
at most one a second, so each ingest gets its own). Prints p50 and max; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from reads import OUT  # noqa: E402

from tests.live_server import live_server  # noqa: E402

PORT = 18502
REDIS_URL = "redis://127.0.0.1:6379/14"
QUERY = "subscription { usageUpdates { todayCalls } }"


async def ingest_token(database_url: str) -> str:
    from app.settings import Settings
    from db.engine import create_engine, writing
    from db.queries.tokens import create_token
    from domain.scopes import TokenScope

    engine = create_engine(database_url)
    try:
        async with writing(engine) as conn:
            _, token = await create_token(
                conn,
                pepper=Settings().token_pepper.get_secret_value(),
                scope=TokenScope.INGEST,
                user_id=None,
                now=datetime.now(UTC),
            )
    finally:
        await engine.dispose()
    return token


async def measure(dataset: dict[str, str], token: str, samples: int) -> list[float]:
    url = f"ws://127.0.0.1:{PORT}/graphql"
    delays = []
    async with (
        connect(url, subprotocols=["graphql-transport-ws"]) as socket,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=30) as http,
    ):
        init = {"Authorization": f"Bearer {dataset['token']}"}
        await socket.send(json.dumps({"type": "connection_init", "payload": init}))
        await socket.recv()
        payload = {"query": QUERY}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        await socket.recv()  # the first tick
        for index in range(samples):
            await asyncio.sleep(1.2)
            event = {
                "id": f"tick-{time.time_ns()}-{index}",
                "organization": dataset["organization"],
                "source": "bench",
                "endpoint": "/v1/tick",
                "status": 200,
                "credits": 1,
                "timestamp": datetime.now(UTC).isoformat(),
            }
            headers = {"Authorization": f"Bearer {token}"}
            response = await http.post("/v1/events", json=[event], headers=headers)
            committed = time.perf_counter()
            response.raise_for_status()
            await asyncio.wait_for(socket.recv(), 10)
            delays.append((time.perf_counter() - committed) * 1000)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=OUT / "sqlite-100k.json")
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    dataset = json.loads(args.dataset.read_text())
    token = asyncio.run(ingest_token(dataset["url"]))
    print("| server | samples | p50 ms | max ms |")
    print("|---|---|---|---|")
    for workers, redis in ((1, False), (2, True)):
        with live_server(
            dataset["url"],
            OUT / "ticks-server.log",
            port=PORT,
            serve_args=("--workers", str(workers)),
            environment={"CREDITLENS_REDIS_URL": REDIS_URL} if redis else {},
            log_level="WARNING",
        ):
            delays = asyncio.run(measure(dataset, token, args.samples))
        label = f"{workers} worker(s), {'Redis' if redis else 'in process'}"
        print(
            f"| {label} | {len(delays)} | {statistics.median(delays):.1f} | {max(delays):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
