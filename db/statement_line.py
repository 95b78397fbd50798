"""PostgreSQL: one connection per worker kept for the token statement, outside the pool.

Every request runs the token statement first (``db.queries.tokens``), and a request whose
answer is reused (app.answer_cache) runs nothing else. Checking a connection out of
SQLAlchemy's pool and back in for that one statement cost more than the statement's own
client side: two ``greenlet_spawn`` hops (each a new greenlet, whose frame stack CPython
3.11 maps and unmaps), the pool's events and bookkeeping (bench/PROPOSALS.md R37).
``StatementLine`` keeps one connection of the engine's own making (the same connect
arguments and events, then detached from the pool, so ``pool_size`` still bounds the
requests' connections) and runs the statement on it, one at a time. A request never waits
for it (``LineConnection``): while another request's statement is on the line, it takes
its pooled connection as before, so concurrent requests are never queued behind one round
trip each (their throughput would then be bounded by the round trip, not by the CPU).

What the statement sees does not change: no transaction is ever opened on the connection
(asyncpg's own autocommit), so each statement reads the latest commit, as on the pooled
connection in autocommit before; a token revoked by any worker or host is refused by the
next request on every worker. A lost connection is dropped and the statement fails as on
a pooled one (``DisconnectionError``: 503 with Retry-After); the next request opens a new
one. The connection belongs to the event loop that opened it: a request on another loop
uses the pool as before (``serves``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from db.driver import driver_call
from db.engine import engine_itself


async def checkout(sync: Engine) -> PoolProxiedConnection:
    """A connection from the pool of ``sync`` (an async engine's ``sync_engine``), as
    ``AsyncEngine.raw_connection`` takes it; a failure to connect is raised as
    ``AsyncEngine.connect`` raises it (an outage is an ``OperationalError``,
    app.availability): what ``Connection`` does."""
    try:
        return await greenlet_spawn(sync.raw_connection)
    except sync.dialect.loaded_dbapi.Error as error:
        Connection._handle_dbapi_exception_noconnection(error, sync.dialect, sync)
        raise


class StatementLine:
    """One detached connection of an engine (``sync``, held weakly: the line is kept per
    engine and must not keep it alive), one statement at a time."""

    def __init__(self, sync: Engine) -> None:
        self._engine = weakref.ref(sync)
        self._driver: Any = None  # asyncpg's Connection, once opened
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def serves(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether a statement on ``loop`` may run here: the loop the line's connection
        belongs to; while it has none and nobody waits, any loop (it becomes the line's)."""
        if self._loop is not loop and self._driver is None and not self._lock.locked():
            # An asyncio.Lock belongs to the loop that first waits on it: a new one.
            self._loop, self._lock = loop, asyncio.Lock()
        return self._loop is loop

    def free(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether a statement on ``loop`` would run here at once (nobody on the line)."""
        return self.serves(loop) and not self._lock.locked()

    async def fetchrow(self, query: str, *args: object) -> Any:
        async with self._lock:
            driver = await self._open()
            return await driver_call(driver, "fetchrow", query, args, lambda _: self._drop())

    async def _open(self) -> Any:
        if self._driver is None:
            sync = self._engine()
            if sync is None:
                raise DisconnectionError("the engine is gone")
            pooled = await checkout(sync)
            driver = pooled.driver_connection
            # Ours from now on: the pool forgets it, and closes it at no checkin.
            pooled.detach()
            if driver is None:
                raise DisconnectionError("the pool gave no driver connection")
            self._driver, self._loop = driver, asyncio.get_running_loop()
        return self._driver

    def _drop(self) -> None:
        """Forget the connection (closed now if it is still open); the next statement opens
        a new one."""
        driver, self._driver = self._driver, None
        if driver is not None and not driver.is_closed():
            driver.terminate()

    def close(self) -> None:
        """Close the connection now (the engine is disposed)."""
        self._drop()


class RowSource(Protocol):
    async def fetchrow(self, query: str, *args: object) -> Any: ...


class LineConnection:
    """What a request's token statement runs on (PostgreSQL): the worker's line when it is
    free, else the request's pooled connection (``pooled``), exactly as before the line."""

    def __init__(self, line: StatementLine, pooled: Callable[[], Awaitable[RowSource]]) -> None:
        self._line = line
        self._pooled = pooled

    async def fetchrow(self, query: str, *args: object) -> Any:
        # No await between the check and the line's lock: the lock is taken at once.
        if self._line.free(asyncio.get_running_loop()):
            return await self._line.fetchrow(query, *args)
        return await (await self._pooled()).fetchrow(query, *args)


_LINES: weakref.WeakKeyDictionary[Any, StatementLine | None] = weakref.WeakKeyDictionary()


def statement_line(engine: AsyncEngine) -> StatementLine | None:
    """The engine's line: one per engine (so per worker), closed with it; None unless the
    engine is PostgreSQL's."""
    sync = engine_itself(engine)
    if sync in _LINES:
        return _LINES[sync]
    line = None
    if engine.dialect.name == "postgresql":
        line = StatementLine(sync)
        event.listen(sync, "engine_disposed", lambda _engine: line.close())
    _LINES[sync] = line
    return line
