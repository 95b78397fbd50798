"""The pooled connection under a request's SQLAlchemy connection, and the driver's own.

The statements that skip SQLAlchemy's execution layer (``db.session.DriverConnection`` on
PostgreSQL, ``db.sqlite_driver`` on SQLite) run on the driver's connection inside the
pooled one. ``AsyncConnection.get_raw_connection`` reaches it through a ``greenlet_spawn``
(a new greenlet, whose frame stack CPython 3.11 maps and unmaps) because reading
``Connection.connection`` may reconnect an invalidated connection; a connection that is
neither closed nor invalidated holds its pooled connection, and reading it does no I/O
(bench/PROPOSALS.md R41).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import PoolProxiedConnection


async def pooled_connection(conn: AsyncConnection) -> PoolProxiedConnection:
    """The pooled connection ``conn`` runs on: read at once when it holds one, else
    revalidated as SQLAlchemy does (``get_raw_connection``)."""
    sync = conn.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        # Neither closed nor invalidated: ``Connection`` holds its pooled connection
        # (both properties are "it holds none", told apart by whether it may reconnect).
        return sync.connection
    return await conn.get_raw_connection()


def driver_connection(pooled: PoolProxiedConnection) -> Any:
    """The driver's connection inside ``pooled`` (asyncpg's, aiosqlite's); a pooled
    connection that lost it is a lost connection (503 with Retry-After,
    app.availability)."""
    driver = pooled.driver_connection
    if driver is None:
        raise DisconnectionError("the pooled connection has no driver connection")
    return driver
