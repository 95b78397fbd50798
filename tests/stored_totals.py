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
from db.rollup_keys import ALL_KEYS, ALL_OUTCOMES, IMPLIED_OUTCOME
from db.tables import api_keys, usage_events, usage_rollups, users
from domain.dimensions import Dimension


@dataclass(frozen=True)
class Totals:
    events: int
    credits: int
    # (grain, dimension, all keys, outcome) -> calls, credits
    rollup_calls: dict[tuple[int, int, bool, int], int]
    rollup_credits: dict[tuple[int, int, bool, int], int]
    api_keys: int
    users: int
    # outcome code -> calls, credits of the raw events
    outcome_calls: dict[int, int]
    outcome_credits: dict[int, int]

    def rollups_match_events(self) -> bool:
        """Every grain and dimension of the rollups sums to the raw events: the per-key
        rows at every grain, and the all-keys rows at the grains that have them; the
        all-outcomes rows to every event, each other outcome's rows to its events, and the
        implied outcome has no rows (db/rollup_keys.py)."""
        wanted = [(grain, dimension, False) for grain in GRAIN_SECONDS for dimension in Dimension]
        wanted += [(grain, dimension, True) for grain in ALL_KEYS_GRAINS for dimension in Dimension]
        expected_calls = {**self.outcome_calls, ALL_OUTCOMES: self.events}
        expected_credits = {**self.outcome_credits, ALL_OUTCOMES: self.credits}
        expected_calls.pop(IMPLIED_OUTCOME, None)
        expected_credits.pop(IMPLIED_OUTCOME, None)
        stored = {slot[:3] for slot in self.rollup_calls}
        outcomes = {slot[3] for slot in self.rollup_calls}
        return (
            stored <= set(wanted)
            and outcomes <= set(expected_calls)
            and all(
                self.rollup_calls.get((*slot, outcome), 0) == calls
                and self.rollup_credits.get((*slot, outcome), 0) == expected_credits[outcome]
                for slot in wanted
                for outcome, calls in expected_calls.items()
            )
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
            select(
                r.grain, r.dimension, all_keys, r.outcome, func.sum(r.calls), func.sum(r.credits)
            ).group_by(r.grain, r.dimension, all_keys, r.outcome)
        )
        calls: dict[tuple[int, int, bool, int], int] = {}
        sums: dict[tuple[int, int, bool, int], int] = {}
        for grain, dimension, summed_over_keys, outcome, call_sum, credit_sum in rows:
            calls[(grain, dimension, bool(summed_over_keys), outcome)] = int(call_sum)
            sums[(grain, dimension, bool(summed_over_keys), outcome)] = int(credit_sum)
        by_outcome = await conn.execute(
            select(e.outcome, func.count(), func.sum(e.credits)).group_by(e.outcome)
        )
        outcome_calls: dict[int, int] = {}
        outcome_credits: dict[int, int] = {}
        for outcome, count_of, credit_sum in by_outcome:
            outcome_calls[outcome] = int(count_of)
            outcome_credits[outcome] = int(credit_sum or 0)
        keys = (await conn.execute(select(func.count()).select_from(api_keys))).scalar_one()
        people = (await conn.execute(select(func.count()).select_from(users))).scalar_one()
    return Totals(
        int(count),
        int(credits),
        calls,
        sums,
        int(keys),
        int(people),
        outcome_calls,
        outcome_credits,
    )
