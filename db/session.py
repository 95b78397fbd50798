"""The database connection of one request, shared safely by the fields it resolves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from db.driver import DriverConnection
from db.loop_reads import LoopConnection, loop_reader
from db.statement_line import LineConnection, checkout, statement_line

# A connection to run one statement on: the driver's own (PostgreSQL), the loop's reader
# (SQLite on a file), else SQLAlchemy's.
StatementConnection = AsyncConnection | DriverConnection | LoopConnection | LineConnection


class RequestDatabase:
    """One connection per request, opened on first use and closed at the end.

    strawberry resolves sibling fields concurrently, and one connection must never be used
    by two tasks at once, so every use holds a lock. Measured: a request's queries are short
    index reads, so serialising them costs less than opening a connection per field.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._lock = asyncio.Lock()
        self._pooled: PoolProxiedConnection | None = None
        self._connection: AsyncConnection | None = None
        self._closed = False

    @property
    def engine(self) -> AsyncEngine:
        """The engine the request reads with."""
        return self._engine

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock:
            if self._connection is None:
                self._refuse_if_closed()
                engine = self._engine.sync_engine
                if self._pooled is None:
                    # Checked out and wrapped in one greenlet hop, as ``AsyncEngine.connect``
                    # does (a failure to connect raised as it raises it), not two (R41).
                    sync = await greenlet_spawn(Connection, engine)
                    self._pooled = sync.connection
                else:
                    # Around the connection ``statement_connection`` checked out.
                    sync = await greenlet_spawn(Connection, engine, self._pooled)
                # Either way the engine's ``engine_connect`` events run as in
                # ``AsyncEngine.connect`` (the read engine's isolation level among them).
                self._connection = AsyncConnection(self._engine, sync)
            yield self._connection

    @asynccontextmanager
    async def statement_connection(self) -> AsyncIterator[StatementConnection]:
        """The cheapest thing one prepared statement (the token's) runs on: on PostgreSQL
        the worker's statement line when it is free (``db.statement_line``: no pooled
        connection at all, R37), else the request's pooled connection's driver, without
        building SQLAlchemy's ``Connection`` and setting its isolation level
        (bench/PROPOSALS.md, R27); on SQLite the loop's own reader
        (``db.loop_reads``: no pooled connection at all unless it cannot answer);
        elsewhere ``connection()``."""
        if self._engine.dialect.name != "postgresql":
            reader = loop_reader(self._engine)
            if reader is None:
                async with self.connection() as conn:
                    yield conn
            else:
                self._refuse_if_closed()
                yield LoopConnection(reader, self.connection)
            return
        async with self._lock:
            line = statement_line(self._engine)
            if self._pooled is None and line is not None:
                self._refuse_if_closed()
                yield LineConnection(line, self._pooled_driver)
            else:
                yield await self._pooled_driver()

    async def _pooled_driver(self) -> DriverConnection:
        """The request's pooled connection's driver (holding the lock)."""
        return DriverConnection(await self._checkout())

    async def _checkout(self) -> PoolProxiedConnection:
        """The request's pooled connection, checked out on first use (holding the lock)."""
        self._refuse_if_closed()
        if self._pooled is None:
            self._pooled = await checkout(self._engine.sync_engine)
        return self._pooled

    def _refuse_if_closed(self) -> None:
        if self._closed:
            # graphql-core may still run sibling fields of a failed non-null field after
            # the response is made; they must not reopen a connection.
            raise RequestFinished("the request has already been answered")

    async def interrupt(self) -> None:
        """Make the statement running on this request's connection fail now (any task).

        For a request stopped by its time limit. Cancelling the task is enough on
        PostgreSQL (asyncpg cancels the query on the server), not on SQLite: aiosqlite runs
        the statement in its thread, and closing the cancelled connection waits for it to
        finish. sqlite3's interrupt is thread-safe and ends it at its next step.
        """
        pooled = self._pooled  # no lock: the running field holds it
        if pooled is None or self._engine.dialect.name != "sqlite":
            return
        driver = pooled.driver_connection
        if driver is not None:
            await driver.interrupt()

    async def close(self) -> None:
        """Close the connection once no field is using it; later uses are refused."""
        async with self._lock:
            self._closed = True
            connection, pooled = self._connection, self._pooled
            self._connection = self._pooled = None
            if connection is not None:
                await connection.close()  # returns ``pooled`` to the pool
            elif pooled is not None:
                await greenlet_spawn(pooled.close)


class RequestFinished(RuntimeError):
    """A field tried to read after its request was answered."""
