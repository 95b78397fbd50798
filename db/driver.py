"""The driver's own path: statements that skip SQLAlchemy's execution layer.

Nearly every request runs the same few statements (the token's, the key's, the report's
rollup statement), and SQLAlchemy's execution of each (its cache key, bind and result
processing, events, greenlet hops) cost as much again as the driver's own work
(bench/PROPOSALS.md R26, R28, R39, R40). Those statements are compiled once as the driver
takes them (``DriverStatement``) and run on the driver's connection inside the pooled one:
asyncpg's (``DriverConnection``, ``driver_call``; the statement line, db.statement_line)
or aiosqlite's (db.sqlite_driver).

``DriverStatement``: positional SQL and where each positional parameter takes its value
from. asyncpg binds a list as one array, so a statement has one form; aiosqlite expands a
list into one ``?`` per item, so a statement has a form per count of each list. One rule for
every slot: a value bound by name per call, one item of a list bound by name, or the
constant the statement holds (a literal such as ``''``).

``pooled_connection``: ``AsyncConnection.get_raw_connection`` reaches the pooled connection
through a ``greenlet_spawn`` (a new greenlet, whose frame stack CPython 3.11 maps and
unmaps) because reading ``Connection.connection`` may reconnect an invalidated
connection; a connection that is neither closed nor invalidated holds its pooled
connection, and reading it does no I/O (R41).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import ExpandedState, SQLCompiler

_POSTGRES = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
# A slot's index when its value is the whole bound value, not one item of a list.
WHOLE = -1


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """The SQL, and per positional parameter (name, index, constant): the value bound as
    ``name`` (its item ``index`` for an expanded list), or ``constant`` when name is None."""

    sql: str
    slots: tuple[tuple[str | None, int, Any], ...]

    @classmethod
    def of(cls, statement: Select[Any], dialect: Dialect | None = None) -> DriverStatement:
        """``statement`` compiled for ``dialect``'s driver (None: PostgreSQL's asyncpg),
        without list expansion."""
        compiled = statement.compile(dialect=_POSTGRES if dialect is None else dialect)
        assert isinstance(compiled, SQLCompiler)  # a select's compiler
        return cls.expanded(compiled)

    @classmethod
    def expanded(cls, compiled: SQLCompiler, state: ExpandedState | None = None) -> DriverStatement:
        """``compiled`` as it runs: ``state`` (``construct_expanded_state``) says how many
        ``?`` each list became; None, the statement has no expanded list."""
        items = {
            name: (list_name, index)
            for list_name, names in ((state and state.parameter_expansion) or {}).items()
            for index, name in enumerate(names)
        }
        binds = compiled.binds
        slots: list[tuple[str | None, int, Any]] = []
        positions = state.positiontup if state is not None else compiled.positiontup
        for name in positions or ():
            if name in items:
                slots.append((items[name][0], items[name][1], None))
            elif binds[name].required:
                slots.append((name, WHOLE, None))
            else:
                slots.append((None, WHOLE, binds[name].value))
        sql = str(compiled) if state is None else state.statement
        return cls(sql, tuple(slots))

    @property
    def names(self) -> tuple[str | None, ...]:
        """The name each slot is bound by (None: a constant)."""
        return tuple(name for name, _, _ in self.slots)

    def values(self, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
        """The positional values of one call."""
        return tuple(
            constant if name is None else parameters[name] if index < 0 else parameters[name][index]
            for name, index, constant in self.slots
        )


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


async def driver_call(
    driver: Any,
    method: str,
    query: str,
    args: tuple[object, ...],
    forget: Callable[[Exception], object],
) -> Any:
    """``driver.<method>(query, *args)`` on asyncpg's connection; when the connection is
    lost, ``forget`` it (the pool invalidates it, the line drops it) and raise a
    ``DisconnectionError`` (503 with Retry-After, app.availability). Other errors pass as
    they are. One rule for every statement that skips SQLAlchemy's execution layer."""
    try:
        return await getattr(driver, method)(query, *args)
    except Exception as error:
        if not driver.is_closed():
            raise
        forget(error)
        raise DisconnectionError(f"the database connection was lost: {error}") from error


class DriverConnection:
    """PostgreSQL's driver connection (asyncpg's) behind a pooled one, for the statements
    that skip SQLAlchemy's execution layer (bench/PROPOSALS.md R26, R28).

    A lost connection is handled as SQLAlchemy's execution handles it: the pooled
    connection is invalidated, so the pool opens a new one instead of handing the dead one
    to every later request, and the error is raised as a ``DisconnectionError``, which the
    routes answer with 503 and Retry-After (app.availability). Other errors pass as they are.
    """

    def __init__(self, pooled: PoolProxiedConnection) -> None:
        self._pooled = pooled

    async def fetchrow(self, query: str, *args: object) -> Any:
        return await self._run("fetchrow", query, args)

    async def fetch(self, query: str, *args: object) -> list[Any]:
        rows: list[Any] = await self._run("fetch", query, args)
        return rows

    async def _run(self, method: str, query: str, args: tuple[object, ...]) -> Any:
        driver = driver_connection(self._pooled)
        return await driver_call(driver, method, query, args, self._pooled.invalidate)
