"""The three bulk statements of ingestion, written per database for speed.

SQLAlchemy's Core would compile and bind every row through Python; at thousands of rows a
batch that dominated the time. These statements go to the driver as they are
(``exec_driver_sql``), inside the caller's transaction:

* PostgreSQL: one statement for events and rollups whatever the batch size, over
  ``unnest`` of one array per column: a single prepared statement, no per-row round trip
  or parameter limit, and the rollups summed by the database.
* SQLite: multi-row ``VALUES`` for the insert that must say which rows it inserted
  (``RETURNING``), ``executemany`` (a C loop in the sqlite3 module) for the upserts.

Rows arrive sorted by primary key and are written in that order, so concurrent writers lock
rows in the same order (see ``writer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from db.grains import ALL_KEYS_GRAINS, GRAIN_SECONDS
from db.rollup_keys import ALL_KEYS, NO_KEY
from domain.dimensions import Dimension

# (organization_id, event_id, api_key_id, user_id, source, endpoint, status, outcome code,
#  credits, occurred_at) in primary-key order.
EventRow = tuple[int, str, int | None, int | None, str, str, int, int, int, datetime]
# (organization_id, dimension, grain, bucket, api_key_id, value, outcome, calls, credits).
RollupRow = tuple[int, int, int, int, int, str, int, int, int]
# Per organization and key of the inserted events: (organization, api key or None, events
# inserted, newest instant, oldest instant).
KeySpan = tuple[int, int | None, int, datetime, datetime]

_EVENT_COLUMNS = (
    "organization_id, event_id, api_key_id, user_id, source, endpoint, status, outcome, "
    "credits, occurred_at"
)
_ROLLUP_COLUMNS = (
    "organization_id, dimension, grain, bucket, api_key_id, value, outcome, calls, credits"
)
_ROLLUP_KEY = "organization_id, dimension, grain, bucket, api_key_id, value, outcome"
_ROLLUP_ADD = (
    "DO UPDATE SET calls = usage_rollups.calls + excluded.calls, "
    "credits = usage_rollups.credits + excluded.credits"
)

# The rollup codes, written into the SQL from their one definition (db.grains,
# db.rollup_keys, domain.dimensions), never spelt by hand.
# (grain, summed over all keys) of every rollup row an event adds to.
_GRAIN_ROWS = ", ".join(
    [f"({grain}, false)" for grain in GRAIN_SECONDS]
    + [f"({grain}, true)" for grain in ALL_KEYS_GRAINS]
)
_DIMENSION_ROWS = ", ".join(f"({int(dimension)}::smallint)" for dimension in Dimension)
# What ``usage_rollups.value`` holds for each dimension, from the inserted event row.
_VALUE_OF = {
    Dimension.TOTAL: "''",
    Dimension.ENDPOINT: "new.endpoint::text",
    Dimension.SOURCE: "new.source::text",
    Dimension.USER: "coalesce(new.user_id::text, '')",
}
_VALUE_CASE = (
    "CASE d.dimension "
    + " ".join(f"WHEN {int(dimension)} THEN {_VALUE_OF[dimension]}" for dimension in Dimension)
    + " END"
)

# Events, then their rollups summed by PostgreSQL in the same statement: no rollup row
# crosses the wire, and the sums are made in C. Rows are locked in primary-key order (the
# unnest order, then ORDER BY). The result names, per organization and key, how many
# events were new and the newest instant, for ``move_forward``.
_PG_WRITE = f"""
WITH new AS (
    INSERT INTO usage_events ({_EVENT_COLUMNS})
    SELECT * FROM unnest($1::bigint[], $2::varchar[], $3::bigint[], $4::bigint[],
                         $5::varchar[], $6::varchar[], $7::smallint[], $8::smallint[],
                         $9::bigint[], $10::timestamptz[])
    ON CONFLICT (organization_id, event_id) DO NOTHING
    RETURNING organization_id, api_key_id, user_id, source, endpoint, outcome, credits,
              occurred_at,
              floor(extract(epoch FROM occurred_at))::bigint AS epoch
), expanded AS (
    SELECT new.organization_id, d.dimension, g.grain, new.epoch - new.epoch % g.grain AS bucket,
           CASE WHEN g.all_keys THEN {ALL_KEYS}
                ELSE coalesce(new.api_key_id, {NO_KEY}) END AS api_key_id,
           {_VALUE_CASE} AS value,
           new.outcome, new.credits
    FROM new
    -- The hour and day grains also get rows summed over every key (ALL_KEYS).
    CROSS JOIN (VALUES {_GRAIN_ROWS}) AS g (grain, all_keys)
    CROSS JOIN (VALUES {_DIMENSION_ROWS}) AS d (dimension)
), rolled AS (
    INSERT INTO usage_rollups ({_ROLLUP_COLUMNS})
    SELECT organization_id, dimension, grain, bucket, api_key_id, value, outcome, count(*),
           sum(credits)
    FROM expanded
    GROUP BY organization_id, dimension, grain, bucket, api_key_id, value, outcome
    ORDER BY organization_id, dimension, grain, bucket, api_key_id, value, outcome
    ON CONFLICT ({_ROLLUP_KEY}) {_ROLLUP_ADD}
)
SELECT organization_id, api_key_id, count(*), max(occurred_at), min(occurred_at) FROM new
GROUP BY organization_id, api_key_id
"""
_SQLITE_ADD_ROLLUPS = (
    f"INSERT INTO usage_rollups ({_ROLLUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT ({_ROLLUP_KEY}) {_ROLLUP_ADD}"
)
# SQLite allows 32,766 bound parameters per statement: 1,000 rows of 10 stay well below.
_SQLITE_ROWS_PER_INSERT = 1000


def _sqlite_instant(at: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores for a UTC instant (see db.types)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _columns(rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    """One list per column: the arrays ``unnest`` takes."""
    return [list(column) for column in zip(*rows, strict=True)]


async def sqlite_insert_events(
    conn: AsyncConnection, rows: Sequence[EventRow]
) -> set[tuple[int, str]]:
    """SQLite: insert the rows whose (organization, id) is new; return those inserted."""
    inserted: set[tuple[int, str]] = set()
    for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
        chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        parameters: list[object] = []
        for row in chunk:
            parameters.extend(row[:9])
            parameters.append(_sqlite_instant(row[9]))
        result = await conn.exec_driver_sql(
            f"INSERT INTO usage_events ({_EVENT_COLUMNS}) VALUES {values} "
            "ON CONFLICT (organization_id, event_id) DO NOTHING "
            "RETURNING organization_id, event_id",
            tuple(parameters),
        )
        inserted.update((row[0], row[1]) for row in map(tuple, result))
    return inserted


async def write_postgresql(conn: AsyncConnection, rows: Sequence[EventRow]) -> list[KeySpan]:
    """Insert new events and add them to the rollups in one statement.

    Returns (organization, api key, events inserted, newest and oldest instant) per key.
    """
    if not rows:
        return []
    result = await conn.exec_driver_sql(_PG_WRITE, tuple(_columns(rows)))
    return [(row[0], row[1], int(row[2]), row[3], row[4]) for row in map(tuple, result)]


async def sqlite_add_rollups(conn: AsyncConnection, rows: Sequence[RollupRow]) -> None:
    """SQLite: add calls and credits to rollup rows, creating the missing ones."""
    if rows:
        await conn.exec_driver_sql(_SQLITE_ADD_ROLLUPS, list(rows))


async def move_forward(
    conn: AsyncConnection, table: str, column: str, latest: dict[int, datetime]
) -> None:
    """Set ``column`` of rows ``id`` to a later instant; never moves one back."""
    await _move(conn, table, column, latest, "<")


async def move_backward(
    conn: AsyncConnection, table: str, column: str, earliest: dict[int, datetime]
) -> None:
    """Set ``column`` of rows ``id`` to an earlier instant; never moves one forward."""
    await _move(conn, table, column, earliest, ">")


async def _move(
    conn: AsyncConnection, table: str, column: str, instants: dict[int, datetime], older: str
) -> None:
    """Set ``column`` to the instant where it is NULL or ``column older instant``."""
    latest = instants
    if not latest:
        return
    pairs = sorted(latest.items())
    # One statement per row, in id order (a pipelined executemany): concurrent batches then
    # lock these rows in the same order and cannot deadlock on them.
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(
            f"UPDATE {table} SET {column} = $1 "
            f"WHERE id = $2 AND ({column} IS NULL OR {column} {older} $1)",
            [(at, ident) for ident, at in pairs],
        )
    else:
        await conn.exec_driver_sql(
            f"UPDATE {table} SET {column} = ? "
            f"WHERE id = ? AND ({column} IS NULL OR {column} {older} ?)",
            [(_sqlite_instant(at), ident, _sqlite_instant(at)) for ident, at in pairs],
        )
