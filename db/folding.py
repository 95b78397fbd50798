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

import asyncio
import sqlite3
from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.driver import driver_connection, pooled_connection
from db.engine import writing
from db.grains import ALL_KEYS_GRAINS, GRAIN_SECONDS
from db.rollup_keys import ALL_KEYS, ALL_OUTCOMES, IMPLIED_OUTCOME
from domain.dimensions import Dimension

# pg_advisory_xact_lock key of the folder (and of ``rollups rebuild``): 'crlf'.
FOLD_LOCK = 0x63726C66
# Pending rows per fold: large enough to coalesce (a quarter hour of one key's endpoint is
# summed once however many events it holds). ``fold_all`` and ``rollups rebuild`` take
# this many at a time.
FOLD_ROWS = 20_000
# PostgreSQL's folder folds whenever rows are pending, so its chunks are small while it
# keeps up and grow to this when ingestion outruns it: a fold and ingestion touch no common
# row and run side by side, and a larger chunk is what lets the folder catch up. Folding
# 300,000 pending live-shaped events took 126 us of PostgreSQL time per event in chunks of
# 20,000, 70 in chunks of 100,000 and 38 in one chunk; history-shaped, 534 -> 364 us from
# 20,000 to 100,000 (bench/PROPOSALS.md, I7). Not more: a history-shaped chunk of 100,000
# already holds its transaction (and vacuum's horizon) for half a minute here.
POSTGRES_FOLD_ROWS = 100_000
# SQLite folds outside ingestion's way (the sums are read without the write lock, see
# ``_fold_sqlite``), so it waits for a longer tail and takes more at once: a fold of 50,000
# live-shaped rows costs a third of five folds of 10,000 (bench/PROPOSALS.md I5).
SQLITE_FOLD_ROWS = 50_000
# The SQLite folder waits until this many rows are pending, or the oldest is this old.
SQLITE_FOLD_MIN_ROWS = 20_000
SQLITE_FOLD_WAIT_SECONDS = 2.0
# A longer tail makes ingestion wait (``wait_for_tail``): reads add every pending row of
# their range, so the tail bounds what a read can cost, and the lag must not grow without
# end when ingestion outruns the folder (history-shaped backfills do). SQLite: a 30-day
# report of one organization took 14 ms with no tail, 240 ms with 100,000 pending rows and
# 2.6 s with 300,000, at load 9 (bench/PROPOSALS.md I5). PostgreSQL, whose folds run beside
# ingestion and keep up with more: the 30-day endpoint table of the largest benchmark
# organization took 1.6 ms with no tail, 9.5 ms with 20,000 of its rows pending, 54 ms
# with 100,000 and 329 ms with 300,000 (I7).
TAIL_BOUND_ROWS = 100_000
POSTGRES_TAIL_BOUND_ROWS = 200_000


def tail_bound(engine: AsyncEngine) -> int:
    """How many pending rows make ingestion wait for the folder on this database."""
    return POSTGRES_TAIL_BOUND_ROWS if engine.dialect.name == "postgresql" else TAIL_BOUND_ROWS


def fold_rows(engine: AsyncEngine) -> int:
    """How many pending rows one fold takes at most on this database."""
    return POSTGRES_FOLD_ROWS if engine.dialect.name == "postgresql" else SQLITE_FOLD_ROWS


@dataclass(frozen=True, slots=True)
class Tail:
    """The rollup tail at a glance: at most ``rows`` pending rows (ids are dense apart from
    rolled-back batches, so this bounds the count from above), the oldest committed at
    ``oldest_ms`` (epoch milliseconds)."""

    rows: int
    oldest_ms: int | None

    def age(self, now_ms: int) -> float:
        """Seconds since the oldest pending row was committed (0 when nothing is pending)."""
        return 0.0 if self.oldest_ms is None else max(0.0, (now_ms - self.oldest_ms) / 1000)


async def tail(conn: AsyncConnection) -> Tail:
    """The tail's size and age from the two ends of the id index: O(log n), unlike count(*).

    On SQLite ids grow in commit order (one writer at a time), so the smallest id is the
    oldest commit.
    """
    row = (
        await conn.exec_driver_sql(
            "SELECT (SELECT max(id) FROM usage_pending) - first.id + 1, first.received_ms "
            "FROM (SELECT id, received_ms FROM usage_pending ORDER BY id LIMIT 1) AS first"
        )
    ).first()
    if row is None:
        return Tail(0, None)
    rows, oldest = tuple(row)
    return Tail(int(rows), int(oldest))


async def wait_for_tail(
    engine: AsyncEngine, *, bound: int | None = None, poll: float = 0.05, most: float = 30.0
) -> float:
    """Wait while more than ``bound`` (``tail_bound``) rows are pending, i.e. the folders of
    ``serve`` are behind, at most ``most`` seconds; the seconds waited. Ingestion calls it
    before its write, so a producer that outruns the folders is slowed to their pace
    instead of growing the tail (and every read's share of it) without end. The 200 still
    comes only after the commit; past ``most`` the batch is written all the same (never
    refused, never lost)."""
    limit = tail_bound(engine) if bound is None else bound
    waited = 0.0
    while waited < most:
        async with engine.connect() as conn:
            if (await tail(conn)).rows <= limit:
                break
        await asyncio.sleep(poll)
        waited += poll
    return waited


def fold_due(engine: AsyncEngine, pending: Tail, now_ms: int) -> bool:
    """Whether the folder should fold now. PostgreSQL: whenever anything is pending (folds
    run beside ingestion). SQLite: once the tail is long enough to coalesce well, or its
    oldest row has waited ``SQLITE_FOLD_WAIT_SECONDS``."""
    if pending.rows == 0:
        return False
    if engine.dialect.name == "postgresql":
        return True
    return pending.rows >= SQLITE_FOLD_MIN_ROWS or pending.age(now_ms) >= SQLITE_FOLD_WAIT_SECONDS


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
# Each finer row adds to the all-outcomes row of its cell and, unless its outcome is the
# implied one, to that outcome's row (db/rollup_keys.py): ``o.every`` = 1 is the first.
OUTCOME_CTE = "o (every) AS (VALUES (1), (0))"


def outcome_of_row(row: str) -> str:
    """The rollup outcome a ``row``'s calls add to, joined with ``o`` (``OUTCOME_CTE``)."""
    return f"CASE WHEN o.every = 1 THEN {ALL_OUTCOMES} ELSE {row}.outcome END"


def outcome_rows(row: str) -> str:
    """The condition on ``row`` joined with ``o``: no row of the implied outcome."""
    return f"(o.every = 1 OR {row}.outcome <> {IMPLIED_OUTCOME})"


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
    f"g (grain, all_keys) AS (VALUES {GRAIN_ROWS}), d (dimension) AS (VALUES {DIMENSION_ROWS}), "
    f"{OUTCOME_CTE}"
)
EXPAND_INSERT = f"""
INSERT INTO usage_rollups ({ROLLUP_COLUMNS})
SELECT fine.organization_id, d.dimension, g.grain, fine.quarter - fine.quarter % g.grain,
       CASE WHEN g.all_keys = 1 THEN {ALL_KEYS} ELSE fine.api_key_id END, {VALUE_CASE},
       {outcome_of_row("fine")}, sum(fine.calls), sum(fine.credits)
FROM fine CROSS JOIN g CROSS JOIN d CROSS JOIN o
WHERE {outcome_rows("fine")}
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

# SQLite: sums per dimension first, then grains. Each dimension's quarter-hour rows are
# summed from the chunk directly (they coalesce far better than rows of every column: a
# quarter hour of one key has ~10 endpoints, but thousands of (user, source, endpoint)
# combinations), and the 6 (grain, all keys) rows of each are one more GROUP BY whose order
# is the primary key's, so one sorter serves it and the upsert order (the expansion of every
# column into 24 rows cost two sorts of 24 rows per event: bench/PROPOSALS.md I5).
_SQLITE_PENDING = (
    "SELECT organization_id, api_key_id, user_id, source, endpoint, outcome, credits, "
    f"epoch - epoch % {QUARTER} AS quarter FROM usage_pending WHERE id <= ?"
)


def _sqlite_dimension(dimension: Dimension, value: str, group: str) -> str:
    return (
        f"SELECT organization_id, {int(dimension)}, api_key_id, quarter, {value}, outcome, "
        f"count(*), sum(credits) FROM p GROUP BY organization_id, api_key_id, quarter, "
        f"{group}outcome"
    )


STAGE_COLUMNS = f"{ROLLUP_KEY}, calls, credits"
_SQLITE_SUMS = f"""
WITH p AS ({_SQLITE_PENDING}),
q (organization_id, dimension, api_key_id, bucket, value, outcome, calls, credits)
AS MATERIALIZED (
    {_sqlite_dimension(Dimension.TOTAL, "''", "")}
    UNION ALL {_sqlite_dimension(Dimension.ENDPOINT, "endpoint", "endpoint, ")}
    UNION ALL {_sqlite_dimension(Dimension.SOURCE, "source", "source, ")}
    UNION ALL {
    _sqlite_dimension(Dimension.USER, "coalesce(CAST(user_id AS TEXT), '')", "user_id, ")
}
), g (grain, all_keys) AS (VALUES {GRAIN_ROWS}), {OUTCOME_CTE}
SELECT q.organization_id, q.dimension, g.grain,
       CASE WHEN g.all_keys = 1 THEN {ALL_KEYS} ELSE q.api_key_id END,
       q.bucket - q.bucket % g.grain, q.value, {outcome_of_row("q")}, sum(q.calls),
       sum(q.credits)
FROM q CROSS JOIN g CROSS JOIN o
WHERE {outcome_rows("q")}
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY 1, 2, 3, 4, 5, 6, 7
"""
# The sums go to a temporary table of the folder's own connection (rowids in primary-key
# order), so they can be computed outside the write lock; the upsert reads them back in
# that order.
_SQLITE_STAGE_DROP = "DROP TABLE IF EXISTS temp.fold_stage"
_SQLITE_STAGE = f"CREATE TEMP TABLE fold_stage AS {_SQLITE_SUMS}"
_SQLITE_UPSERT = (
    f"INSERT INTO usage_rollups ({STAGE_COLUMNS}) "
    f"SELECT * FROM temp.fold_stage WHERE true ORDER BY rowid "
    f"ON CONFLICT ({ROLLUP_KEY}) {ADD}"
)
_SQLITE_TOP = "SELECT max(id) FROM (SELECT id FROM usage_pending ORDER BY id LIMIT ?)"
# What identifies a chunk: its rows, and the newest commit among them. Only folders and
# ``rollups rebuild`` delete pending rows, and only under the write lock; if one took these
# rows between the sums and the upsert, the count or the newest commit differs (new rows
# reusing the ids would have been committed after the sums were read).
_SQLITE_CHUNK = (
    "SELECT count(*), min(received_ms), max(received_ms) FROM usage_pending WHERE id <= ?"
)
_SQLITE_DELETE = "DELETE FROM usage_pending WHERE id <= ?"
_SQLITE_CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"


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
    chunk = await _sqlite_sum(conn, limit)
    if chunk is None:
        return Folded(0, None)
    return await _sqlite_apply(conn, chunk)


@dataclass(frozen=True, slots=True)
class _Chunk:
    top: int
    identity: tuple[int, int, int]  # count, oldest and newest commit (``_SQLITE_CHUNK``)


async def _sqlite_sum(conn: AsyncConnection, limit: int) -> _Chunk | None:
    """SQLite: sum the oldest ``limit`` pending rows into ``temp.fold_stage``; a read (or
    the caller's write transaction): nothing of the database is changed."""
    top = (await conn.exec_driver_sql(_SQLITE_TOP, (limit,))).scalar()
    if top is None:
        return None
    count, oldest, newest = tuple((await conn.exec_driver_sql(_SQLITE_CHUNK, (top,))).one())
    await conn.exec_driver_sql(_SQLITE_STAGE_DROP)
    await conn.exec_driver_sql(_SQLITE_STAGE, (top,))
    return _Chunk(int(top), (int(count), int(oldest), int(newest)))


async def _sqlite_apply(conn: AsyncConnection, chunk: _Chunk) -> Folded:
    """SQLite, under the write lock: add the staged sums and delete the rows they sum."""
    await conn.exec_driver_sql(_SQLITE_UPSERT)
    await conn.exec_driver_sql(_SQLITE_DELETE, (chunk.top,))
    await conn.exec_driver_sql(_SQLITE_STAGE_DROP)
    count, oldest, _ = chunk.identity
    return Folded(count, oldest)


async def fold(engine: AsyncEngine, limit: int = FOLD_ROWS) -> Folded:
    """Fold up to ``limit`` pending rows in a transaction of its own.

    Looks first with a plain read, so an idle folder never takes SQLite's write lock (nor
    PostgreSQL's advisory lock) just to find nothing.
    """
    if engine.dialect.name != "postgresql":
        return await _fold_sqlite(engine, limit)
    async with engine.connect() as conn:
        found = await conn.exec_driver_sql("SELECT 1 FROM usage_pending LIMIT 1")
        if found.first() is None:
            return Folded(0, None)
    async with writing(engine) as conn:
        return await fold_in(conn, limit)


async def _fold_sqlite(engine: AsyncEngine, limit: int) -> Folded:
    """SQLite: sum the chunk in a read transaction (WAL: ingestion writes meanwhile), then
    take the write lock only to add the sums and delete the chunk. The sums are most of a
    fold's work (bench/PROPOSALS.md I5), and they run in the driver's thread without the
    GIL, so they overlap ingestion instead of making it wait."""
    async with engine.connect() as conn:
        async with conn.begin():
            chunk = await _sqlite_sum(conn, limit)
        if chunk is None:
            return Folded(0, None)
        conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
        async with conn.begin():
            again = (await conn.exec_driver_sql(_SQLITE_CHUNK, (chunk.top,))).one()
            if tuple(again) != chunk.identity:
                # Another folder (another worker) or a rebuild took these rows meanwhile.
                await conn.exec_driver_sql(_SQLITE_STAGE_DROP)
                return Folded(0, None)
            folded = await _sqlite_apply(conn, chunk)
        # Copy the log back into the database file here, in the folder's thread, so that
        # ingestion's commits seldom do (db.engine.WAL_AUTOCHECKPOINT_PAGES). PASSIVE: it
        # waits for no reader or writer; what it cannot copy yet, a later one will.
        # On the driver's connection: outside any transaction (SQLAlchemy would begin one).
        # The fold has committed: a checkpoint that fails (the file busy past reason) is left
        # to the next fold, or to a commit past the log's bound, not reported as a failed
        # fold (the driver's errors are not SQLAlchemy's, which the folder's loop expects).
        driver = driver_connection(await pooled_connection(conn))
        with suppress(sqlite3.Error):
            cursor = await driver.execute(_SQLITE_CHECKPOINT)
            await cursor.close()
        return folded


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
