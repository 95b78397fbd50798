"""Ingestion throughput: events/s in batches of 1,000, via HTTP and via the CLI.

    .venv/bin/python bench/ingest.py [--events 100000] [--databases sqlite,postgres]

For each database a scratch database is made and migrated (a temporary SQLite file; a
PostgreSQL database created on the server of --postgres and dropped afterwards), with a few
organizations and an ingest token. Events are realistic and in time order: a few
organizations, API keys, endpoints, sources and users, one event every few milliseconds.

* HTTP: a real uvicorn process (one worker) serves the app; a load generator in a separate
  process posts pre-serialised JSON batches over keep-alive connections (--concurrency at
  once) and times them.
* CLI: ``creditlens ingest FILE`` on an NDJSON file; its own timing (without interpreter
  start-up) and the wall-clock time of the whole process are both reported.

Prints a markdown table. Not a test: nothing is asserted except that every event was
accepted exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEPPER = "creditlens-development-pepper"
ORGS = ["acme", "globex", "initech"]
SOURCES = ["api", "crm_integration", "extension", "zapier"]
ENDPOINTS = [
    "/v2/person",
    "/v2/company",
    "/v2/person/bulk",
    "/v2/email-finder",
    "/v2/phone-finder",
    "prospecting/contact/enrich",
    "prospecting/company/search",
    "prospecting/people/search",
    "/v1/credits",
    "/v2/lists",
]


def make_events(count: int, seed: int = 1) -> list[dict[str, object]]:
    """Time-ordered events over 19 hours, shaped like real traffic: each user mostly calls
    with their team's key, each key mostly comes from one integration (source), and the
    endpoints follow a skewed popularity."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=20)
    step = timedelta(hours=19) / count
    keys = {org: [f"{org}-key-{i}" for i in range(6)] for org in ORGS}
    key_source = {key: SOURCES[i % len(SOURCES)] for org in ORGS for i, key in enumerate(keys[org])}
    users = {org: [f"{org}-user-{i}" for i in range(25)] for org in ORGS}
    home = {user: keys[org][i % 6] for org in ORGS for i, user in enumerate(users[org])}
    popularity = [1 / (rank + 1) for rank in range(len(ENDPOINTS))]
    events: list[dict[str, object]] = []
    for i in range(count):
        org = rng.choices(ORGS, weights=[6, 3, 1])[0]
        user = rng.choice(users[org]) if rng.random() < 0.8 else None
        key = home[user] if user and rng.random() < 0.9 else rng.choice(keys[org])
        source = key_source[key] if rng.random() < 0.9 else rng.choice(SOURCES)
        item: dict[str, object] = {
            "id": f"evt-{seed}-{i}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
            "organization": org,
            "api_key": {"id": key, "name": "Production"},
            "source": source,
            "endpoint": rng.choices(ENDPOINTS, weights=popularity)[0],
            "status": rng.choice([200, 200, 200, 200, 404, 429]),
            "credits": rng.choice([0, 1, 1, 1, 2, 5]),
            "timestamp": (start + step * i).isoformat().replace("+00:00", "Z"),
        }
        if user:
            item["user"] = user
        events.append(item)
    return events


# --- databases ------------------------------------------------------------------------------


async def _pg(url: str, statement: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


class Scratch:
    """A migrated scratch database with the organizations and an ingest token."""

    def __init__(self, kind: str, postgres: str) -> None:
        self.kind = kind
        self.server = postgres
        self.name = f"creditlens_bench_{uuid.uuid4().hex[:8]}"
        self.tmp = tempfile.TemporaryDirectory(prefix="creditlens-bench-")
        if kind == "sqlite":
            self.url = f"sqlite+aiosqlite:///{self.tmp.name}/bench.db"
        else:
            from sqlalchemy.engine import make_url

            self.url = make_url(postgres).set(database=self.name).render_as_string(False)

    def __enter__(self) -> Scratch:
        from db import migrate

        if self.kind == "postgres":
            asyncio.run(_pg(self.server, f'CREATE DATABASE "{self.name}"'))
        migrate.upgrade(self.url)
        self.token = asyncio.run(self._seed())
        return self

    async def _seed(self) -> str:
        from db.engine import create_engine, writing
        from db.queries.directory import create_organization
        from db.queries.tokens import create_token
        from domain.scopes import TokenScope

        engine = create_engine(self.url)
        now = datetime.now(UTC)
        async with writing(engine) as conn:
            for slug in ORGS:
                await create_organization(
                    conn,
                    slug=slug,
                    name=slug.title(),
                    plan="PRO",
                    timezone="UTC",
                    credit_allowance=10**9,
                    billing_cycle_anchor=now,
                    now=now,
                )
            _, token = await create_token(
                conn, pepper=PEPPER, scope=TokenScope.INGEST, user_id=None, now=now
            )
        await engine.dispose()
        return token

    async def counts(self) -> tuple[int, int, int]:
        """(events, their credits, total-dimension credits of the 15-minute rollup)."""
        from sqlalchemy import text

        from db.engine import create_engine

        engine = create_engine(self.url)
        async with engine.connect() as conn:
            events, credits = (
                await conn.execute(text("SELECT count(*), sum(credits) FROM usage_events"))
            ).one()
            rolled = (
                await conn.execute(
                    text(
                        "SELECT sum(credits) FROM usage_rollups WHERE grain = 900 AND dimension = 0"
                    )
                )
            ).scalar_one()
        await engine.dispose()
        return int(events), int(credits or 0), int(rolled or 0)

    def __exit__(self, *_: object) -> None:
        if self.kind == "postgres":
            asyncio.run(_pg(self.server, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.tmp.cleanup()


# --- HTTP -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load_generator(base: str, token: str, bodies_file: str, concurrency: int) -> None:
    """Run in its own process: post every body, print {"seconds", "accepted", ...}."""
    import httpx

    bodies = Path(bodies_file).read_bytes().split(b"\n\x1e\n")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    clients = [httpx.Client(base_url=base, timeout=120) for _ in range(concurrency)]
    for client in clients:  # open the connections before timing
        client.get("/healthz")

    def send(worker: int) -> tuple[int, int]:
        accepted = duplicates = 0
        for body in bodies[worker::concurrency]:
            response = clients[worker].post("/v1/events", content=body, headers=headers)
            response.raise_for_status()
            answer = response.json()
            accepted += answer["accepted"]
            duplicates += answer["duplicates"]
        return accepted, duplicates

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(send, range(concurrency)))
    seconds = time.perf_counter() - started
    accepted = sum(a for a, _ in results)
    duplicates = sum(d for _, d in results)
    print(json.dumps({"seconds": seconds, "accepted": accepted, "duplicates": duplicates}))


def bench_http(
    db: Scratch, events: list[dict[str, object]], batch: int, concurrency: int, profile: str
) -> dict[str, float]:
    port = _free_port()
    env = {**os.environ, "CREDITLENS_DATABASE_URL": db.url, "CREDITLENS_LOG_LEVEL": "WARNING"}
    env["CREDITLENS_INGEST_RATE_LIMIT_PER_MINUTE"] = "0"
    command = [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    if profile:
        fmt = "raw" if profile.endswith(".txt") else "speedscope"
        command = [str(ROOT / ".venv/bin/py-spy"), "record", "-o", profile, "-f", fmt, "-r", "200"]
        command += ["--", sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
        with tempfile.NamedTemporaryFile("wb", suffix=".bodies", delete=False) as out:
            bodies = [
                json.dumps(events[i : i + batch]).encode() for i in range(0, len(events), batch)
            ]
            out.write(b"\n\x1e\n".join(bodies))
        try:
            done = subprocess.run(
                [
                    *(sys.executable, __file__, "--load-generator", base, db.token, out.name),
                    *("--concurrency", str(concurrency)),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            os.unlink(out.name)
        return dict(json.loads(done.stdout))
    finally:
        server.send_signal(2)  # SIGINT: lets py-spy write its profile
        server.wait(timeout=60)


# --- CLI ------------------------------------------------------------------------------------


def bench_cli(db: Scratch, events: list[dict[str, object]], batch: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as out:
        for item in events:
            out.write(json.dumps(item) + "\n")
    env = {**os.environ, "CREDITLENS_DATABASE_URL": db.url}
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [
                *(str(ROOT / ".venv/bin/creditlens"), "ingest", out.name, "--json", "-q"),
                *("--batch-size", str(batch)),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - started
    finally:
        os.unlink(out.name)
    summary = json.loads(done.stdout)
    summary["wall"] = wall
    return dict(summary)


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--paths", default="http,cli")
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--profile", default="", help="py-spy output file of the HTTP server")
    parser.add_argument("--load-generator", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_generator:
        load_generator(*args.load_generator, concurrency=args.concurrency)
        return

    rows = []
    for kind in args.databases.split(","):
        for path in args.paths.split(","):
            events = make_events(args.events, seed=len(rows) + 1)
            with Scratch(kind, args.postgres) as db:
                if path == "http":
                    result = bench_http(db, events, args.batch, args.concurrency, args.profile)
                    seconds, wall = result["seconds"], result["seconds"]
                else:
                    result = bench_cli(db, events, args.batch)
                    seconds, wall = result["seconds"], result["wall"]
                stored, credits, rolled = asyncio.run(db.counts())
            assert result["accepted"] == stored == len(events), (result, stored)
            assert credits == rolled == sum(int(str(e["credits"])) for e in events)
            rows.append((kind, path, len(events), seconds, wall))
            print(f"{kind} {path}: {len(events) / seconds:,.0f} events/s", file=sys.stderr)

    print(f"\nIngestion, batches of {args.batch}, {os.cpu_count()} CPUs\n")
    print("| database | path | events | seconds | events/s | events/s incl. start-up |")
    print("|---|---|---:|---:|---:|---:|")
    for kind, path, count, seconds, wall in rows:
        print(
            f"| {kind} | {path} | {count:,} | {seconds:.2f} | {count / seconds:,.0f} "
            f"| {count / wall:,.0f} |"
        )


if __name__ == "__main__":
    main()
