"""The statements a block of code sends to the database, whichever way it sends them.

SQLAlchemy's ``before_cursor_execute`` sees what goes through SQLAlchemy; a report's rollup
statement goes to the driver's connection instead (``db.queries.usage``; PostgreSQL
bench/PROPOSALS.md R28, SQLite R40), so it is recorded where it is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import grains
from db.queries import usage


@contextmanager
def recorded(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL of every statement sent on ``engine`` while the block runs, in order."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])  # (conn, cursor, statement, parameters, context, many)

    sent = usage._rollup_rows

    async def rollup_rows(conn: AsyncConnection, query: Any, pieces: list[grains.Piece]) -> Any:
        # Both run on the driver's connection, past SQLAlchemy's events.
        if conn.dialect.name == "postgresql":
            shape, _ = usage._rollup_call(query, pieces, arrays=True)
            statements.append(usage._driver_sql(shape).sql)
        else:
            shape, parameters = usage._rollup_call(query, pieces)
            statements.append(usage._sqlite_statement(shape).form(parameters).sql)
        return await sent(conn, query, pieces)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    usage._rollup_rows = rollup_rows  # type: ignore[assignment]
    try:
        yield statements
    finally:
        usage._rollup_rows = sent  # type: ignore[assignment]
        event.remove(engine.sync_engine, "before_cursor_execute", record)
