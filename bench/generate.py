"""Seeded, realistic usage data, loaded through the real ingestion path.

    python bench/generate.py --size 1m --backend sqlite        # load (or reuse) a dataset
    python bench/generate.py --size 10m --backend postgres --fresh
    python bench/generate.py --size 10m --backend sqlite --via cli   # NDJSON + `creditlens ingest`

The world: ``ORGANIZATIONS`` organizations whose traffic follows a Zipf law (the largest,
``bench-000``, is the one the read benchmarks query), each with API keys, users and a
subset of an endpoint catalogue. A key is one integration: it calls a handful of endpoints
and mostly comes from one source. Traffic has a daily rhythm (peak in the European
afternoon), a weekly one (weekends at a third) and grows over the span, and events are
produced in time order, ending at the moment the load started, so the read presets
(LAST_30_DAYS, LAST_90_DAYS) cover real data.

One planted spike (``plan_spike``), so ``UsageReport.spikes`` and its drivers have
something to find at every size: on the last weekday at least ``SPIKE_DAYS_BEFORE_END``
days before the end, from 09:00 to 17:00 in ``bench-000``'s zone, a share of the *other*
organizations' calls become calls of one ``bench-000`` key on one of its paid endpoints
(a bulk run gone wild). The key and endpoint are drawn from the seed; which calls are
converted is drawn from a second generator seeded from the seed, so the event count per
size, every event id and every other event are exactly those of a generator without the
spike. The dataset's description records the spike (``spike``).

Events go through ``db.ingestion.ingest`` in batches of 1,000 (``--via api``, the default)
or through ``creditlens ingest FILE`` under ``/usr/bin/time -v`` (``--via cli``, which also
records the CLI's peak RSS). A dataset is described by ``bench/out/<backend>-<size>.json``
(URL, admin token, the key to filter on, the end instant); when the database already holds
the requested number of events the load is skipped, and an interrupted load resumes where
it stopped (batches commit in order, so the stored count is the generated prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.settings import Settings  # noqa: E402
from db import migrate  # noqa: E402
from db.engine import create_engine, writing  # noqa: E402
from db.folding import fold_all  # noqa: E402
from db.ingestion import ingest  # noqa: E402
from db.queries.directory import create_organization, create_user  # noqa: E402
from db.queries.tokens import create_token  # noqa: E402
from db.tables import api_keys, organizations, usage_events, users  # noqa: E402
from domain.outcomes import OUTCOME_CODES, outcome_of  # noqa: E402
from domain.scopes import TokenScope  # noqa: E402

OUT = ROOT / "bench" / "out"
SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
SEED = 20261101
ORGANIZATIONS = 120
SPAN_DAYS = 120
BATCH = 1_000
SLOT = timedelta(minutes=15)
ZONES = ["Europe/Berlin", "America/New_York", "Europe/London", "Asia/Kolkata", "UTC"]
SOURCES = ["api", "crm_integration", "extension", "zapier", "sheets", "webhook"]
SOURCE_WEIGHTS = [60, 15, 10, 7, 5, 3]
STATUSES = [(200, 920), (404, 40), (429, 20), (400, 15), (500, 5)]
ENDPOINTS = [
    *(f"/v2/{noun}" for noun in ("person", "company", "email", "phone", "domain", "job")),
    *(f"/v2/{noun}/search" for noun in ("person", "company", "job", "news")),
    *(f"/v2/{noun}/bulk" for noun in ("person", "company", "email")),
    *(f"prospecting/{noun}/enrich" for noun in ("contact", "account", "lead", "deal")),
    *(f"prospecting/{noun}/lookup" for noun in ("contact", "account", "email", "phone")),
    *(f"/v1/{noun}" for noun in ("lists", "exports", "webhooks", "usage", "credits", "me")),
    *(f"/v3/graph/{noun}" for noun in ("people", "orgs", "signals", "intent", "tech")),
    *(f"crm/sync/{noun}" for noun in ("hubspot", "salesforce", "pipedrive", "zoho")),
    *(f"/v2/verify/{noun}" for noun in ("email", "phone", "address")),
]


# The planted spike: day, local hours, and how many credits it adds per converted-from call
# of the other organizations in its window. At 1.2, the spike day holds about 4x the
# credits of bench-000's ordinary weekday at every size (1M: 11,203 credits against 2,792 expected).
SPIKE_DAYS_BEFORE_END = 4
SPIKE_HOURS = (9, 17)
SPIKE_CREDITS_PER_CALL = 1.2
SPIKE_MAX_SHARE = 0.6


def zipf(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights for ``n`` items (for ``random.choices(cum_weights=...)``)."""
    return list(itertools.accumulate(1 / (rank + 1) ** s for rank in range(n)))


@dataclass
class Key:
    ident: str
    endpoints: list[tuple[str, int]]  # (endpoint, credits per successful call)
    endpoint_cum: list[float]
    source: str


@dataclass
class Org:
    slug: str
    timezone: str
    keys: list[Key]
    key_cum: list[float]
    users: list[str]
    user_cum: list[float]


def build_world(rng: random.Random) -> tuple[list[Org], list[float]]:
    costs = {endpoint: rng.choice([0, 1, 1, 1, 1, 2, 2, 3, 5, 10]) for endpoint in ENDPOINTS}
    orgs = []
    for index in range(ORGANIZATIONS):
        scale = (1 / (index + 1)) ** 0.5  # size relative to the largest
        catalogue = rng.sample(ENDPOINTS, k=max(6, round(len(ENDPOINTS) * scale)))
        catalogue_cum = zipf(len(catalogue), 1.1)
        keys = []
        for number in range(max(2, round(60 * scale))):
            picked = set(rng.choices(catalogue, cum_weights=catalogue_cum, k=rng.randint(3, 12)))
            endpoints = [(endpoint, costs[endpoint]) for endpoint in sorted(picked)]
            rng.shuffle(endpoints)
            keys.append(
                Key(
                    ident=f"k-{index:03d}-{number:03d}",
                    endpoints=endpoints,
                    endpoint_cum=zipf(len(endpoints), 1.0),
                    source=rng.choices(SOURCES, weights=SOURCE_WEIGHTS)[0],
                )
            )
        users = [f"u-{index:03d}-{number:04d}" for number in range(max(3, round(300 * scale)))]
        orgs.append(
            Org(
                slug=f"bench-{index:03d}",
                timezone="Europe/Berlin" if index == 0 else ZONES[index % len(ZONES)],
                keys=keys,
                key_cum=zipf(len(keys), 1.0),
                users=users,
                user_cum=zipf(len(users), 0.9),
            )
        )
    return orgs, zipf(ORGANIZATIONS, 1.1)


@dataclass(frozen=True)
class Spike:
    day: date  # local date in the organization's zone
    start: datetime  # UTC bounds of the window
    end: datetime
    organization: str
    key: str
    endpoint: str
    cost: int
    share: float  # of the other organizations' calls in the window that become spike calls
    source: str

    def describe(self) -> dict[str, object]:
        return {
            "day": self.day.isoformat(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "organization": self.organization,
            "api_key": self.key,
            "endpoint": self.endpoint,
            "credits_per_call": self.cost,
            "share": round(self.share, 4),
        }


def plan_spike(orgs: list[Org], end: datetime, seed: int = SEED) -> Spike:
    """The planted spike: which day, key and endpoint (see the module's docstring)."""
    org = orgs[0]
    zone = ZoneInfo(org.timezone)
    day = end.astimezone(zone).date() - timedelta(days=SPIKE_DAYS_BEFORE_END)
    while day.weekday() >= 5:  # a weekday, judged against ordinary weekdays
        day -= timedelta(days=1)
    # A key of the busy head (not the busiest, which bench/reads.py filters on) and one of
    # its endpoints that costs at least 2 credits a call.
    rng = random.Random(seed * 31 + 7)
    pairs = [
        (key, endpoint, cost)
        for key in org.keys[1:13]
        for endpoint, cost in key.endpoints
        if cost >= 2
    ]
    key, endpoint, cost = rng.choice(pairs)
    start, stop = (
        datetime.combine(day, clock_time(hour), zone).astimezone(UTC) for hour in SPIKE_HOURS
    )
    return Spike(
        day=day,
        start=start,
        end=stop,
        organization=org.slug,
        key=key.ident,
        endpoint=endpoint,
        cost=cost,
        share=min(SPIKE_MAX_SHARE, SPIKE_CREDITS_PER_CALL / cost),
        source=key.source,
    )


def slot_weight(at: datetime, progress: float) -> float:
    """Relative traffic of the 15 minutes starting at ``at``: day, week and growth."""
    hour = at.hour + at.minute / 60
    daily = 0.12 + math.exp(-(((hour - 13.0) / 4.5) ** 2))
    weekly = 0.33 if at.weekday() >= 5 else 1.0
    return daily * weekly * (0.7 + 0.6 * progress)


def events(
    total: int, end: datetime, seed: int = SEED, *, spike: bool = True
) -> Iterator[dict[str, object]]:
    """``total`` events in time order over ``SPAN_DAYS`` days ending before ``end``, with
    the planted spike unless ``spike`` is false (the same events otherwise)."""
    rng = random.Random(seed)
    orgs, org_cum = build_world(rng)
    planted = plan_spike(orgs, end, seed)
    # Its own generator: converting a call must not shift the main stream's draws.
    spike_rng = random.Random(seed * 31 + 11)
    start = end - timedelta(days=SPAN_DAYS)
    slots = [start + SLOT * i for i in range(int((end - start) / SLOT))]
    weights = [slot_weight(at, i / len(slots)) for i, at in enumerate(slots)]
    scale = total / sum(weights)
    status_cum = list(itertools.accumulate(weight for _, weight in STATUSES))
    produced = 0
    carry = 0.0
    slot_seconds = SLOT.total_seconds()
    for index, (at, weight) in enumerate(zip(slots, weights, strict=True)):
        carry += weight * scale
        count = total - produced if index == len(slots) - 1 else int(carry)
        carry -= count
        offsets = sorted(rng.random() * slot_seconds for _ in range(count))
        for offset in offsets:
            moment = at + timedelta(seconds=offset)
            org = orgs[bisect.bisect(org_cum, rng.random() * org_cum[-1])]
            key = org.keys[bisect.bisect(org.key_cum, rng.random() * org.key_cum[-1])]
            endpoint, cost = key.endpoints[
                bisect.bisect(key.endpoint_cum, rng.random() * key.endpoint_cum[-1])
            ]
            status = STATUSES[bisect.bisect(status_cum, rng.random() * status_cum[-1])][0]
            roll = rng.random()
            event: dict[str, object] = {
                "id": f"ev-{produced:09d}",
                "organization": org.slug,
                "source": key.source if roll < 0.85 else rng.choice(SOURCES),
                "endpoint": endpoint,
                "status": status,
                # A call without a result may still cost a credit (404 on an enrich).
                "credits": cost if status == 200 else (1 if status == 404 and cost else 0),
                "timestamp": moment.isoformat(timespec="milliseconds"),
            }
            if roll < 0.95:  # 5% of calls come without a key (the web app, say)
                event["api_key"] = key.ident
            if rng.random() < 0.6:
                event["user"] = org.users[
                    bisect.bisect(org.user_cum, rng.random() * org.user_cum[-1])
                ]
            produced += 1
            if (
                spike
                and planted.start <= moment < planted.end
                and org.slug != planted.organization
                and spike_rng.random() < planted.share
            ):
                # The same call (id, instant), now the bulk run's: no user, always found.
                event = {
                    "id": event["id"],
                    "organization": planted.organization,
                    "source": planted.source,
                    "endpoint": planted.endpoint,
                    "status": 200,
                    "credits": planted.cost,
                    "timestamp": event["timestamp"],
                    "api_key": planted.key,
                }
            yield event


def database_url(backend: str, size: str) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{OUT / f'sqlite-{size}.db'}"
    return f"postgresql+asyncpg://{PG_SERVER.split('://', 1)[1]}/creditlens_bench_{size}"


def describe_path(backend: str, size: str) -> Path:
    return OUT / f"{backend}-{size}.json"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_exists(name: str) -> bool:
    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _pg_vacuum(name: str) -> None:
    conn = await asyncpg.connect(f"{PG_SERVER}/{name}")
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def drop(backend: str, size: str) -> None:
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{OUT / f'sqlite-{size}.db'}{suffix}").unlink(missing_ok=True)
    else:
        asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS creditlens_bench_{size} WITH (FORCE)"))
    describe_path(backend, size).unlink(missing_ok=True)


def prepare(backend: str, size: str) -> str:
    """Create (PostgreSQL) and migrate the database; return its URL."""
    url = database_url(backend, size)
    if backend == "postgres" and not asyncio.run(_pg_exists(f"creditlens_bench_{size}")):
        asyncio.run(_pg_admin(f"CREATE DATABASE creditlens_bench_{size}"))
    migrate.upgrade(url)
    return url


async def stored_events(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            count = select(func.count()).select_from(usage_events)
            return int((await conn.execute(count)).one()[0])
    finally:
        await engine.dispose()


async def setup_world(url: str, end: datetime) -> dict[str, object]:
    """Organizations, the admin of the largest and its token; the dataset's description."""
    orgs, _ = build_world(random.Random(SEED))
    engine = create_engine(url)
    pepper = Settings().token_pepper.get_secret_value()
    now = datetime.now(UTC)
    try:
        async with writing(engine) as conn:
            existing = set((await conn.execute(select(organizations.c.slug))).scalars())
            org_ids = {}
            for org in orgs:
                if org.slug in existing:
                    continue
                org_ids[org.slug] = await create_organization(
                    conn,
                    slug=org.slug,
                    name=f"Bench {org.slug}",
                    plan="PRO",
                    timezone=org.timezone,
                    credit_allowance=10_000_000,
                    billing_cycle_anchor=end - timedelta(days=SPAN_DAYS),
                    now=now,
                )
            if orgs[0].slug not in org_ids:
                raise SystemExit("organizations exist but the description is gone: use --fresh")
            admin = await create_user(
                conn,
                organization_id=org_ids[orgs[0].slug],
                external_id="bench-admin",
                name="Bench Admin",
                email=None,
                role="ADMIN",
                now=now,
            )
            _, token = await create_token(
                conn, pepper=pepper, scope=TokenScope.USER, user_id=admin, now=now
            )
    finally:
        await engine.dispose()
    return {
        "url": url,
        "organization": orgs[0].slug,
        "timezone": orgs[0].timezone,
        "token": token,
        "key": orgs[0].keys[0].ident,
        "end": end.isoformat(),
        "seed": SEED,
        "spike": plan_spike(orgs, end).describe(),
        "complete": False,
    }


async def load_api(url: str, size: int, end: datetime, log: Path) -> dict[str, float]:
    """Ingest the events not stored yet, batch by batch, logging the rate."""
    skip = await stored_events(url)
    engine = create_engine(url)
    started = time.perf_counter()
    done = 0
    stream = itertools.islice(events(size, end), skip, None)
    try:
        with log.open("a") as out:
            out.write(f"{datetime.now(UTC).isoformat()} start at {skip:,} of {size:,}\n")
            while batch := list(itertools.islice(stream, BATCH)):
                await ingest(engine, batch, now=datetime.now(UTC))
                done += len(batch)
                if done % 50_000 < BATCH:
                    elapsed = time.perf_counter() - started
                    out.write(
                        f"{skip + done:>12,} events  {done / elapsed:>8,.0f}/s  "
                        f"load {os.getloadavg()[0]:.2f}\n"
                    )
                    out.flush()
        # Ingestion leaves the events pending fold (the folder runs in `serve`, not here):
        # fold them, so the dataset's rollups hold every event, as the floor app of
        # bench/reads.py (which reads no tail) and every later reader expect.
        ingested = time.perf_counter() - started
        await fold_all(engine)
    finally:
        await engine.dispose()
    elapsed = time.perf_counter() - started
    return {
        "seconds": round(ingested, 1),
        "events_per_second": round(done / ingested if done else 0),
        "fold_seconds": round(elapsed - ingested, 1),
    }


def load_cli(url: str, size: int, end: datetime, label: str) -> dict[str, float]:
    """Write NDJSON, then `creditlens ingest` it under /usr/bin/time -v (peak RSS)."""
    path = OUT / f"events-{label}.ndjson"
    if not path.exists():
        partial = path.with_suffix(".partial")
        with partial.open("w") as out:
            for event in events(size, end):
                out.write(json.dumps(event, separators=(",", ":")) + "\n")
        partial.rename(path)
    started = time.perf_counter()
    run = subprocess.run(
        ["/usr/bin/time", "-v", str(ROOT / ".venv/bin/creditlens"), "ingest", str(path), "--json"],
        env={**os.environ, "CREDITLENS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    return {
        "seconds": round(elapsed, 1),
        "events_per_second": summary["events_per_second"],
        "cli_peak_rss_mib": round(int(rss.group(1)) / 1024, 1) if rss else -1,
    }


async def load_bulk(url: str, size: int, end: datetime) -> dict[str, object]:
    """Raw events by plain multi-row INSERTs, then `creditlens rollups rebuild`.

    Not the ingestion path: a way to build a 10M dataset for the read benchmarks in
    minutes instead of an hour. Raw events are the truth and the rebuild must give the
    same rollups as ingestion (DESIGN.md), so reads see the same database. The rebuild is
    timed under /usr/bin/time -v (issue 7, item 5).
    """
    orgs, _ = build_world(random.Random(SEED))
    engine = create_engine(url)
    started = time.perf_counter()
    created = end - timedelta(days=SPAN_DAYS)
    try:
        async with writing(engine) as conn:
            org_ids = dict(
                (await conn.execute(select(organizations.c.slug, organizations.c.id))).all()
            )
            key_rows = [
                {
                    "organization_id": org_ids[o.slug],
                    "external_id": k.ident,
                    "name": k.ident,
                    "created_at": created,
                }
                for o in orgs
                for k in o.keys
            ]
            user_rows = [
                {
                    "organization_id": org_ids[o.slug],
                    "external_id": u,
                    "name": u,
                    "role": "MEMBER",
                    "created_at": created,
                }
                for o in orgs
                for u in o.users
            ]
            await conn.execute(api_keys.insert(), key_rows)
            await conn.execute(users.insert(), user_rows)
            keys = {
                (row.organization_id, row.external_id): row.id
                for row in await conn.execute(select(api_keys))
            }
            people = {
                (row.organization_id, row.external_id): row.id
                for row in await conn.execute(select(users))
            }
        stream = events(size, end)
        while chunk := list(itertools.islice(stream, 20_000)):
            rows = []
            for event in chunk:
                org = org_ids[event["organization"]]
                key = event.get("api_key")
                user = event.get("user")
                rows.append(
                    {
                        "organization_id": org,
                        "event_id": event["id"],
                        "api_key_id": None if key is None else keys[(org, key)],
                        "user_id": None if user is None else people[(org, user)],
                        "source": event["source"],
                        "endpoint": event["endpoint"],
                        "status": event["status"],
                        "outcome": OUTCOME_CODES[outcome_of(int(event["status"]))],
                        "credits": event["credits"],
                        "occurred_at": datetime.fromisoformat(str(event["timestamp"])),
                    }
                )
            async with writing(engine) as conn:
                await conn.execute(usage_events.insert(), rows)
        # Newest use per key and organization, in one grouped pass each (a correlated
        # subquery would scan the events once per key: there is no index on the key).
        async with writing(engine) as conn:
            e = usage_events.c
            for table, column, group in (
                (api_keys, "last_used_at", e.api_key_id),
                (organizations, "last_event_at", e.organization_id),
            ):
                latest = await conn.execute(
                    select(group, func.max(e.occurred_at)).where(group.is_not(None)).group_by(group)
                )
                for ident, at in latest.all():
                    await conn.execute(
                        table.update().where(table.c.id == ident).values({column: at})
                    )
    finally:
        await engine.dispose()
    return {"raw_insert_seconds": round(time.perf_counter() - started, 1)}


def rebuild_timed(url: str) -> dict[str, object]:
    """`creditlens rollups rebuild` under /usr/bin/time -v: wall time and peak RSS."""
    rebuild = subprocess.run(
        ["/usr/bin/time", "-v", str(ROOT / ".venv/bin/creditlens"), "rollups", "rebuild", "--json"],
        env={**os.environ, "CREDITLENS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    )
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", rebuild.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", rebuild.stderr)
    return {
        "rebuild_wall": wall.group(1) if wall else "?",
        "rebuild_rows": json.loads(rebuild.stdout.strip().splitlines()[-1])["rows"],
        "rebuild_peak_rss_mib": round(int(rss.group(1)) / 1024, 1) if rss else -1,
    }


def ensure(
    backend: str, size: str, *, fresh: bool = False, via: str = "api", label: str | None = None
) -> dict[str, object]:
    """The dataset's description, loading whatever is missing first.

    ``label`` names the database (default: the size), so a second copy of a size can be
    loaded, e.g. only to measure the ingest path.
    """
    OUT.mkdir(exist_ok=True)
    total = SIZES[size]
    size = label or size
    if fresh:
        drop(backend, size)
    described = describe_path(backend, size)
    url = prepare(backend, size)
    if described.exists():
        info = json.loads(described.read_text())
    else:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        info = asyncio.run(setup_world(url, end))
        described.write_text(json.dumps(info, indent=2))
    stored = asyncio.run(stored_events(url))
    if stored >= total:
        print(f"{backend} {size}: {stored:,} events stored, reusing", file=sys.stderr)
        return info
    end = datetime.fromisoformat(str(info["end"]))
    print(f"{backend} {size}: {stored:,} of {total:,} stored, loading via {via}", file=sys.stderr)
    log = OUT / f"load-{backend}-{size}.log"
    if via == "cli":
        stats = load_cli(url, total, end, f"{size}")
    elif via == "bulk":
        if stored:
            raise SystemExit("a bulk load needs an empty database: use --fresh")
        stats = {**asyncio.run(load_bulk(url, total, end)), **rebuild_timed(url)}
    else:
        stats = asyncio.run(load_api(url, total, end, log))
    if backend == "postgres":
        # Steady state: autovacuum would get there eventually; reads before it do seq scans
        # on a table the planner believes empty and no index-only scans.
        asyncio.run(_pg_vacuum(f"creditlens_bench_{size}"))
    info.update(complete=True, load=stats, loaded_at=datetime.now(UTC).isoformat())
    described.write_text(json.dumps(info, indent=2))
    print(f"{backend} {size}: loaded {stats}", file=sys.stderr)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, required=True)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--fresh", action="store_true", help="drop the dataset and load again")
    parser.add_argument("--via", choices=["api", "cli", "bulk"], default="api")
    parser.add_argument("--label", help="database name instead of the size")
    parser.add_argument("--drop", action="store_true", help="drop the dataset and stop")
    args = parser.parse_args()
    if args.drop:
        drop(args.backend, args.label or args.size)
        return
    info = ensure(args.backend, args.size, fresh=args.fresh, via=args.via, label=args.label)
    print(json.dumps({k: v for k, v in info.items() if k != "token"}, indent=2))


if __name__ == "__main__":
    main()
