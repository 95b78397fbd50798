"""The rollup folder: runs in every ``serve`` worker for the life of the app.

It folds the rollup tail (``usage_pending``) into ``usage_rollups`` (db/folding.py) when
``fold_due`` says so (on SQLite: a long enough tail, or an old enough one), as long as there
is a full chunk to fold, then polls. Workers take turns through the
database's lock (one fold at a time per database), so several workers and hosts are safe.
It has an engine of its own: its statements never queue behind, or show up among, those
of requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from sqlalchemy.exc import SQLAlchemyError

from app.metrics import Metrics
from db.engine import create_engine
from db.folding import fold, fold_due, fold_rows, tail

log = logging.getLogger("creditlens.folding")

# How often an idle folder looks for pending rows: the rollup lag when ingestion is light
# (reads include the tail meanwhile, so this is a cost, never staleness).
POLL_SECONDS = 0.1
# After a database error (e.g. SQLite busy past its timeout), before trying again.
RETRY_SECONDS = 1.0


async def run_folder(url: str, metrics: Metrics, stop: asyncio.Event) -> None:
    """Fold until ``stop`` is set."""
    engine = create_engine(url, pool_size=1)
    limit = fold_rows(engine)
    failing: str | None = None
    try:
        while not stop.is_set():
            try:
                async with engine.connect() as conn:
                    pending = await tail(conn)
                if not fold_due(engine, pending, time.time_ns() // 1_000_000):
                    await _pause(stop, POLL_SECONDS)
                    continue
                done = await fold(engine, limit)
            except (SQLAlchemyError, OSError) as error:
                # Logged when a failure starts or changes, not at every retry of an outage;
                # the tail waits (reads include it), nothing is lost.
                if type(error).__name__ != failing:
                    failing = type(error).__name__
                    log.error("rollup folder: the database failed (%s); retrying", failing)
                await _pause(stop, RETRY_SECONDS)
                continue
            if failing:
                log.warning("rollup folder: the database answers again")
                failing = None
            if done.events and done.oldest_received_ms is not None:
                lag = max(0.0, time.time() - done.oldest_received_ms / 1000)
                metrics.folded(done.events, lag)
            if done.events < limit:
                await _pause(stop, POLL_SECONDS)
    finally:
        await engine.dispose()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


@asynccontextmanager
async def folding(url: str, metrics: Metrics) -> AsyncIterator[None]:
    """Run the folder in the background for the life of the block (the app lifespan); on
    exit, let the fold in flight finish (a cancelled one would roll back, also safe)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_folder(url, metrics, stop))
    try:
        yield
    finally:
        stop.set()
        await task
