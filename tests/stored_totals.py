"""What the database holds, summed, so a test can show a refused batch changed nothing.

Shared by the ingestion tests; tests/test_ingest_totals.py proves it notices a rollup that
disagrees with the raw events.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.folding import fold_all
from db.grains import ALL_KEYS_GRAINS, GRAIN_SECONDS
from db.rollup_keys import ALL_KEYS
from db.tables import api_keys, usage_events, usage_rollups, users
from domain.dimensions import Dimension


@dataclass(frozen=True)
class Totals:
    events: int
    credits: int
    rollup_calls: dict[tuple[int, int, bool], int]  # (grain, dimension, all keys) -> calls
    rollup_credits: dict[tuple[int, int, bool], int]
    api_keys: int
    users: int

    def rollups_match_events(self) -> bool:
        """Every grain and dimension of the rollups sums to the raw events: the per-key
        rows at every grain, and the all-keys rows at the grains that have them."""
        wanted = [(grain, dimension, False) for grain in GRAIN_SECONDS for dimension in Dimension]
        wanted += [(grain, dimension, True) for grain in ALL_KEYS_GRAINS for dimension in Dimension]
        return all(
            self.rollup_calls.get(slot, 0) == self.events
            and self.rollup_credits.get(slot, 0) == self.credits
            for slot in wanted
        )


async def totals(engine: AsyncEngine) -> Totals:
    # The rollup tail first: the rollups hold every event only once it is folded.
    await fold_all(engine)
    e, r = usage_events.c, usage_rollups.c
    async with engine.connect() as conn:
        count, credits = (
            await conn.execute(select(func.count(), func.coalesce(func.sum(e.credits), 0)))
        ).one()
        all_keys = (r.api_key_id == ALL_KEYS).label("all_keys")
        rows = await conn.execute(
            select(r.grain, r.dimension, all_keys, func.sum(r.calls), func.sum(r.credits)).group_by(
                r.grain, r.dimension, all_keys
            )
        )
        calls: dict[tuple[int, int, bool], int] = {}
        sums: dict[tuple[int, int, bool], int] = {}
        for grain, dimension, summed_over_keys, call_sum, credit_sum in rows:
            calls[(grain, dimension, bool(summed_over_keys))] = int(call_sum)
            sums[(grain, dimension, bool(summed_over_keys))] = int(credit_sum)
        keys = (await conn.execute(select(func.count()).select_from(api_keys))).scalar_one()
        people = (await conn.execute(select(func.count()).select_from(users))).scalar_one()
    return Totals(int(count), int(credits), calls, sums, int(keys), int(people))
