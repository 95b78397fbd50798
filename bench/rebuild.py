"""`rollups rebuild` before and after (issue 15): the same events, both rebuilds, timed.

    .venv/bin/python bench/rebuild.py [--events 1000000] [--databases sqlite,postgres]
        [--before /tmp/cl-before]

A scratch database gets ``--events`` events written straight into ``usage_events`` (4
organizations, 40 keys, 100 users, 10 endpoints, 4 sources, 5 outcomes, over 120 days);
then ``db.rollups.rebuild`` of the tree at ``--before`` (one scan of the events per grain,
dimension and key set) and of this tree run in turn on it, each in its own transaction,
best of ``--repeat``; the two must write identical rollups. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_SQLITE_EVENTS = """
INSERT INTO usage_events (organization_id, event_id, api_key_id, user_id, source, endpoint,
                          status, outcome, credits, occurred_at)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {count})
SELECT 1 + i % 4, 'e' || i, CASE WHEN i % 11 = 0 THEN NULL ELSE 1 + (i * 7) % 40 END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE 1 + (i * 13) % 100 END,
       'source-' || (i % 4), '/v2/endpoint-' || ((i * 3) % 10), 200, 1 + (i * 17) % 5,
       i % 6, strftime('%Y-%m-%d %H:%M:%f000', '2026-01-01', '+' || ((i * 7919) % 10368000)
                        || ' seconds')
FROM n
"""
_POSTGRES_EVENTS = """
INSERT INTO usage_events (organization_id, event_id, api_key_id, user_id, source, endpoint,
                          status, outcome, credits, occurred_at)
SELECT 1 + i % 4, 'e' || i, CASE WHEN i % 11 = 0 THEN NULL ELSE 1 + (i * 7) % 40 END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE 1 + (i * 13) % 100 END,
       'source-' || (i % 4), '/v2/endpoint-' || ((i * 3) % 10), 200, 1 + (i * 17) % 5,
       i % 6, timestamptz '2026-01-01 00:00:00+00' + ((i::bigint * 7919) % 10368000)
                                                     * interval '1 second'
FROM generate_series(0, {count} - 1) AS i
"""


def _before_rebuild(tree: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("before_rollups", tree / "db" / "rollups.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.rebuild


async def _run(kind: str, count: int, postgres: str, before: Path, repeat: int) -> list[str]:
    from sqlalchemy import text

    from db import migrate
    from db.engine import create_engine, writing
    from db.rollups import rebuild

    name = f"creditlens_rebuild_{uuid.uuid4().hex[:8]}"
    tmp = tempfile.TemporaryDirectory(prefix="creditlens-rebuild-")
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp.name}/rebuild.db"
    else:
        from sqlalchemy.engine import make_url

        server = create_engine(postgres)
        async with server.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await server.dispose()
        url = make_url(postgres).set(database=name).render_as_string(False)
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    rows = []
    try:
        statement = _POSTGRES_EVENTS if kind == "postgres" else _SQLITE_EVENTS
        async with writing(engine) as conn:
            await conn.execute(text(statement.format(count=count)))
        if kind == "postgres":
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE usage_events"))
        results: dict[str, list[tuple[object, ...]]] = {}
        for label, function in (("before", _before_rebuild(before)), ("after", rebuild)):
            best = float("inf")
            for _ in range(repeat):
                load = os.getloadavg()[0]
                started = time.perf_counter()
                async with writing(engine) as conn:
                    written = await function(conn)
                best = min(best, time.perf_counter() - started)
            async with engine.connect() as conn:
                results[label] = [
                    tuple(row)
                    for row in await conn.execute(
                        text(
                            "SELECT * FROM usage_rollups ORDER BY organization_id, dimension, "
                            "grain, api_key_id, bucket, value, outcome"
                        )
                    )
                ]
            rows.append(
                f"| {kind} | {count:,} | {label} | {written:,} | {best:.1f} s | {load:.1f} |"
            )
            print(rows[-1], file=sys.stderr)
        assert results["before"] == results["after"], "the rebuilds disagree"
    finally:
        await engine.dispose()
        if kind == "postgres":
            server = create_engine(postgres)
            async with server.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await server.dispose()
        tmp.cleanup()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--before", default="/tmp/cl-before", help="a tree with the old rebuild")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for kind in args.databases.split(","):
        rows += asyncio.run(_run(kind, args.events, args.postgres, Path(args.before), args.repeat))
    print("\n| database | events | rebuild | rollup rows | seconds (best) | load avg |")
    print("|---|---:|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
