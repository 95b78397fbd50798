"""A report of one key binds the key as a value, not as a list of one (db/queries/usage.py,
``_Shape.one_key``).

PostgreSQL estimates ``api_key_id = ANY(:keys)`` for an array of any length, so the generic
plan of a key's report looked dearer than a custom one and the statement was planned again
at every run (bench/PROPOSALS.md, R44). With the key as a value it keeps the generic plan,
as it does for the organization-wide report; the answers are the same either way. (Which
plan PostgreSQL keeps depends on the table's statistics: at a test's size it keeps the
generic plan of either form, so the plan is measured in bench/, and the form tested here.)
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from db.folding import fold_all
from db.queries import reports, usage
from db.tables import api_keys
from domain.dimensions import Dimension
from tests.factories import event, make_ingest_token, make_tenant, post_events


async def _tenant_with_keys(client, engine, now):  # type: ignore[no-untyped-def]
    tenant = await make_tenant(engine, now=now)
    ingest = await make_ingest_token(engine, now=now)
    events = [
        event(
            tenant.slug,
            now - timedelta(days=day % 20, minutes=7 * day),
            api_key=f"key-{day % 3}",
            endpoint=f"/v2/e{day % 4}",
            credits=1 + day % 5,
        )
        for day in range(60)
    ]
    response = await post_events(client, ingest, events)
    assert response.status_code == 200, response.text
    await fold_all(engine)
    async with engine.connect() as conn:
        keys = (
            await conn.execute(
                select(api_keys.c.id)
                .where(api_keys.c.organization_id == tenant.organization_id)
                .order_by(api_keys.c.id)
            )
        ).scalars()
        return tenant, list(keys)


async def test_one_keys_report_equals_its_share_of_every_keys(client, engine, clock):
    now = clock()
    tenant, keys = await _tenant_with_keys(client, engine, now)
    assert len(keys) == 3
    window = {"organization_id": tenant.organization_id, "start": now - timedelta(days=30)}
    async with engine.connect() as conn:
        per_key = await reports.by_api_key(conn, **window, end=now, api_key_ids=None)
        shares = {share.value: (share.calls, share.credits) for share in per_key}
        for key in keys:
            alone = await reports.totals(conn, **window, end=now, api_key_ids=[key])
            assert (alone.calls, alone.credits) == shares[key]
            # the same key as a list of two (the array form) answers the same
            twice = await reports.totals(conn, **window, end=now, api_key_ids=[key, key])
            assert (twice.calls, twice.credits) == shares[key]


async def test_a_keys_daily_series_in_a_half_hour_zone_equals_the_array_forms(
    client, engine, clock
):
    # Local days of +05:30 are off the UTC hour: many pieces, read through the ranges'
    # arrays on PostgreSQL (``_Shape.ranges``), with the key bound inside each range's read.
    now = clock()
    tenant, keys = await _tenant_with_keys(client, engine, now)
    zone = ZoneInfo("Asia/Kolkata")
    end = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    edges = [end - timedelta(days=30 - day) for day in range(31)]
    window = {"organization_id": tenant.organization_id}
    async with engine.connect() as conn:
        for key in keys:
            alone = await reports.series(conn, **window, edges=edges, api_key_ids=[key])
            twice = await reports.series(conn, **window, edges=edges, api_key_ids=[key, key])
            assert alone == twice
            total = await reports.totals(
                conn, **window, start=edges[0], end=edges[-1], api_key_ids=[key]
            )
            assert sum(day.calls for day in alone) == total.calls > 0
            assert sum(day.credits for day in alone) == total.credits


def test_a_single_keys_statement_names_the_key_as_one_value():
    for arrays in (True, False):
        query = usage._Query(
            organization_id=1,
            dimension=Dimension.ENDPOINT,
            keys=[7],
            by_key=False,
            by_bucket=False,
            by_outcome=False,
            outcomes=None,
        )
        pieces = usage._pieces_for(
            [usage.from_micros(0), usage.from_micros(3 * 86_400_000_000 + 3_600_000_000)]
        )
        shape, parameters = usage._rollup_call(query, pieces, arrays=arrays)
        assert shape.one_key
        assert parameters["key"] == 7
        assert "keys" not in parameters
        sql = str(usage._rollup_shape(shape))
        assert "api_key_id = :key" in sql
        assert "ANY" not in sql
        assert " IN " not in sql
        many, _ = usage._rollup_call(replace(query, keys=[7, 8]), pieces, arrays=arrays)
        assert not many.one_key
        assert ("ANY" if arrays else " IN ") in str(usage._rollup_shape(many))
