"""The bulk statements of ingestion, written per database for speed.

SQLAlchemy's Core would compile and bind every row through Python; at thousands of rows a
batch that dominated the time. These statements go to the driver as they are
(``exec_driver_sql``), inside the caller's transaction:

* PostgreSQL: one statement for events and their pending rows (the rollup tail that
  db/folding.py adds to the rollups) whatever the batch size, over ``unnest`` of one array
  per column: a single prepared statement, no per-row round trip or parameter limit.
* SQLite: multi-row ``VALUES`` for the events; the pending rows and the spans per key are
  then read by SQLite from the rows the transaction inserted (``write_sqlite``).

Rows arrive sorted by primary key and are written in that order, so concurrent writers lock
rows in the same order (see ``writer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from db.dialect import POSTGRESQL_EPOCH_SECOND, SQLITE_EPOCH_SECOND
from db.rollup_keys import NO_KEY

# (organization_id, event_id, api_key_id, user_id, source, endpoint, status, outcome code,
#  credits, occurred_at) in primary-key order.
EventRow = tuple[int, str, int | None, int | None, str, str, int, int, int, datetime]
# Per organization and key of the inserted events: (organization, api key or None, events
# inserted, newest instant, oldest instant).
KeySpan = tuple[int, int | None, int, datetime, datetime]

_EVENT_COLUMNS = (
    "organization_id, event_id, api_key_id, user_id, source, endpoint, status, outcome, "
    "credits, occurred_at"
)
_PENDING_COLUMNS = (
    "organization_id, api_key_id, user_id, source, endpoint, outcome, credits, epoch, received_ms"
)

# Events, then their pending rows (the rollup tail, db/folding.py) in the same statement:
# two inserts per event, no rollup row touched, so concurrent batches never wait on each
# other's rollup rows. Rows are inserted in primary-key order (the unnest order). The
# result names, per organization and key, how many events were new and the newest and
# oldest instants, for ``widen_key_spans`` and ``advance_organizations``.
_PG_WRITE = f"""
WITH new AS (
    INSERT INTO usage_events ({_EVENT_COLUMNS})
    SELECT * FROM unnest($1::bigint[], $2::varchar[], $3::bigint[], $4::bigint[],
                         $5::varchar[], $6::varchar[], $7::smallint[], $8::smallint[],
                         $9::bigint[], $10::timestamptz[])
    ON CONFLICT (organization_id, event_id) DO NOTHING
    RETURNING organization_id, api_key_id, user_id, source, endpoint, outcome, credits,
              occurred_at
), pending AS (
    INSERT INTO usage_pending ({_PENDING_COLUMNS})
    SELECT organization_id, coalesce(api_key_id, {NO_KEY}), user_id, source, endpoint, outcome,
           credits, {POSTGRESQL_EPOCH_SECOND}, $11::bigint
    FROM new
)
SELECT organization_id, api_key_id, count(*), max(occurred_at), min(occurred_at) FROM new
GROUP BY organization_id, api_key_id
"""
_SQLITE_LAST_ROWID = "SELECT max(rowid) FROM usage_events"
# The pending rows and the spans per key of the events inserted after rowid ?. NOT INDEXED:
# otherwise SQLite's planner reads the spans through ix_usage_events_org_occurred, which
# covers them, i.e. every event ever stored, instead of the rowid range (7.9 ms against
# 1.1 ms per batch at 60,000 events, and growing with the table).
_SQLITE_PENDING_OF_NEW = f"""
INSERT INTO usage_pending ({_PENDING_COLUMNS})
SELECT organization_id, coalesce(api_key_id, {NO_KEY}), user_id, source, endpoint, outcome,
       credits, {SQLITE_EPOCH_SECOND}, ?1
FROM usage_events NOT INDEXED WHERE rowid > ?2 ORDER BY rowid
"""
_SQLITE_SPANS_OF_NEW = """
SELECT organization_id, api_key_id, count(*), max(occurred_at), min(occurred_at)
FROM usage_events NOT INDEXED WHERE rowid > ? GROUP BY organization_id, api_key_id
"""
# SQLite allows 32,766 bound parameters per statement: 1,000 rows of 10 stay well below.
_SQLITE_ROWS_PER_INSERT = 1000


def _sqlite_instant(at: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores for a UTC instant (see db.types)."""
    if at.tzinfo is UTC:
        # Validated instants are UTC already: their text less "+00:00" (a third of the
        # time of converting; three per event, at the top of a live batch's own work).
        return at.isoformat(" ", "microseconds")[:-6]
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _columns(rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    """One list per column: the arrays ``unnest`` takes."""
    return [list(column) for column in zip(*rows, strict=True)]


async def write_sqlite(
    conn: AsyncConnection, rows: Sequence[EventRow], *, received_ms: int
) -> list[KeySpan]:
    """SQLite: insert the new events, then their pending rows and the spans per key from
    the rows just inserted, like ``write_postgresql``.

    The rows this transaction inserted are those with a rowid above the largest before it:
    SQLite gives a new row the largest rowid plus one, and the write lock (``BEGIN
    IMMEDIATE``) keeps every other writer out until the commit. So the pending rows are
    copied by SQLite itself (no ``RETURNING`` rows brought back to Python, no pending
    row built and bound per event), with the epoch second computed as ``rollups rebuild``
    computes it.
    """
    if not rows:
        return []
    before = (await conn.exec_driver_sql(_SQLITE_LAST_ROWID)).scalar() or 0
    for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
        chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        parameters: list[object] = []
        for row in chunk:
            parameters.extend(row[:9])
            parameters.append(_sqlite_instant(row[9]))
        await conn.exec_driver_sql(
            f"INSERT INTO usage_events ({_EVENT_COLUMNS}) VALUES {values} "
            "ON CONFLICT (organization_id, event_id) DO NOTHING",
            tuple(parameters),
        )
    await conn.exec_driver_sql(_SQLITE_PENDING_OF_NEW, (received_ms, before))
    spans = await conn.exec_driver_sql(_SQLITE_SPANS_OF_NEW, (before,))
    return [
        (org, key, int(count), _from_sqlite(latest), _from_sqlite(earliest))
        for org, key, count, latest, earliest in map(tuple, spans)
    ]


def _from_sqlite(text: str) -> datetime:
    """The UTC instant of a stored SQLite ``occurred_at`` (``_sqlite_instant``)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def write_postgresql(
    conn: AsyncConnection, rows: Sequence[EventRow], *, received_ms: int
) -> list[KeySpan]:
    """Insert new events and their pending rows in one statement.

    Returns (organization, api key, events inserted, newest and oldest instant) per key.
    """
    if not rows:
        return []
    result = await conn.exec_driver_sql(_PG_WRITE, (*_columns(rows), received_ms))
    return [(row[0], row[1], int(row[2]), row[3], row[4]) for row in map(tuple, result)]


async def lookup(
    conn: AsyncConnection, table: str, pairs: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], int]:
    """Ids of the rows of ``table`` (users or api_keys) named by (organization, external
    id), through their unique index."""
    found: dict[tuple[int, str], int] = {}
    if not pairs:
        return found
    if conn.dialect.name == "postgresql":
        rows = await conn.exec_driver_sql(
            f"SELECT t.id, t.organization_id, t.external_id FROM {table} AS t "
            "JOIN unnest($1::bigint[], $2::varchar[]) AS wanted (organization_id, external_id) "
            "ON t.organization_id = wanted.organization_id "
            "AND t.external_id = wanted.external_id",
            tuple(_columns(pairs)),
        )
        for ident, org, external in map(tuple, rows):
            found[(org, external)] = ident
        return found
    # SQLite allows 32,766 bound parameters: chunks of 5,000 pairs.
    for start in range(0, len(pairs), 5000):
        chunk = pairs[start : start + 5000]
        rows = await conn.exec_driver_sql(
            f"SELECT t.id, t.organization_id, t.external_id FROM "
            f"(VALUES {', '.join(['(?, ?)'] * len(chunk))}) AS wanted JOIN {table} AS t "
            "ON t.organization_id = wanted.column1 AND t.external_id = wanted.column2",
            tuple(value for pair in chunk for value in pair),
        )
        for ident, org, external in map(tuple, rows):
            found[(org, external)] = ident
    return found


async def widen_key_spans(
    conn: AsyncConnection, spans: dict[int, tuple[datetime, datetime]]
) -> None:
    """Move ``first_seen_at`` of API keys back and ``last_used_at`` forward to cover
    (earliest, latest) per key id; never the other way. One statement per key, in id order
    (see ``advance_organizations``), touching only keys whose span grows."""
    if not spans:
        return
    pairs = sorted(spans.items())
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(
            "UPDATE api_keys SET "
            "first_seen_at = CASE WHEN first_seen_at IS NULL OR first_seen_at > $1 "
            "THEN $1 ELSE first_seen_at END, "
            "last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $2 "
            "THEN $2 ELSE last_used_at END "
            "WHERE id = $3 AND (first_seen_at IS NULL OR first_seen_at > $1 "
            "OR last_used_at IS NULL OR last_used_at < $2)",
            [(first, last, ident) for ident, (first, last) in pairs],
        )
    else:
        await conn.exec_driver_sql(
            "UPDATE api_keys SET "
            "first_seen_at = CASE WHEN first_seen_at IS NULL OR first_seen_at > ?1 "
            "THEN ?1 ELSE first_seen_at END, "
            "last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ?2 "
            "THEN ?2 ELSE last_used_at END "
            "WHERE id = ?3 AND (first_seen_at IS NULL OR first_seen_at > ?1 "
            "OR last_used_at IS NULL OR last_used_at < ?2)",
            [
                (_sqlite_instant(first), _sqlite_instant(last), ident)
                for ident, (first, last) in pairs
            ],
        )


async def advance_organizations(conn: AsyncConnection, latest: dict[int, datetime | None]) -> None:
    """For each organization whose answers the batch changed: add 1 to ``data_version``
    (db/data_version.py) and move ``last_event_at`` forward to the newest of its new events
    (None: no new event, only new keys or users), never back.

    One statement per row, in id order (a pipelined executemany): concurrent batches then
    lock these rows in the same order and cannot deadlock on them. Every such row is
    updated now (the version moves even when ``last_event_at`` stays), so concurrent
    batches of one organization queue on its row from here to their commit.
    """
    if not latest:
        return
    pairs = sorted(latest.items())
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(
            "UPDATE organizations SET data_version = data_version + 1, "
            "last_event_at = CASE WHEN last_event_at IS NULL OR last_event_at < $1 "
            "THEN $1 ELSE last_event_at END WHERE id = $2",
            [(at, ident) for ident, at in pairs],
        )
    else:
        await conn.exec_driver_sql(
            "UPDATE organizations SET data_version = data_version + 1, "
            "last_event_at = CASE WHEN last_event_at IS NULL OR last_event_at < ?1 "
            "THEN ?1 ELSE last_event_at END WHERE id = ?2",
            [(None if at is None else _sqlite_instant(at), ident) for ident, at in pairs],
        )
