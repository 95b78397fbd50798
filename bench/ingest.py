"""Ingestion throughput: events/s in batches of 1,000, via HTTP and via the CLI.

    .venv/bin/python bench/ingest.py [--events 100000] [--databases sqlite,postgres]
        [--shapes steady,live,history] [--roots before=/tmp/cl-before,after=.]

Shapes (issue 15): ``steady`` (3 organizations, time-ordered: the friendliest), ``live``
(120 organizations of Zipf-distributed traffic, timestamps within the last 5 minutes,
mixed in every batch) and ``history`` (4 organizations, timestamps spread over 120 days,
out of order). ``--roots`` runs each shape against several code trees (e.g. a worktree of
main and this one), interleaved, so the load of the machine is alike for both.

Per run: events/s, the p99 batch latency (client side), the server's peak RSS, and, when
the code tree has a rollup tail (``usage_pending``), the fold lag: the age of the oldest
pending event sampled every 100 ms (p99 and max over the run and the drain after it), and
how long the tail took to drain after the last 200.

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


def _org_names(shape: str) -> list[str]:
    if shape == "live":
        return [f"live-{i:03d}" for i in range(120)]
    if shape == "history":
        return ["hist-a", "hist-b", "hist-c", "hist-d"]
    return ORGS


# Statuses of the live and history shapes: 3 calls in 7 fail (404, 429, 500), far more than
# real traffic (8 % in bench/generate.py's datasets, 9 % of the demo's credits), so each
# event more often adds to an outcome's rollup rows beside the all-outcomes ones
# (docs/rollups.md). ``--failures`` draws a chosen share instead.
SHAPE_STATUSES = [200, 200, 200, 200, 404, 429, 500]


def _status(rng: random.Random, failures: float | None) -> int:
    if failures is None:
        return rng.choice(SHAPE_STATUSES)
    return rng.choice([404, 429, 500]) if rng.random() < failures else 200


def make_shape(
    shape: str, count: int, seed: int = 1, failures: float | None = None
) -> list[dict[str, object]]:
    """The events of ``shape`` (see the module docstring)."""
    if shape == "steady":
        return make_events(count, seed)
    rng = random.Random(seed)
    orgs = _org_names(shape)
    now = datetime.now(UTC)
    # Zipf over organizations (s = 1.1): a few large tenants and a long tail.
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(orgs))]
    popularity = [1 / (rank + 1) for rank in range(len(ENDPOINTS))]
    spread = timedelta(minutes=5) if shape == "live" else timedelta(days=120)
    events: list[dict[str, object]] = []
    for i in range(count):
        org = rng.choices(orgs, weights=weights)[0] if shape == "live" else rng.choice(orgs)
        user = f"{org}-user-{rng.randrange(25)}" if rng.random() < 0.8 else None
        at = now - spread * rng.random()
        item: dict[str, object] = {
            "id": f"evt-{seed}-{i}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
            "organization": org,
            "api_key": {"id": f"{org}-key-{rng.randrange(6)}", "name": "Production"},
            "source": rng.choice(SOURCES),
            "endpoint": rng.choices(ENDPOINTS, weights=popularity)[0],
            "status": _status(rng, failures),
            "credits": rng.choice([0, 1, 1, 1, 2, 5]),
            "timestamp": at.isoformat().replace("+00:00", "Z"),
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

    def __init__(self, kind: str, postgres: str, root: Path, orgs: list[str]) -> None:
        self.kind = kind
        self.server = postgres
        self.root = root
        self.orgs = orgs
        self.name = f"creditlens_bench_{uuid.uuid4().hex[:8]}"
        self.tmp = tempfile.TemporaryDirectory(prefix="creditlens-bench-")
        if kind == "sqlite":
            self.url = f"sqlite+aiosqlite:///{self.tmp.name}/bench.db"
        else:
            from sqlalchemy.engine import make_url

            self.url = make_url(postgres).set(database=self.name).render_as_string(False)

    def __enter__(self) -> Scratch:
        if self.kind == "postgres":
            asyncio.run(_pg(self.server, f'CREATE DATABASE "{self.name}"'))
        # Migrated and seeded by the code tree under test (its own migrations).
        done = subprocess.run(
            [sys.executable, __file__, "--prepare", self.url, ",".join(self.orgs)],
            cwd=self.root,
            env={**os.environ, "PYTHONPATH": str(self.root)},
            capture_output=True,
            text=True,
            check=True,
        )
        self.token = done.stdout.strip().splitlines()[-1]
        return self

    async def _seed(self) -> str:
        from db.engine import create_engine, writing
        from db.queries.directory import create_organization
        from db.queries.tokens import create_token
        from domain.scopes import TokenScope

        engine = create_engine(self.url)
        now = datetime.now(UTC)
        async with writing(engine) as conn:
            for slug in self.orgs:
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

    async def pending(self) -> tuple[int, int | None] | None:
        """(pending rows, oldest received_ms), or None without a rollup tail."""
        from sqlalchemy import text

        from db.engine import create_engine

        engine = create_engine(self.url)
        try:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(text("SELECT count(*), min(received_ms) FROM usage_pending"))
                ).one()
                return int(row[0]), None if row[1] is None else int(row[1])
        except Exception:  # no such table: a tree without the tail
            return None
        finally:
            await engine.dispose()

    async def counts(self) -> tuple[int, int, int]:
        """(events, their credits, total-dimension credits of the 15-minute rollup)."""
        from sqlalchemy import text

        from db.engine import create_engine

        engine = create_engine(self.url)
        async with engine.connect() as conn:
            events, credits = (
                await conn.execute(text("SELECT count(*), sum(credits) FROM usage_events"))
            ).one()
            # Either layout (a tree from before migration 0007 may be the one measured):
            # the all-outcomes rows where there are any, else the rows of every outcome.
            every, summed, all_outcomes = (
                await conn.execute(
                    text(
                        "SELECT sum(credits), sum(CASE WHEN outcome = 0 THEN credits END), "
                        "count(CASE WHEN outcome = 0 THEN 1 END) FROM usage_rollups "
                        "WHERE grain = 900 AND dimension = 0 AND api_key_id <> -1"
                    )
                )
            ).one()
        await engine.dispose()
        rolled = summed if all_outcomes else every
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

    latencies: list[float] = []

    def send(worker: int) -> tuple[int, int]:
        accepted = duplicates = 0
        for body in bodies[worker::concurrency]:
            sent = time.perf_counter()
            response = clients[worker].post("/v1/events", content=body, headers=headers)
            latencies.append(time.perf_counter() - sent)
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
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        json.dumps({"seconds": seconds, "accepted": accepted, "duplicates": duplicates, "p99": p99})
    )


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
    env["PYTHONPATH"] = str(db.root)
    server = subprocess.Popen(command, cwd=db.root, env=env)
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
        sampler = LagSampler(db)
        sampler.start()
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
            finished = time.monotonic()
            drained = sampler.drain(finished)
        finally:
            sampler.stop()
            os.unlink(out.name)
        result = dict(json.loads(done.stdout))
        result["rss_mb"] = _peak_rss_mb(server.pid)
        result["cpu_s"] = _cpu_seconds(server.pid)
        result.update(sampler.summary())
        result["drain"] = drained
        return result
    finally:
        server.send_signal(2)  # SIGINT: lets py-spy write its profile
        server.wait(timeout=60)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process so far (load-independent, unlike time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LagSampler:
    """Samples the age of the oldest pending event every 100 ms in a thread of its own."""

    def __init__(self, db: Scratch) -> None:
        import threading

        self.db = db
        self.ages: list[float] = []
        self.has_tail = True
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _sample(self) -> int | None:
        found = asyncio.run(self.db.pending())
        if found is None:
            self.has_tail = False
            return None
        count, oldest = found
        self.ages.append(0.0 if oldest is None else max(0.0, time.time() - oldest / 1000))
        return count

    def _run(self) -> None:
        while not self.halt.is_set() and self.has_tail:
            self._sample()
            self.halt.wait(0.1)

    def drain(self, since: float) -> float | None:
        """Seconds from ``since`` until nothing is pending (None without a tail)."""
        self.stop()
        while self.has_tail:
            count = self._sample()
            if not count:
                break
            time.sleep(0.1)
        return time.monotonic() - since if self.has_tail else None

    def stop(self) -> None:
        self.halt.set()
        if self.thread.is_alive():
            self.thread.join()

    def summary(self) -> dict[str, float]:
        if not self.has_tail or not self.ages:
            return {}
        ages = sorted(self.ages)
        return {"lag_p99": ages[min(len(ages) - 1, int(len(ages) * 0.99))], "lag_max": ages[-1]}


# --- CLI ------------------------------------------------------------------------------------


def bench_cli(db: Scratch, events: list[dict[str, object]], batch: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as out:
        for item in events:
            out.write(json.dumps(item) + "\n")
    env = {**os.environ, "CREDITLENS_DATABASE_URL": db.url, "PYTHONPATH": str(db.root)}
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [
                *(sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())"),
                *("ingest", out.name, "--json", "-q"),
                *("--batch-size", str(batch)),
            ],
            cwd=db.root,
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


def _ingest_in_process(url: str, shape: str, count: int, fold: str) -> None:
    """Run in the code tree under test (under callgrind): write ``count`` events of
    ``shape`` through the writer in batches of 1,000; then fold the tail if ``fold``."""
    sys.path.insert(0, os.getcwd())
    from db.engine import create_engine
    from db.ingestion.writer import ingest

    events = make_shape(shape, count, seed=7)

    async def run() -> None:
        engine = create_engine(url)
        now = datetime.now(UTC)
        for start in range(0, len(events), 1000):
            await ingest(engine, events[start : start + 1000], now=now)
        if fold == "fold" and (Path(os.getcwd()) / "db" / "folding.py").exists():
            from db.folding import fold_all

            await fold_all(engine)
        await engine.dispose()

    asyncio.run(run())


def _instructions(root: Path, shape: str, count: int, fold: str) -> int:
    """Instructions (callgrind) of a process writing ``count`` events into a new SQLite
    database, set-up included: differences of two counts cancel it."""
    tmp = tempfile.TemporaryDirectory(prefix="creditlens-instr-")
    url = f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    env = {**os.environ, "PYTHONPATH": str(root)}
    try:
        subprocess.run(
            [sys.executable, __file__, "--prepare", url, ",".join(_org_names(shape))],
            cwd=root, env=env, capture_output=True, check=True,
        )  # fmt: skip
        done = subprocess.run(
            [
                *("valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp.name}/cg.out"),
                *(sys.executable, __file__, "--ingest-in-process", url, shape, str(count), fold),
            ],
            cwd=root, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        tmp.cleanup()
    collected = [line for line in done.stderr.splitlines() if "Collected :" in line]
    return int(collected[-1].split(":")[-1].strip())


def count_instructions(roots: list[tuple[str, Path]], shapes: list[str], count: int) -> None:
    """Instructions per event on SQLite (load-independent; SQLite runs in the process):
    (I(2n) - I(n)) / n, for each tree; with and without folding the tail."""
    print("| shape | code | instructions / event (ingest) | ... + fold | load avg |")
    print("|---|---|---:|---:|---:|")
    for shape in shapes:
        for name, root in roots:
            load = os.getloadavg()[0]
            per_event = []
            for fold in ("no", "fold"):
                low = _instructions(root, shape, count, fold)
                high = _instructions(root, shape, 2 * count, fold)
                per_event.append((high - low) / count)
            print(
                f"| {shape} | {name} | {per_event[0]:,.0f} | {per_event[1]:,.0f} | {load:.1f} |",
                flush=True,
            )


def _prepare(url: str, orgs: str) -> None:
    """Run in the code tree under test: migrate, seed, print the ingest token."""
    sys.path.insert(0, os.getcwd())  # that tree's db and migrations, not this file's
    from db import migrate

    migrate.upgrade(url)
    scratch = Scratch.__new__(Scratch)
    scratch.url = url
    scratch.orgs = orgs.split(",")
    print(asyncio.run(scratch._seed()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--shapes", default="steady,live,history")
    parser.add_argument(
        "--failures",
        type=float,
        default=None,
        help="share of failed calls in live and history (default: 3 in 7, SHAPE_STATUSES)",
    )
    parser.add_argument("--paths", default="http")
    parser.add_argument("--roots", default=f"this={ROOT}", help="name=path,... code trees")
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--profile", default="", help="py-spy output file of the HTTP server")
    parser.add_argument("--load-generator", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--ingest-in-process", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument(
        "--instructions",
        type=int,
        default=0,
        help="instead: callgrind instructions per event on SQLite, from runs of N and 2N",
    )
    args = parser.parse_args()
    if args.ingest_in_process:
        url, shape, count, fold = args.ingest_in_process
        _ingest_in_process(url, shape, int(count), fold)
        return
    if args.load_generator:
        load_generator(*args.load_generator, concurrency=args.concurrency)
        return
    if args.prepare:
        _prepare(*args.prepare)
        return

    roots = [(name, Path(path).resolve()) for name, path in
             (item.split("=", 1) for item in args.roots.split(","))]  # fmt: skip
    if args.instructions:
        count_instructions(roots, args.shapes.split(","), args.instructions)
        return
    rows = []
    for kind in args.databases.split(","):
        for shape in args.shapes.split(","):
            for path in args.paths.split(","):
                events = make_shape(shape, args.events, seed=len(rows) + 1, failures=args.failures)
                for name, root in roots:
                    load = os.getloadavg()[0]
                    with Scratch(kind, args.postgres, root, _org_names(shape)) as db:
                        if path == "http":
                            result = bench_http(
                                db, events, args.batch, args.concurrency, args.profile
                            )
                        else:
                            result = bench_cli(db, events, args.batch)
                        seconds = result["seconds"]
                        stored, credits, rolled = asyncio.run(db.counts())
                    assert result["accepted"] == stored == len(events), (result, stored)
                    assert credits == rolled == sum(int(str(e["credits"])) for e in events)
                    rows.append((kind, shape, path, name, len(events), seconds, load, result))
                    print(
                        f"{kind} {shape} {path} {name}: {len(events) / seconds:,.0f} events/s "
                        f"(load {load:.1f}) {result}",
                        file=sys.stderr,
                    )

    print(f"\nIngestion, batches of {args.batch}, {args.concurrency} client(s), "
          f"{os.cpu_count()} CPUs\n")  # fmt: skip
    print(
        "| database | shape | path | code | events | events/s | p99 batch | server RSS "
        "| server CPU ms / 1k events | fold lag p99 / max | drain after last 200 | load avg |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, shape, path, name, count, seconds, load, result in rows:
        p99 = f"{result['p99'] * 1000:.0f} ms" if "p99" in result else "-"
        rss = f"{result['rss_mb']:.0f} MB" if "rss_mb" in result else "-"
        lag = f"{result['lag_p99']:.2f} / {result['lag_max']:.2f} s" if "lag_max" in result else "-"
        drain = f"{result['drain']:.1f} s" if result.get("drain") is not None else "-"
        cpu = f"{result['cpu_s'] * 1e6 / count:.0f}" if "cpu_s" in result else "-"
        print(
            f"| {kind} | {shape} | {path} | {name} | {count:,} | {count / seconds:,.0f} | {p99} "
            f"| {rss} | {cpu} | {lag} | {drain} | {load:.1f} |"
        )


if __name__ == "__main__":
    main()
