"""The database connection of one request, shared safely by the fields it resolves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class RequestDatabase:
    """One connection per request, opened on first use and closed at the end.

    strawberry resolves sibling fields concurrently, and one connection must never be used
    by two tasks at once, so every use holds a lock. Measured: a request's queries are short
    index reads, so serialising them costs less than opening a connection per field.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._lock = asyncio.Lock()
        self._connection: AsyncConnection | None = None
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock:
            if self._closed:
                # graphql-core may still run sibling fields of a failed non-null field
                # after the response is made; they must not reopen a connection.
                raise RequestFinished("the request has already been answered")
            if self._connection is None:
                self._connection = await self._engine.connect()
            yield self._connection

    async def interrupt(self) -> None:
        """Make the statement running on this request's connection fail now (any task).

        For a request stopped by its time limit. Cancelling the task is enough on
        PostgreSQL (asyncpg cancels the query on the server), not on SQLite: aiosqlite runs
        the statement in its thread, and closing the cancelled connection waits for it to
        finish. sqlite3's interrupt is thread-safe and ends it at its next step.
        """
        connection = self._connection  # no lock: the running field holds it
        if connection is None or connection.dialect.name != "sqlite":
            return
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        if driver is not None:
            await driver.interrupt()

    async def close(self) -> None:
        """Close the connection once no field is using it; later uses are refused."""
        async with self._lock:
            self._closed = True
            if self._connection is not None:
                await self._connection.close()
                self._connection = None


class RequestFinished(RuntimeError):
    """A field tried to read after its request was answered."""
