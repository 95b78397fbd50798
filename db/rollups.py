"""Recompute every rollup from raw events, in SQL, independently of the ingestion path.

One pass over the events writes the quarter-hour rows of every dimension (from rows summed
per quarter hour, key, user, source, endpoint and outcome; each into its all-outcomes row
and, unless it succeeded, its outcome's row: db/rollup_keys.py); each coarser grain is then
summed from the grain below it, and the all-keys rows from the per-key rows of their grain.
Before, each of the 20 (grain, dimension, all keys) row sets was one scan of the events.
On PostgreSQL ingestion waits for the rebuild (see ``rebuild``); reads see the old rollups
until it commits.
"""

from __future__ import annotations

import itertools

from sqlalchemy.ext.asyncio import AsyncConnection

from db.data_version import bump_all
from db.dialect import epoch_second
from db.folding import (
    DIMENSION_ROWS,
    OUTCOME_CTE,
    ROLLUP_COLUMNS,
    ROLLUP_KEY,
    VALUE_CASE,
    fine_rows,
    outcome_of_row,
    outcome_rows,
    take_lock,
)
from db.grains import ALL_KEYS_GRAINS, GRAIN_SECONDS
from db.rollup_keys import ALL_KEYS, NO_KEY


def _coarser(table: str, grain: int, finer: int, keys: str, *, all_keys: bool) -> str:
    """Rows of ``grain`` summed from the rows of grain ``finer`` whose key matches ``keys``
    (per key, or over all keys), both in ``table``."""
    key = str(ALL_KEYS) if all_keys else "api_key_id"
    group = ["organization_id", "dimension", *([] if all_keys else ["api_key_id"])]
    group += [f"bucket - bucket % {grain}", "value", "outcome"]
    return (
        f"INSERT INTO {table} ({ROLLUP_COLUMNS}) "
        f"SELECT organization_id, dimension, {grain}, bucket - bucket % {grain}, {key}, "
        f"value, outcome, sum(calls), sum(credits) FROM {table} "
        f"WHERE grain = {finer} AND {keys} GROUP BY {', '.join(group)}"
    )


def _fill(conn: AsyncConnection, table: str) -> list[str]:
    """The statements writing every rollup row into the empty ``table``."""
    quarter = GRAIN_SECONDS[0]
    fine = fine_rows("usage_events", epoch_second(conn), key=f"coalesce(api_key_id, {NO_KEY})")
    statements = [
        f"WITH fine AS ({fine}), d (dimension) AS (VALUES {DIMENSION_ROWS}), {OUTCOME_CTE} "
        f"INSERT INTO {table} ({ROLLUP_COLUMNS}) "
        f"SELECT fine.organization_id, d.dimension, {quarter}, fine.quarter, fine.api_key_id, "
        f"{VALUE_CASE}, {outcome_of_row('fine')}, sum(fine.calls), sum(fine.credits) "
        f"FROM fine CROSS JOIN d CROSS JOIN o WHERE {outcome_rows('fine')} "
        "GROUP BY 1, 2, 4, 5, 6, 7"
    ]
    per_key = f"api_key_id <> {ALL_KEYS}"
    for finer, grain in itertools.pairwise(GRAIN_SECONDS):
        statements.append(_coarser(table, grain, finer, per_key, all_keys=False))
    # The finest all-keys grain from the per-key rows of that grain, the others from it.
    first = ALL_KEYS_GRAINS[0]
    statements.append(_coarser(table, first, first, per_key, all_keys=True))
    for finer, grain in itertools.pairwise(ALL_KEYS_GRAINS):
        statements.append(_coarser(table, grain, finer, f"api_key_id = {ALL_KEYS}", all_keys=True))
    return statements


# The primary key's order by position in ROLLUP_COLUMNS (organization, dimension, grain,
# key, bucket, value, outcome): rows inserted in it are appended to the b-tree.
_KEY_ORDER = "1, 2, 3, 5, 4, 6, 7"

# PostgreSQL: the rollups are built in a table without an index, which is then indexed in
# one sorted pass and swapped in. Inserting millions of rows into the primary key one by
# one took most of the old rebuild's time (an index build is several times faster).
_PG_NEXT = "usage_rollups_next"
_PG_SWAP = [
    f"ALTER TABLE {_PG_NEXT} ADD CONSTRAINT pk_{_PG_NEXT} PRIMARY KEY ({ROLLUP_KEY}) "
    "INCLUDE (calls, credits)",
    # As migration 0003 set them on the table it replaces.
    f"ALTER TABLE {_PG_NEXT} SET (autovacuum_analyze_scale_factor = 0.01, "
    "autovacuum_vacuum_scale_factor = 0.02)",
    "DROP TABLE usage_rollups",
    f"ALTER TABLE {_PG_NEXT} RENAME TO usage_rollups",
    f"ALTER TABLE usage_rollups RENAME CONSTRAINT pk_{_PG_NEXT} TO pk_usage_rollups",
    "ANALYZE usage_rollups",
]


async def rebuild(conn: AsyncConnection) -> int:
    """Replace all rollups by sums over ``usage_events``; returns the rows written.

    The pending tail is dropped (its events are in ``usage_events`` and so in the new
    rollups) under the folder's lock, so no fold runs meanwhile; on PostgreSQL ingestion
    waits (its pending rows are locked out) so that the events read and the tail dropped
    are the same ones. The caller owns the transaction, so readers see the old rollups and
    tail or the new ones, never a half-built table.
    """
    await take_lock(conn, wait=True)
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("LOCK TABLE usage_pending IN SHARE MODE")
    await conn.exec_driver_sql("DELETE FROM usage_pending")
    if conn.dialect.name == "postgresql":
        # Sums and the index build in memory rather than in many spilled batches (the
        # defaults, 4 MB and 64 MB, made them 2 to 3 times slower); this transaction only.
        await conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        await conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        await conn.exec_driver_sql(
            f"CREATE TABLE {_PG_NEXT} (LIKE usage_rollups INCLUDING DEFAULTS)"
        )
        for statement in [*_fill(conn, _PG_NEXT), *_PG_SWAP]:
            await conn.exec_driver_sql(statement)
    else:
        # SQLite: straight into the emptied WITHOUT ROWID table, each set in key order (a
        # temporary table copied in key order cost 7% more instructions, bench/PROPOSALS.md).
        await conn.exec_driver_sql("DELETE FROM usage_rollups")
        for statement in _fill(conn, "usage_rollups"):
            await conn.exec_driver_sql(f"{statement} ORDER BY {_KEY_ORDER}")
    # A sound table gives the same answers, but a rebuild is also how damaged rollups are
    # repaired: answers kept from them (app/answer_cache.py) must not outlive it.
    await bump_all(conn)
    # Counted, not summed from rowcounts: Python's sqlite3 reports none for WITH ... INSERT.
    written = await conn.exec_driver_sql("SELECT count(*) FROM usage_rollups")
    return int(written.scalar_one())
