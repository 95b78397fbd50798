"""The engine, made once per process, and the transactions that writers use."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from db.sqlite_driver import begin_deferred

T = TypeVar("T")
WRITE_ATTEMPTS = 5
# PostgreSQL: deadlock, serialization failure. SQLite: busy past its timeout.
_RETRYABLE_SQLSTATES = {"40P01", "40001"}


def engine_itself(engine: AsyncEngine) -> Engine:
    """The engine itself, not a copy with other execution options (the read engine,
    ``engine.execution_options(...)``): a copy shares the engine's pool and database, and
    only the engine itself hears of its disposal, so what is kept per engine is keyed by
    this (the statement line, known key ids)."""
    sync = engine.sync_engine
    proxied: Engine = getattr(sync, "_proxied", sync)
    return proxied


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and explicit BEGIN handling."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, echo=echo, poolclass=NullPool if ":memory:" in url else None
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False
    )


# SQLite copies the write-ahead log back into the database file (a checkpoint, with an
# fsync) inside the commit that takes the log past this many pages. At SQLite's default of
# 1,000 pages (4 MB) nearly every ingested batch of live traffic paid for one; the folder
# checkpoints after each fold instead (``db.folding``), off the ingestion path, and this
# larger bound only keeps the log from growing without end when no folder runs (the CLI,
# an idle ``serve``). Measured in bench/PROPOSALS.md, I9.
WAL_AUTOCHECKPOINT_PAGES = 10_000
BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; SQLAlchemy's
    # documented fix is to disable it and emit BEGIN ourselves. Writers ask for
    # BEGIN IMMEDIATE so two writers queue on the lock instead of failing on upgrade.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _enter_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "DEFERRED":
            # A read's snapshot: on the driver in one thread crossing instead of the three
            # of SQLAlchemy's execution (bench/PROPOSALS.md, R40). A deferred BEGIN takes no
            # lock, so it cannot meet another writer; a driver error is still SQLAlchemy's.
            begin_deferred(conn.connection.driver_connection)
        else:
            conn.exec_driver_sql(f"BEGIN {mode}")


def _enter_wal(cursor: Any) -> None:
    """Put the file in WAL mode (a no-op once it is: the mode is stored in the file).

    Switching a fresh file takes an exclusive lock, and SQLite answers "database is locked"
    at once, without its busy handler, to a connection that meets another one switching:
    a server starting on a new file opens several together (the folder, the webhook
    dispatcher, the first request), and one of them failed now and then (a /readyz 503).
    So wait here as the busy timeout would. This runs on the driver's own thread.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _retryable(error: DBAPIError) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    return isinstance(error, OperationalError) and "locked" in str(error.orig)


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a write transaction (BEGIN IMMEDIATE on SQLite)."""
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
        async with conn.begin():
            yield conn


async def write_with_retry(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """Run ``work`` in a write transaction, again from the start after a deadlock."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            async with writing(engine) as conn:
                return await work(conn)
        except DBAPIError as error:
            if attempt == WRITE_ATTEMPTS or not _retryable(error):
                raise
            await asyncio.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")
