"""Column types shared by the tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An instant, always UTC-aware in Python.

    SQLite has no time zone type: values are stored as naive UTC text, which sorts and
    compares correctly only if every value is UTC. PostgreSQL stores ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return utc_instant(value)


def utc_instant(value: object) -> datetime | None:
    """What a UTC column's stored value is in Python: SQLite's naive UTC text or a driver's
    datetime (naive: UTC), as an aware UTC datetime; None stays None."""
    if value is None:
        return None
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(instant, datetime):
        raise TypeError(f"a UTC column returned {type(instant).__name__}")
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def instant_columns(statement: Select[Any]) -> tuple[str, ...]:
    """The names of ``statement``'s ``UTCDateTime`` columns: the only ones whose values a
    driver hands over unprocessed that need processing (integers and text need none)."""
    return tuple(
        column.name for column in statement.selected_columns if isinstance(column.type, UTCDateTime)
    )


def with_utc_instants(
    record: Mapping[str, Any] | Iterable[tuple[str, Any]], instants: tuple[str, ...]
) -> dict[str, Any]:
    """A driver's row (a record by column name, or its (name, value) pairs) as SQLAlchemy's
    execution gives it: ``instants`` made aware UTC."""
    row = dict(record)
    for name in instants:
        row[name] = utc_instant(row[name])
    return row
