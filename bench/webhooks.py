"""Alert webhooks: delivery latency, a 100k outbox, and what alerts cost ingestion.

    .venv/bin/python bench/webhooks.py [--databases sqlite,postgres] [--crossings 40]
                                       [--outbox 100000] [--ingest-batches 30]

For each database a scratch database is made and migrated (a temporary SQLite file, or a
PostgreSQL database created on --postgres and dropped afterwards). A receiver (an asyncio
HTTP server on 127.0.0.1, in this process, answering 200) takes every webhook.

* latency: a real ``creditlens serve`` (default settings: 0.5 s poll) and ``--crossings``
  organizations, each with one alert; one batch per organization crosses its threshold,
  a fraction of a second apart. Latency = arrival at the receiver - the message's
  ``createdAt`` (the ingest transaction's instant): crossing to receipt.
* outbox: ``--outbox`` pending messages are written straight into the outbox, then a
  ``creditlens webhooks run`` process delivers them all; reported: the time to write them,
  the table's size, the due-poll query's time with all pending, the delivery rate, and the
  dispatcher's peak RSS (VmHWM).
* ingest: batches of 1,000 events for three organizations written with the ingest path in
  this process, in three variants taking turns: the alert check skipped (the code before
  alerts), the check with no alerts, the check with three enabled alerts per organization
  (none crossing). Median batch time, as events/s.

Prints markdown tables. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.webhooks.secret_box import SecretBox  # noqa: E402
from db import migrate  # noqa: E402
from db.engine import create_engine, writing  # noqa: E402
from db.ingestion import ingest  # noqa: E402
from db.queries.alerts import (  # noqa: E402
    NewMessage,
    create_alert,
    find_alert,
    outbox_row,
)
from db.queries.directory import create_organization, find_organization  # noqa: E402
from db.queries.tokens import create_token  # noqa: E402
from db.tables import webhook_deliveries  # noqa: E402
from domain.alerts import AlertWindow, Threshold  # noqa: E402
from domain.scopes import TokenScope  # noqa: E402

PEPPER = "creditlens-development-pepper"
DEV_KEY = "creditlens-development-webhook-key-do-not-use-in-production"
CREDITLENS = Path(sys.executable).parent / "creditlens"


class Receiver:
    """Counts POSTs and their arrival times; answers 200 with no body."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self.port = 0
        self.expected = 0
        self.complete = asyncio.Event()

    def expect(self, count: int) -> None:
        """Start counting afresh; ``complete`` is set once ``count`` requests arrived."""
        self.arrivals.clear()
        self.expected = count
        self.complete.clear()

    async def wait(self, within: float) -> None:
        try:
            async with asyncio.timeout(within):
                await self.complete.wait()
        except TimeoutError:
            print(f"only {len(self.arrivals)} of {self.expected} webhooks arrived")

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.arrivals.append((time.time(), body))
                if len(self.arrivals) == self.expected:
                    self.complete.set()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class Scratch:
    def __init__(self, kind: str, postgres: str) -> None:
        self.kind = kind
        self.server = postgres
        if kind == "sqlite":
            self.dir = tempfile.TemporaryDirectory()
            self.url = f"sqlite+aiosqlite:///{self.dir.name}/bench.db"
        else:
            self.name = f"creditlens_bench_{uuid.uuid4().hex[:8]}"
            self.url = make_url(postgres).set(database=self.name).render_as_string(False)

    async def __aenter__(self) -> Scratch:
        if self.kind == "postgres":
            await _pg(self.server, f'CREATE DATABASE "{self.name}"')
        await asyncio.to_thread(migrate.upgrade, self.url)
        self.engine = create_engine(self.url, pool_size=4)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.engine.dispose()
        if self.kind == "postgres":
            await _pg(self.server, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        else:
            self.dir.cleanup()


async def _pg(url: str, statement: str) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database="postgres"
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "CREDITLENS_DATABASE_URL": url,
        "CREDITLENS_LOG_LEVEL": "WARNING",
        "CREDITLENS_WEBHOOK_ALLOW_INSECURE": "true",
    }


async def _organization(engine, slug: str, now: datetime) -> int:
    async with writing(engine) as conn:
        return await create_organization(
            conn,
            slug=slug,
            name=slug,
            plan="PRO",
            timezone="UTC",
            credit_allowance=10_000_000,
            billing_cycle_anchor=datetime(2026, 1, 1, tzinfo=UTC),
            now=now,
        )


async def _alert(engine, organization_id: int, url: str, threshold: int, now: datetime) -> int:
    async with writing(engine) as conn:
        return await create_alert(
            conn,
            organization_id=organization_id,
            name=f"alert of {organization_id}",
            api_key_id=None,
            window=AlertWindow.MONTH,
            threshold=Threshold(threshold, None),
            webhook_url=url,
            sealed_secret=SecretBox(DEV_KEY).seal("whsec_" + "A" * 44),
            now=now,
        )


async def bench_latency(db: Scratch, receiver: Receiver, crossings: int) -> dict[str, float]:
    import httpx

    now = datetime.now(UTC)
    for number in range(crossings):
        organization_id = await _organization(db.engine, f"lat-{number}", now)
        await _alert(db.engine, organization_id, receiver.url, 100, now)
    async with writing(db.engine) as conn:
        _, token = await create_token(
            conn, pepper=PEPPER, scope=TokenScope.INGEST, user_id=None, now=now
        )
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        *(str(CREDITLENS), "serve", "--host", "127.0.0.1", "--port", str(port)),
        cwd=ROOT,
        env=_env(db.url),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while True:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            receiver.expect(crossings)
            for number in range(crossings):
                batch = [
                    {
                        "id": f"lat-{number}",
                        "organization": f"lat-{number}",
                        "source": "api",
                        "endpoint": "/v2/person",
                        "status": 200,
                        "credits": 150,
                        "timestamp": datetime.now(UTC).isoformat(),
                    }
                ]
                response = await http.post(
                    "/v1/events", json=batch, headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 200, response.text
                # Spread the crossings over the poll interval.
                await asyncio.sleep(0.137)
            await receiver.wait(60)
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 30)
    latencies = []
    for arrived, body in receiver.arrivals:
        created = datetime.fromisoformat(json.loads(body)["createdAt"].replace("Z", "+00:00"))
        latencies.append(arrived - created.timestamp())
    latencies.sort()
    return {
        "delivered": len(latencies),
        "p50": statistics.median(latencies),
        "p90": latencies[int(len(latencies) * 0.9) - 1],
        "max": latencies[-1],
    }


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def bench_outbox(db: Scratch, receiver: Receiver, messages: int) -> dict[str, float]:
    now = datetime.now(UTC)
    organization_id = await _organization(db.engine, "outbox", now)
    alert_id = await _alert(db.engine, organization_id, receiver.url, 10**9, now)
    async with db.engine.connect() as conn:
        organization = await find_organization(conn, ref=str(organization_id))
        alert = await find_alert(conn, organization_id=organization_id, alert_id=alert_id)
    assert organization is not None
    assert alert is not None
    new = NewMessage(alert, organization, "alert.test", (now, now + timedelta(days=1)), 0, None)
    started = time.perf_counter()
    for offset in range(0, messages, 5000):
        rows = [outbox_row(new, now=now) for _ in range(min(5000, messages - offset))]
        async with writing(db.engine) as conn:
            await conn.execute(webhook_deliveries.insert(), rows)
    written = time.perf_counter() - started
    async with db.engine.connect() as conn:
        if db.kind == "postgres":
            await conn.commit()
            await conn.execute(text("ANALYZE webhook_deliveries"))
            size = (
                await conn.execute(text("SELECT pg_total_relation_size('webhook_deliveries')"))
            ).scalar_one()
        else:
            size = await asyncio.to_thread(os.path.getsize, make_url(db.url).database or "")
        poll = []
        for _ in range(20):
            begun = time.perf_counter()
            await conn.execute(
                select(webhook_deliveries.c.id)
                .where(
                    webhook_deliveries.c.status == "PENDING",
                    webhook_deliveries.c.next_attempt_at <= datetime.now(UTC),
                )
                .limit(1)
            )
            poll.append(time.perf_counter() - begun)
    receiver.expect(messages)
    dispatcher = await asyncio.create_subprocess_exec(
        str(CREDITLENS),
        "webhooks",
        "run",
        cwd=ROOT,
        env=_env(db.url),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await receiver.wait(3600)
    delivered_at = time.time()
    first_arrival = receiver.arrivals[0][0]
    await asyncio.sleep(1.0)  # its last outcomes recorded
    peak = _peak_rss_mib(dispatcher.pid)
    dispatcher.send_signal(signal.SIGTERM)
    await dispatcher.wait()
    async with db.engine.connect() as conn:
        done = (
            await conn.execute(
                select(func.count())
                .select_from(webhook_deliveries)
                .where(webhook_deliveries.c.status == "SUCCEEDED")
            )
        ).scalar_one()
    return {
        "messages": messages,
        "write_s": written,
        "size_mib": size / 2**20,
        "poll_ms": statistics.median(poll) * 1000,
        "rate": len(receiver.arrivals) / max(delivered_at - first_arrival, 1e-9),
        "received": len(receiver.arrivals),
        "succeeded": done,
        "rss_mib": peak,
    }


def _batch(slugs: tuple[str, ...], number: int, start: datetime) -> list[dict[str, object]]:
    return [
        {
            "id": f"ing-{number}-{i}",
            "organization": slugs[i % len(slugs)],
            "api_key": f"key-{i % 7}",
            "source": "api",
            "endpoint": f"/v2/endpoint-{i % 11}",
            "status": 200,
            "credits": 1,
            "timestamp": (start + timedelta(milliseconds=number * 1000 + i)).isoformat(),
        }
        for i in range(1000)
    ]


async def _skip_alerts(*_: object, **__: object) -> int:
    return 0


async def bench_ingest(db: Scratch, batches: int, receiver: Receiver) -> dict[str, float]:
    """Median time of a 1,000-event batch (3 organizations) written by the ingest path, in
    three variants taking turns batch by batch (so machine load hits them alike): without
    the alert check at all (the code before alerts), with the check and no alerts, and with
    3 enabled alerts per organization (none crossing: every batch reads the totals)."""
    from db.ingestion import writer

    now = datetime.now(UTC)
    plain = ("acme", "globex", "initech")
    alerted = ("hooli", "umbrella", "wonka")
    for slug in plain:
        await _organization(db.engine, slug, now)
    for slug in alerted:
        organization_id = await _organization(db.engine, slug, now)
        for _ in range(3):
            await _alert(db.engine, organization_id, receiver.url, 10**12, now)
    start = now - timedelta(minutes=30)
    variants = {
        "without the alert check": plain,
        "check, no alerts": plain,
        "check, 3 alerts per organization": alerted,
    }
    timings: dict[str, list[float]] = {label: [] for label in variants}
    real = writer.record_crossings
    for number in range(batches + 1):
        for index, (label, slugs) in enumerate(variants.items()):
            writer.record_crossings = _skip_alerts if index == 0 else real  # type: ignore[assignment]
            raws = _batch(slugs, number * 3 + index, start)
            begun = time.perf_counter()
            await ingest(db.engine, raws, now=datetime.now(UTC))
            if number:  # the first round registers keys and users: left out
                timings[label].append(time.perf_counter() - begun)
    writer.record_crossings = real
    return {label: 1000 / statistics.median(times) for label, times in timings.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--crossings", type=int, default=40)
    parser.add_argument("--outbox", type=int, default=100_000)
    parser.add_argument("--ingest-batches", type=int, default=40)
    parser.add_argument("--parts", default="latency,outbox,ingest")
    args = parser.parse_args()
    receiver = Receiver()
    await receiver.start()
    parts = args.parts.split(",")
    for kind in args.databases.split(","):
        print(f"\n## {kind}\n")
        if "latency" in parts:
            async with Scratch(kind, args.postgres) as db:
                latency = await bench_latency(db, receiver, args.crossings)
            print(
                f"latency, crossing -> receipt ({latency['delivered']} of {args.crossings}): "
                f"p50 {latency['p50'] * 1000:.0f} ms, p90 {latency['p90'] * 1000:.0f} ms, "
                f"max {latency['max'] * 1000:.0f} ms"
            )
        if "outbox" in parts:
            async with Scratch(kind, args.postgres) as db:
                outbox = await bench_outbox(db, receiver, args.outbox)
            print(
                f"outbox of {outbox['messages']:,}: written in {outbox['write_s']:.1f} s, "
                f"{outbox['size_mib']:.0f} MiB on disk, due-poll {outbox['poll_ms']:.2f} ms, "
                f"delivered {outbox['received']:,} ({outbox['succeeded']:,} recorded) at "
                f"{outbox['rate']:,.0f}/s, dispatcher peak RSS {outbox['rss_mib']:.0f} MiB"
            )
        if "ingest" in parts:
            async with Scratch(kind, args.postgres) as db:
                rates = await bench_ingest(db, args.ingest_batches, receiver)
            print(
                "ingest in process, batches of 1,000: "
                + ", ".join(f"{label} {rate:,.0f} events/s" for label, rate in rates.items())
            )


if __name__ == "__main__":
    asyncio.run(main())
