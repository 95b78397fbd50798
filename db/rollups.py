"""Recompute every rollup from raw events, in SQL, independently of the ingestion path."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, cast, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from db.grains import ALL_KEYS_GRAINS, GRAIN_SECONDS
from db.rollup_keys import ALL_KEYS, NO_KEY
from db.tables import usage_events, usage_rollups
from domain.dimensions import Dimension


def _epoch_seconds(conn: AsyncConnection) -> ColumnElement[int]:
    occurred_at = usage_events.c.occurred_at
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", occurred_at)), BigInteger)
    return cast(func.strftime("%s", occurred_at), Integer)


def _value(dimension: Dimension) -> ColumnElement[str]:
    e = usage_events.c
    if dimension is Dimension.ENDPOINT:
        return e.endpoint
    if dimension is Dimension.SOURCE:
        return e.source
    if dimension is Dimension.USER:
        return func.coalesce(cast(e.user_id, String), "")
    return literal("", String)


async def rebuild(conn: AsyncConnection) -> int:
    """Replace all rollups by sums over ``usage_events``; returns the rows written.

    The caller owns the transaction, so readers see the old rollups or the new ones,
    never a half-built table.
    """
    await conn.execute(delete(usage_rollups))
    e = usage_events.c
    epoch = _epoch_seconds(conn)
    written = 0
    passes = [(grain, False) for grain in GRAIN_SECONDS]
    passes += [(grain, True) for grain in ALL_KEYS_GRAINS]
    for grain, all_keys in passes:
        bucket = (epoch - epoch % grain).label("bucket")
        for dimension in Dimension:
            value = _value(dimension).label("value")
            key = (
                literal(ALL_KEYS, Integer) if all_keys else func.coalesce(e.api_key_id, NO_KEY)
            ).label("api_key_id")
            source = select(
                e.organization_id,
                literal(int(dimension), Integer).label("dimension"),
                literal(grain, Integer).label("grain"),
                bucket,
                key,
                value,
                e.outcome,
                func.count().label("calls"),
                func.sum(e.credits).label("credits"),
            ).group_by(e.organization_id, bucket, key, value, e.outcome)
            result = await conn.execute(
                insert(usage_rollups).from_select(
                    [
                        "organization_id",
                        "dimension",
                        "grain",
                        "bucket",
                        "api_key_id",
                        "value",
                        "outcome",
                        "calls",
                        "credits",
                    ],
                    source,
                )
            )
            written += max(result.rowcount or 0, 0)
    return written
