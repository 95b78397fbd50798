"""Read statements built once and run where running them is cheapest.

A statement built per request (its ``where`` clauses, its cache key) and executed by
SQLAlchemy (events, bind and result processing, a greenlet hop) can cost more than the
database's work on it: the key lookup of a report for one key, and a page of keys, did
(bench/PROPOSALS.md, R39). A :class:`Prebuilt` is built once with named parameters and
runs on the driver's connection, compiled once: PostgreSQL's (as the rollups do, R28), or
SQLite's in one thread crossing (``db.sqlite_driver``, R40). Its instants get the
processing their ``UTCDateTime`` columns give them (its other columns are integers and
text, which need none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.driver import DriverConnection, DriverStatement, pooled_connection
from db.sqlite_driver import SQLiteStatement
from db.types import instant_columns, with_utc_instants


class Prebuilt:
    """A select built once: SQLAlchemy's statement, and each driver's form of it."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self.driver = DriverStatement.of(statement)
        self.instants = instant_columns(statement)
        self.sqlite = SQLiteStatement(statement, self.instants)

    async def rows(
        self, conn: AsyncConnection, parameters: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The rows, as dicts of column name to value (the same values either way)."""
        if conn.dialect.name != "postgresql":
            columns = self.sqlite.columns
            return [
                with_utc_instants(zip(columns, row, strict=True), self.instants)
                for row in await self.sqlite.rows(conn, parameters)
            ]
        driver = DriverConnection(await pooled_connection(conn))
        records = await driver.fetch(self.driver.sql, *self.driver.values(parameters))
        return [with_utc_instants(record, self.instants) for record in records]
