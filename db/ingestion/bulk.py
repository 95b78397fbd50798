"""The three bulk statements of ingestion, written per database for speed.

SQLAlchemy's Core would compile and bind every row through Python; at thousands of rows a
batch that dominated the time. These statements go to the driver as they are
(``exec_driver_sql``), inside the caller's transaction:

* PostgreSQL: one statement per table whatever the batch size, over ``unnest`` of one array
  per column: a single prepared statement, no per-row round trip or parameter limit.
* SQLite: multi-row ``VALUES`` for the insert that must say which rows it inserted
  (``RETURNING``), ``executemany`` (a C loop in the sqlite3 module) for the upserts.

Rows arrive sorted by primary key and are written in that order, so concurrent writers lock
rows in the same order (see ``writer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

# (organization_id, event_id, api_key_id, user_id, source, endpoint, status, credits,
#  occurred_at) in primary-key order.
EventRow = tuple[int, str, int | None, int | None, str, str, int, int, datetime]
# (organization_id, dimension, grain, bucket, api_key_id, value, calls, credits).
RollupRow = tuple[int, int, int, int, int, str, int, int]

_EVENT_COLUMNS = (
    "organization_id, event_id, api_key_id, user_id, source, endpoint, status, credits, occurred_at"
)
_ROLLUP_COLUMNS = "organization_id, dimension, grain, bucket, api_key_id, value, calls, credits"
_ROLLUP_KEY = "organization_id, dimension, grain, bucket, api_key_id, value"
_ROLLUP_ADD = (
    "DO UPDATE SET calls = usage_rollups.calls + excluded.calls, "
    "credits = usage_rollups.credits + excluded.credits"
)

_PG_INSERT_EVENTS = (
    f"INSERT INTO usage_events ({_EVENT_COLUMNS}) "
    "SELECT * FROM unnest($1::bigint[], $2::varchar[], $3::bigint[], $4::bigint[], "
    "$5::varchar[], $6::varchar[], $7::smallint[], $8::bigint[], $9::timestamptz[]) "
    "ON CONFLICT (organization_id, event_id) DO NOTHING "
    "RETURNING organization_id, event_id"
)
_PG_ADD_ROLLUPS = (
    f"INSERT INTO usage_rollups ({_ROLLUP_COLUMNS}) "
    "SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::integer[], $4::bigint[], "
    "$5::bigint[], $6::text[], $7::bigint[], $8::bigint[]) "
    f"ON CONFLICT ({_ROLLUP_KEY}) {_ROLLUP_ADD}"
)
_SQLITE_ADD_ROLLUPS = (
    f"INSERT INTO usage_rollups ({_ROLLUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT ({_ROLLUP_KEY}) {_ROLLUP_ADD}"
)
# SQLite allows 32,766 bound parameters per statement: 1,000 rows of 9 stay well below.
_SQLITE_ROWS_PER_INSERT = 1000


def _sqlite_instant(at: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores for a UTC instant (see db.types)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


async def insert_events(conn: AsyncConnection, rows: Sequence[EventRow]) -> set[tuple[int, str]]:
    """Insert the rows whose (organization, id) is new; return the keys actually inserted."""
    if not rows:
        return set()
    inserted: set[tuple[int, str]] = set()
    if conn.dialect.name == "postgresql":
        result = await conn.exec_driver_sql(_PG_INSERT_EVENTS, tuple(_columns(rows, 9)))
        inserted.update((org, ident) for org, ident in result)
        return inserted
    for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
        chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        parameters: list[object] = []
        for row in chunk:
            parameters.extend(row[:8])
            parameters.append(_sqlite_instant(row[8]))
        result = await conn.exec_driver_sql(
            f"INSERT INTO usage_events ({_EVENT_COLUMNS}) VALUES {values} "
            "ON CONFLICT (organization_id, event_id) DO NOTHING "
            "RETURNING organization_id, event_id",
            tuple(parameters),
        )
        inserted.update((org, ident) for org, ident in result)
    return inserted


async def add_rollups(conn: AsyncConnection, rows: Sequence[RollupRow]) -> None:
    """Add calls and credits to rollup rows, creating the missing ones."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(_PG_ADD_ROLLUPS, tuple(_columns(rows, 8)))
    else:
        await conn.exec_driver_sql(_SQLITE_ADD_ROLLUPS, list(rows))


async def move_forward(
    conn: AsyncConnection, table: str, column: str, latest: dict[int, datetime]
) -> None:
    """Set ``column`` of rows ``id`` to a later instant; never moves one back."""
    if not latest:
        return
    pairs = sorted(latest.items())
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(
            f"UPDATE {table} SET {column} = new.at "
            "FROM unnest($1::bigint[], $2::timestamptz[]) AS new(id, at) "
            f"WHERE {table}.id = new.id "
            f"AND ({table}.{column} IS NULL OR {table}.{column} < new.at)",
            ([ident for ident, _ in pairs], [at for _, at in pairs]),
        )
    else:
        await conn.exec_driver_sql(
            f"UPDATE {table} SET {column} = ? WHERE id = ? AND ({column} IS NULL OR {column} < ?)",
            [(_sqlite_instant(at), ident, _sqlite_instant(at)) for ident, at in pairs],
        )
