"""Fold the rollup tail (``usage_pending``) into ``usage_rollups`` in large batches.

Ingestion writes each new event and one pending row in its transaction (two inserts per
event instead of ~20 rollup upserts). A fold takes the oldest pending rows, sums them first
per quarter hour and (organization, key, user, source, endpoint, outcome), then into every
rollup row they add to, upserts those in primary-key order and deletes exactly the rows it
summed, in one transaction: a crash leaves them pending, never half folded. Reads add the
pending rows of their range in the same statement as the rollups (db/queries/usage.py), so
at any snapshot an event is counted in exactly one of the two.

One fold at a time per database: the transaction-scoped advisory lock ``FOLD_LOCK`` on
PostgreSQL (a second folder skips), the write lock (``BEGIN IMMEDIATE``) on SQLite.
``rollups rebuild`` takes the same lock, so it never races a fold.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.engine import writing
from db.grains import ALL_KEYS_GRAINS, GRAIN_SECONDS
from db.rollup_keys import ALL_KEYS
from domain.dimensions import Dimension

# pg_advisory_xact_lock key of the folder (and of ``rollups rebuild``): 'crlf'.
FOLD_LOCK = 0x63726C66
# Pending rows per fold: large enough to coalesce (a quarter hour of one key's endpoint is
# summed once however many events it holds). On SQLite a fold holds the write lock that
# ingestion needs, so it is kept to a fraction of a second; on PostgreSQL a fold and
# ingestion touch no common row and run side by side.
FOLD_ROWS = 20_000
SQLITE_FOLD_ROWS = 5_000


def fold_rows(engine: AsyncEngine) -> int:
    """How many pending rows one fold takes on this database."""
    return FOLD_ROWS if engine.dialect.name == "postgresql" else SQLITE_FOLD_ROWS


QUARTER = GRAIN_SECONDS[0]
ROLLUP_COLUMNS = (
    "organization_id, dimension, grain, bucket, api_key_id, value, outcome, calls, credits"
)
ROLLUP_KEY = "organization_id, dimension, grain, api_key_id, bucket, value, outcome"
# Grains and dimensions written into the SQL from their one definition.
GRAIN_ROWS = ", ".join(
    [f"({grain}, 0)" for grain in GRAIN_SECONDS] + [f"({grain}, 1)" for grain in ALL_KEYS_GRAINS]
)
DIMENSION_ROWS = ", ".join(f"({int(dimension)})" for dimension in Dimension)
_VALUE_OF = {
    Dimension.TOTAL: "''",
    Dimension.ENDPOINT: "fine.endpoint",
    Dimension.SOURCE: "fine.source",
    Dimension.USER: "coalesce(CAST(fine.user_id AS TEXT), '')",
}
VALUE_CASE = (
    "CASE d.dimension "
    + " ".join(f"WHEN {int(dimension)} THEN {_VALUE_OF[dimension]}" for dimension in Dimension)
    + " END"
)
ADD = (
    "DO UPDATE SET calls = usage_rollups.calls + excluded.calls, "
    "credits = usage_rollups.credits + excluded.credits"
)
_FINE_COLUMNS = "organization_id, api_key_id, user_id, source, endpoint, outcome"


def fine_rows(source: str, epoch: str, key: str = "api_key_id") -> str:
    """The SELECT summing ``source`` per quarter hour and (organization, key, user, source,
    endpoint, outcome), the finest rows every rollup row is a sum of."""
    return (
        f"SELECT organization_id, {key} AS api_key_id, user_id, source, endpoint, outcome, "
        f"{epoch} - {epoch} % {QUARTER} AS quarter, count(*) AS calls, sum(credits) AS credits "
        f"FROM {source} GROUP BY organization_id, {key}, user_id, source, endpoint, outcome, "
        f"{epoch} - {epoch} % {QUARTER}"
    )


# Every rollup row of the ``fine`` rows: each grain per key, the hour and day grains also
# over all keys, each dimension; summed, then upserted in primary-key order (so a fold and
# ``rollups rebuild`` lock rows in the same order).
EXPAND_CTES = (
    f"g (grain, all_keys) AS (VALUES {GRAIN_ROWS}), d (dimension) AS (VALUES {DIMENSION_ROWS})"
)
EXPAND_INSERT = f"""
INSERT INTO usage_rollups ({ROLLUP_COLUMNS})
SELECT fine.organization_id, d.dimension, g.grain, fine.quarter - fine.quarter % g.grain,
       CASE WHEN g.all_keys = 1 THEN {ALL_KEYS} ELSE fine.api_key_id END, {VALUE_CASE},
       fine.outcome, sum(fine.calls), sum(fine.credits)
FROM fine CROSS JOIN g CROSS JOIN d
WHERE true
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY 1, 2, 3, 5, 4, 6, 7
ON CONFLICT ({ROLLUP_KEY}) {ADD}
"""

# PostgreSQL: the chunk is deleted and folded by one statement, so exactly the deleted
# rows are added (RETURNING feeds the sums); rows committed meanwhile wait for the next.
_PG_FOLD = f"""
WITH chunk AS (
    DELETE FROM usage_pending
    WHERE id IN (SELECT id FROM usage_pending ORDER BY id LIMIT $1)
    RETURNING {_FINE_COLUMNS}, credits, epoch, received_ms
), fine AS ({fine_rows("chunk", "epoch")}),
{EXPAND_CTES},
rolled AS ({EXPAND_INSERT})
SELECT count(*), min(received_ms) FROM chunk
"""

# SQLite: the write lock is held from the first statement, so the rows up to ``top`` are
# the same in all three.
_SQLITE_TOP = "SELECT max(id) FROM (SELECT id FROM usage_pending ORDER BY id LIMIT ?)"
_SQLITE_COUNT = "SELECT count(*), min(received_ms) FROM usage_pending WHERE id <= ?"
_SQLITE_FOLD = (
    f"WITH fine AS ({fine_rows('(SELECT * FROM usage_pending WHERE id <= ?)', 'epoch')}), "
    f"{EXPAND_CTES} {EXPAND_INSERT}"
)
_SQLITE_DELETE = "DELETE FROM usage_pending WHERE id <= ?"


@dataclass(frozen=True, slots=True)
class Folded:
    """What one fold did: events added to the rollups, and when the oldest was committed
    (epoch milliseconds; None when there was nothing to fold or another folder held the
    lock)."""

    events: int
    oldest_received_ms: int | None


async def take_lock(conn: AsyncConnection, *, wait: bool) -> bool:
    """The folder's lock for this transaction (PostgreSQL); SQLite's write lock is already
    held by ``writing``. ``wait=False``: False when another transaction holds it."""
    if conn.dialect.name != "postgresql":
        return True
    if wait:
        await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({FOLD_LOCK})")
        return True
    result = await conn.exec_driver_sql(f"SELECT pg_try_advisory_xact_lock({FOLD_LOCK})")
    return bool(result.scalar())


async def fold_in(conn: AsyncConnection, limit: int = FOLD_ROWS) -> Folded:
    """Fold up to ``limit`` of the oldest pending rows; the caller owns the transaction
    (a write transaction: ``BEGIN IMMEDIATE`` on SQLite)."""
    if not await take_lock(conn, wait=False):
        return Folded(0, None)
    if conn.dialect.name == "postgresql":
        events, oldest = tuple((await conn.exec_driver_sql(_PG_FOLD, (limit,))).one())
        return Folded(int(events), None if oldest is None else int(oldest))
    top = (await conn.exec_driver_sql(_SQLITE_TOP, (limit,))).scalar()
    if top is None:
        return Folded(0, None)
    count, oldest = tuple((await conn.exec_driver_sql(_SQLITE_COUNT, (top,))).one())
    await conn.exec_driver_sql(_SQLITE_FOLD, (top,))
    await conn.exec_driver_sql(_SQLITE_DELETE, (top,))
    return Folded(int(count), None if oldest is None else int(oldest))


async def fold(engine: AsyncEngine, limit: int = FOLD_ROWS) -> Folded:
    """Fold up to ``limit`` pending rows in a transaction of its own.

    Looks first with a plain read, so an idle folder never takes SQLite's write lock (nor
    PostgreSQL's advisory lock) just to find nothing.
    """
    async with engine.connect() as conn:
        found = await conn.exec_driver_sql("SELECT 1 FROM usage_pending LIMIT 1")
        if found.first() is None:
            return Folded(0, None)
    async with writing(engine) as conn:
        return await fold_in(conn, limit)


async def fold_all(engine: AsyncEngine) -> int:
    """Fold until nothing is pending (tests, ``rollups rebuild``, shutdown); the events
    folded. Waits for another folder rather than skipping."""
    total = 0
    while True:
        async with writing(engine) as conn:
            await take_lock(conn, wait=True)
            done = await fold_in(conn)
        total += done.events
        if done.events == 0:
            return total
