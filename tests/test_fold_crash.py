"""A real server killed (SIGKILL) while its folder adds the rollup tail to the rollups
loses nothing and counts nothing twice: every event is in the rollups or still pending,
exactly once, and folding the rest makes the rollups equal the raw events."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from db.engine import create_engine
from db.ingestion.writer import ingest
from db.rollup_keys import ALL_KEYS, ALL_OUTCOMES
from db.tables import usage_events, usage_pending, usage_rollups
from domain.dimensions import Dimension
from tests.factories import event, make_tenant
from tests.stored_totals import totals
from tests.test_ingest_crash import _postgres_writer_active, _sqlite_writer_active, server

EVENTS = 40_000


async def _counts(engine) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """(events, pending rows, calls in the per-key quarter-hour TOTAL rollups)."""
    r = usage_rollups.c
    async with engine.connect() as conn:
        events = (await conn.execute(select(func.count()).select_from(usage_events))).scalar()
        pending = (await conn.execute(select(func.count()).select_from(usage_pending))).scalar()
        folded = (
            await conn.execute(
                select(func.coalesce(func.sum(r.calls), 0)).where(
                    r.grain == 900,
                    r.dimension == int(Dimension.TOTAL),
                    r.api_key_id != ALL_KEYS,
                    r.outcome == ALL_OUTCOMES,
                )
            )
        ).scalar()
    return int(events or 0), int(pending or 0), int(folded or 0)


async def _folding(database_url: str) -> bool:
    if database_url.startswith("postgresql"):
        return await _postgres_writer_active(database_url)
    return _sqlite_writer_active(database_url)


@pytest.mark.slow
async def test_killed_folder_loses_and_doubles_nothing(clean_database):
    database_url = clean_database
    # An engine of the test's own, without the app: nothing folds until the server starts.
    engine = create_engine(database_url)
    try:
        now = datetime.now(UTC)
        tenant = await make_tenant(engine, now=now)
        start = now - timedelta(days=40)
        batch = [
            event(
                tenant.slug,
                start + timedelta(seconds=(i * 7919) % (40 * 86400)),
                api_key=f"key-{i % 7}",
                user=f"user-{i % 13}",
                endpoint=f"/v2/endpoint-{i % 11}",
                credits=i % 4,
            )
            for i in range(EVENTS)
        ]
        for offset in range(0, EVENTS, 5000):
            await ingest(engine, batch[offset : offset + 5000], now=now)
        assert await _counts(engine) == (EVENTS, EVENTS, 0)

        with server(database_url) as (process, _):
            deadline = time.monotonic() + 60
            while not await _folding(database_url):
                assert time.monotonic() < deadline, "the folder never started"
                await asyncio.sleep(0.001)
            os.kill(process.pid, signal.SIGKILL)
            assert process.wait(timeout=10) == -signal.SIGKILL

        events, pending, folded = await _counts(engine)
        assert events == EVENTS
        assert folded + pending == EVENTS  # each event in exactly one of the two
        assert pending > 0  # the kill came before the folder was through

        stored = await totals(engine)  # folds the rest
        assert stored.events == EVENTS
        assert stored.credits == sum(item["credits"] for item in batch)
        assert stored.rollups_match_events()
        assert (await _counts(engine))[1] == 0
    finally:
        await engine.dispose()
