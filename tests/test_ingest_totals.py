"""The stored totals (tests/stored_totals.py) notice a rollup that disagrees with events."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from db.engine import writing
from db.tables import usage_rollups
from tests.stored_totals import totals


async def test_totals_notice_a_rollup_that_disagrees_with_events(engine, clock):
    from db.ingestion import ingest
    from tests.factories import event, make_tenant

    tenant = await make_tenant(engine, now=clock())
    at = clock() - timedelta(hours=1)
    await ingest(engine, [event(tenant.slug, at, credits=3)], now=clock())
    good = await totals(engine)
    assert (good.events, good.credits) == (1, 3)
    assert good.rollups_match_events()
    async with writing(engine) as conn:
        await conn.execute(
            update(usage_rollups).where(usage_rollups.c.grain == 3600).values(credits=4)
        )
    assert not (await totals(engine)).rollups_match_events()
