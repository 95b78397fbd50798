"""Read statements built once and run where running them is cheapest.

A statement built per request (its ``where`` clauses, its cache key) and executed by
SQLAlchemy (events, bind and result processing, a greenlet hop) can cost more than the
database's work on it: the key lookup of a report for one key, and a page of keys, did
(bench/PROPOSALS.md, R39). A :class:`Prebuilt` is built once with named parameters; on
PostgreSQL it runs on the driver's connection, compiled once (as the rollups do, R28), and
its instants get the processing their ``UTCDateTime`` columns give them (its other columns
are integers and text, which need none); elsewhere SQLAlchemy runs the same statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.session import DriverConnection, DriverStatement
from db.types import instant_columns, with_utc_instants


class Prebuilt:
    """A select built once: SQLAlchemy's statement, and PostgreSQL's driver form of it."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self.driver = DriverStatement.of(statement)
        self.instants = instant_columns(statement)

    async def rows(
        self, conn: AsyncConnection, parameters: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The rows, as dicts of column name to value (the same values either way)."""
        if conn.dialect.name != "postgresql":
            result = await conn.execute(self.statement, parameters)
            return [dict(row._mapping) for row in result]
        driver = DriverConnection(await conn.get_raw_connection())
        records = await driver.fetch(self.driver.sql, *self.driver.values(parameters))
        return [with_utc_instants(record, self.instants) for record in records]
