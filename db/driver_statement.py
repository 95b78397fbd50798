"""A statement compiled once as a driver takes it: positional SQL, and where each
positional parameter takes its value from.

Both drivers' direct paths use it: asyncpg's (``db.session.DriverConnection``: a list is
bound as one array, so a statement has one form) and aiosqlite's (``db.sqlite_driver``: a
list parameter is expanded into one ``?`` per item, so a statement has a form per count
of each list). One rule for every slot: a value bound by name per call, one item of a
list bound by name, or the constant the statement holds (a literal such as ``''``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Dialect
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
