"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that knows ``ON CONFLICT`` on both databases."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# The whole UTC epoch second of ``occurred_at``, rounded down. SQLite's date functions keep
# instants in milliseconds and round the fraction to them: ``strftime('%s', '...
# 21:59:59.999999')`` is 22:00:00, which put an event half a millisecond before a quarter
# hour into the next one. The stored text (``YYYY-MM-DD HH:MM:SS.ffffff``) is cut to whole
# seconds first.
SQLITE_EPOCH_SECOND = "CAST(strftime('%s', substr(occurred_at, 1, 19)) AS INTEGER)"
POSTGRESQL_EPOCH_SECOND = "CAST(floor(extract(epoch FROM occurred_at)) AS BIGINT)"


def epoch_second(conn: AsyncConnection) -> str:
    """SQL for the whole UTC epoch second of ``occurred_at`` on this database."""
    if conn.dialect.name == "postgresql":
        return POSTGRESQL_EPOCH_SECOND
    return SQLITE_EPOCH_SECOND
