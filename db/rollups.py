"""Recompute every rollup from raw events, in SQL, independently of the ingestion path.

One pass over the events writes the quarter-hour rows of every dimension (from rows summed
per quarter hour, key, user, source, endpoint and outcome); each coarser grain is then
summed from the grain below it, and the all-keys rows from the per-key rows of their grain.
Before, each of the 20 (grain, dimension, all keys) row sets was one scan of the events.
"""

from __future__ import annotations

import itertools

from sqlalchemy.ext.asyncio import AsyncConnection

from db.folding import (
    DIMENSION_ROWS,
    ROLLUP_COLUMNS,
    VALUE_CASE,
    fine_rows,
    take_lock,
)
from db.grains import ALL_KEYS_GRAINS, GRAIN_SECONDS
from db.rollup_keys import ALL_KEYS, NO_KEY


def _epoch(conn: AsyncConnection) -> str:
    if conn.dialect.name == "postgresql":
        return "CAST(floor(extract(epoch FROM occurred_at)) AS BIGINT)"
    return "CAST(strftime('%s', occurred_at) AS INTEGER)"


def _coarser(grain: int, finer: int, keys: str, *, all_keys: bool) -> str:
    """Rows of ``grain`` summed from the rows of grain ``finer`` whose key matches ``keys``
    (per key, or over all keys)."""
    key = str(ALL_KEYS) if all_keys else "api_key_id"
    group = ["organization_id", "dimension", *([] if all_keys else ["api_key_id"])]
    group += [f"bucket - bucket % {grain}", "value", "outcome"]
    return (
        f"INSERT INTO usage_rollups ({ROLLUP_COLUMNS}) "
        f"SELECT organization_id, dimension, {grain}, bucket - bucket % {grain}, {key}, "
        f"value, outcome, sum(calls), sum(credits) FROM usage_rollups "
        f"WHERE grain = {finer} AND {keys} GROUP BY {', '.join(group)}"
    )


async def rebuild(conn: AsyncConnection) -> int:
    """Replace all rollups by sums over ``usage_events``; returns the rows written.

    The pending tail is dropped (its events are in ``usage_events`` and so in the new
    rollups) under the folder's lock, so no fold runs meanwhile. The caller owns the
    transaction, so readers see the old rollups and tail or the new ones, never a
    half-built table.
    """
    await take_lock(conn, wait=True)
    await conn.exec_driver_sql("DELETE FROM usage_pending")
    await conn.exec_driver_sql("DELETE FROM usage_rollups")
    quarter = GRAIN_SECONDS[0]
    fine = fine_rows("usage_events", _epoch(conn), key=f"coalesce(api_key_id, {NO_KEY})")
    statements = [
        f"WITH fine AS ({fine}), d (dimension) AS (VALUES {DIMENSION_ROWS}) "
        f"INSERT INTO usage_rollups ({ROLLUP_COLUMNS}) "
        f"SELECT fine.organization_id, d.dimension, {quarter}, fine.quarter, fine.api_key_id, "
        f"{VALUE_CASE}, fine.outcome, sum(fine.calls), sum(fine.credits) "
        "FROM fine CROSS JOIN d WHERE true GROUP BY 1, 2, 4, 5, 6, 7"
    ]
    per_key = f"api_key_id <> {ALL_KEYS}"
    for finer, grain in itertools.pairwise(GRAIN_SECONDS):
        statements.append(_coarser(grain, finer, per_key, all_keys=False))
    # The finest all-keys grain from the per-key rows of that grain, the others from it.
    statements.append(_coarser(ALL_KEYS_GRAINS[0], ALL_KEYS_GRAINS[0], per_key, all_keys=True))
    for finer, grain in itertools.pairwise(ALL_KEYS_GRAINS):
        statements.append(_coarser(grain, finer, f"api_key_id = {ALL_KEYS}", all_keys=True))
    for statement in statements:
        await conn.exec_driver_sql(statement)
    # Counted, not summed from rowcounts: Python's sqlite3 reports none for WITH ... INSERT.
    written = await conn.exec_driver_sql("SELECT count(*) FROM usage_rollups")
    return int(written.scalar_one())
