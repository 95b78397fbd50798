"""SQLite: a request's read on its connection's driver (aiosqlite's), one thread crossing.

SQLAlchemy's execution of a statement on aiosqlite crosses to the connection's thread and
back four times (a cursor, the statement, its rows, closing the cursor), each crossing a
wake-up of that thread and of the loop, and under load a wait for the GIL behind the
loop's own work; around the crossings it builds the statement's cache key, processes binds
and rows. A report for one key made two such reads, plus the read transaction's BEGIN and
ROLLBACK: twelve crossings (bench/PROPOSALS.md, R40). ``SQLiteStatement.rows`` runs a
statement built once (its SQL compiled once per count of each list parameter) with
aiosqlite's ``execute_fetchall``: one crossing, on the same connection, inside the same
read transaction, so every statement of a request still reads one snapshot.

Only for statements whose binds and columns need no processing (integers and text; an
instant column is made aware UTC by the caller): checked when the statement is built.
A driver error is raised as SQLAlchemy's execution would raise it (``OperationalError``
for a locked or interrupted database), so outages are answered 503 as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util import await_

from db.driver import DriverStatement, driver_connection, pooled_connection

_SQLITE = SQLiteDialect_aiosqlite()
# Forms kept per statement (one per count of each list parameter: a page's keys, say).
MAX_FORMS = 64


class SQLiteStatement:
    """A select as aiosqlite takes it: positional SQL per count of each list parameter."""

    def __init__(self, statement: Select[Any], instants: tuple[str, ...] = ()) -> None:
        """``instants``: the ``UTCDateTime`` columns, which the caller processes."""
        self._compiled = statement.compile(dialect=_SQLITE)
        processed = [
            column.name
            for column in statement.selected_columns
            if column.name not in instants
            and column.type._cached_result_processor(_SQLITE, None) is not None
        ]
        if self._compiled._bind_processors or processed:
            raise TypeError(f"values SQLite would process: {processed or 'binds'}")
        binds = self._compiled.binds
        self._lists = tuple(name for name, bind in binds.items() if bind.expanding)
        self.columns = tuple(column.name for column in statement.selected_columns)
        self._forms: dict[tuple[int, ...], DriverStatement] = {}

    def form(self, parameters: Mapping[str, Any]) -> DriverStatement:
        counts = tuple(len(parameters[name]) for name in self._lists)
        form = self._forms.get(counts)
        if form is None:
            form = self._build(parameters)
            if len(self._forms) >= MAX_FORMS:
                self._forms.clear()
            self._forms[counts] = form
        return form

    def _build(self, parameters: Mapping[str, Any]) -> DriverStatement:
        state = self._compiled.construct_expanded_state(dict(parameters))
        return DriverStatement.expanded(self._compiled, state)

    async def rows(
        self, conn: AsyncConnection, parameters: Mapping[str, Any]
    ) -> Sequence[tuple[Any, ...]]:
        """The rows (tuples in ``columns`` order) on ``conn``'s driver, inside the read
        transaction SQLAlchemy opens on it (begun here when no statement has yet)."""
        form = self.form(parameters)
        values = form.values(parameters)
        if not conn.in_transaction():
            _ = await conn.begin()  # rolled back when the request's connection closes
        driver = driver_connection(await pooled_connection(conn))
        try:
            rows = await driver.execute_fetchall(form.sql, values)
        except sqlite3.Error as error:
            raise DBAPIError.instance(form.sql, values, error, sqlite3.Error) from error
        return rows  # type: ignore[no-any-return]


_BEGIN_DEFERRED = "BEGIN DEFERRED"


def begin_deferred(driver: Any) -> None:
    """BEGIN DEFERRED on aiosqlite's connection, from SQLAlchemy's sync side (an event of
    the engine, run in its greenlet): one thread crossing."""
    try:
        await_(driver.execute(_BEGIN_DEFERRED))
    except sqlite3.Error as error:
        raise DBAPIError.instance(_BEGIN_DEFERRED, (), error, sqlite3.Error) from error
