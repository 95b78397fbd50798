"""The folder inside the app folds the tail on its own and exports its lag."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

from sqlalchemy import func, select

from db.tables import usage_pending
from tests.factories import event, make_ingest_token, make_tenant, post_events
from tests.stored_totals import totals


async def test_the_app_folds_the_tail_and_reports_the_lag(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    batch = [event(tenant.slug, clock() - timedelta(minutes=i)) for i in range(50)]
    assert (await post_events(client, token, batch)).status_code == 200

    # Waiting is not what is tested: the folder polls, so give it its time. The folder
    # counts a fold once its transaction has committed, so the tail can be empty a moment
    # before the counter moves: wait for both.
    deadline = time.monotonic() + 30
    while True:
        async with engine.connect() as conn:
            pending = (await conn.execute(select(func.count()).select_from(usage_pending))).scalar()
        text = (await client.get("/metrics")).text
        folded = re.search(r"^creditlens_events_folded_total (\S+)$", text, re.MULTILINE)
        if pending == 0 and folded is not None and float(folded.group(1)) >= len(batch):
            break
        assert time.monotonic() < deadline, "the folder never folded and counted the tail"
        await asyncio.sleep(0.05)

    lags = re.search(r"^creditlens_rollup_lag_seconds_count (\S+)$", text, re.MULTILINE)
    assert folded is not None
    assert float(folded.group(1)) == len(batch)
    assert lags is not None
    assert float(lags.group(1)) >= 1
    assert (await totals(engine)).rollups_match_events()
