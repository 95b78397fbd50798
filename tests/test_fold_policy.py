"""When the folder folds (db/folding.py ``fold_due``), how it sees the tail, how ingestion
waits for a tail that is too long, and that folders racing on one tail count each event
once (SQLite sums a chunk before it takes the write lock)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest

from db import migrate
from db.engine import create_engine
from db.folding import (
    SQLITE_FOLD_MIN_ROWS,
    SQLITE_FOLD_WAIT_SECONDS,
    Tail,
    fold,
    fold_all,
    fold_due,
    tail,
    wait_for_tail,
)
from db.ingestion.writer import ingest
from tests.factories import event, make_tenant
from tests.stored_totals import totals


@pytest.fixture
async def own_engine(clean_database):
    """An engine of the test's own: no folder of the app's runs beside it."""
    engine = create_engine(clean_database)
    yield engine
    await engine.dispose()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_sqlite_waits_for_a_long_or_old_tail_and_postgresql_does_not(own_engine):
    engine = own_engine
    now = _now_ms()
    young = Tail(10, now)
    due = fold_due(engine, young, now)
    if engine.dialect.name == "postgresql":
        assert due  # folds run beside ingestion there: no reason to wait
    else:
        assert not due
        assert fold_due(engine, Tail(SQLITE_FOLD_MIN_ROWS, now), now)
        old = now - int(SQLITE_FOLD_WAIT_SECONDS * 1000)
        assert fold_due(engine, Tail(10, old), now)
    assert not fold_due(engine, Tail(0, None), now)


async def test_the_tail_is_seen_from_its_ends(own_engine):
    engine = own_engine
    now = datetime.now(UTC)
    tenant = await make_tenant(engine, now=now)
    before = _now_ms()
    batch = [event(tenant.slug, now - timedelta(minutes=i)) for i in range(30)]
    await ingest(engine, batch, now=now)
    async with engine.connect() as conn:
        seen = await tail(conn)
    assert seen.rows == 30
    assert seen.oldest_ms is not None
    assert before <= seen.oldest_ms <= _now_ms()
    await fold_all(engine)
    async with engine.connect() as conn:
        assert await tail(conn) == Tail(0, None)


async def test_ingestion_waits_while_the_tail_is_over_its_bound(own_engine):
    engine = own_engine
    now = datetime.now(UTC)
    tenant = await make_tenant(engine, now=now)
    await ingest(engine, [event(tenant.slug, now) for _ in range(20)], now=now)
    waited = await wait_for_tail(engine, bound=10, poll=0.01, most=0.05)
    assert waited >= 0.05  # over the bound the whole time: waited its most
    assert await wait_for_tail(engine, bound=20, poll=0.01, most=0.05) == 0.0
    assert await wait_for_tail(engine, poll=0.01, most=0.05) == 0.0  # the database's bound


async def test_folders_racing_on_one_tail_count_each_event_once(clean_database):
    # Two engines: two folders as two workers would run them, each with its connection.
    engine = create_engine(clean_database)
    other = create_engine(clean_database)
    try:
        now = datetime.now(UTC)
        tenant = await make_tenant(engine, now=now)
        start = now - timedelta(days=3)
        for round_ in range(6):
            batch = [
                event(
                    tenant.slug,
                    start + timedelta(seconds=(round_ * 7919 + i * 104_729) % (3 * 86400)),
                    api_key=f"key-{i % 5}",
                    user=f"user-{i % 7}",
                    endpoint=f"/v2/endpoint-{i % 9}",
                    credits=i % 4,
                )
                for i in range(400)
            ]
            await ingest(engine, batch, now=now)
            # Chunks that overlap: each folder sums the oldest rows, then one of them loses.
            await asyncio.gather(fold(engine, 300), fold(other, 500), fold(engine, 700))
        stored = await totals(engine)  # folds the rest
        assert stored.events == 2400
        assert stored.rollups_match_events()
    finally:
        await other.dispose()
        await engine.dispose()


async def test_a_sqlite_fold_copies_the_log_into_the_database_file(tmp_path, clock):
    """Checkpoints are the folder's (after each fold), not ingestion's: the database file
    itself, read without its write-ahead log, holds what was folded."""
    path = tmp_path / "checkpointed.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, url)  # it runs its own event loop
    engine = create_engine(url)
    try:
        tenant = await make_tenant(engine, now=clock())
        at = clock() - timedelta(hours=3)
        items = [event(tenant.slug, at + timedelta(minutes=i)) for i in range(300)]
        await ingest(engine, items, now=clock())

        def rollups_in_file() -> int:
            # immutable: the file alone, as if the log were not there.
            with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as file:
                return int(file.execute("SELECT count(*) FROM usage_rollups").fetchone()[0])

        assert rollups_in_file() == 0  # the batch is in the log only: no commit copied it
        assert (await fold(engine)).events == 300
        async with engine.connect() as conn:
            folded = (await conn.exec_driver_sql("SELECT count(*) FROM usage_rollups")).scalar()
        assert folded
        assert rollups_in_file() == folded
    finally:
        await engine.dispose()
