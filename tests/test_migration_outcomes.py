"""Migration 0005: outcomes filled from stored statuses, rollups refilled by outcome,
``first_seen_at`` from each key's earliest event; migration 0007: all-outcomes rows; and
back again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, String, column, select, table, text

from db import migrate
from db.engine import create_engine
from db.rollups import rebuild
from db.types import UTCDateTime
from domain.outcomes import OUTCOME_CODES, outcome_of

T0 = datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
STATUSES = [200, 201, 302, 404, 429, 400, 403, 500, 503, 200]

# The tables as revision 0004 has them (db.tables describes the head).
organizations = table(
    "organizations",
    column("id", Integer),
    column("slug", String),
    column("name", String),
    column("plan", String),
    column("timezone", String),
    column("credit_allowance", BigInteger),
    column("billing_cycle_anchor", UTCDateTime),
    column("created_at", UTCDateTime),
)
api_keys = table(
    "api_keys",
    column("id", Integer),
    column("organization_id", Integer),
    column("external_id", String),
    column("name", String),
    column("created_at", UTCDateTime),
)
usage_events = table(
    "usage_events",
    Column("organization_id", Integer),
    Column("event_id", String),
    Column("api_key_id", Integer),
    Column("user_id", Integer),
    Column("source", String),
    Column("endpoint", String),
    Column("status", Integer),
    Column("credits", BigInteger),
    Column("occurred_at", UTCDateTime),
)


def _events() -> list[dict[str, object]]:
    rows = []
    for index in range(60):
        rows.append(
            {
                "organization_id": 1,
                "event_id": f"e{index}",
                "api_key_id": [1, 2, None][index % 3],
                "user_id": None,
                "source": "api",
                "endpoint": f"/e{index % 4}",
                "status": STATUSES[index % len(STATUSES)],
                "credits": index % 7,
                # Over three days, out of order: the earliest event is not the first row.
                "occurred_at": T0 + timedelta(minutes=(index * 977) % 4320),
            }
        )
    return rows


async def _insert(conn, events: list[dict[str, object]]) -> None:  # type: ignore[no-untyped-def]
    """One organization with three keys and ``events``, as revision 0004 stores them."""
    await conn.execute(
        organizations.insert().values(
            id=1,
            slug="acme",
            name="Acme",
            plan="PRO",
            timezone="UTC",
            credit_allowance=1000,
            billing_cycle_anchor=T0,
            created_at=T0,
        )
    )
    await conn.execute(
        api_keys.insert(),
        [
            {
                "id": 1,
                "organization_id": 1,
                "external_id": "a",
                "name": "A",
                "created_at": T0,
            },
            {
                "id": 2,
                "organization_id": 1,
                "external_id": "b",
                "name": "B",
                "created_at": T0,
            },
            {
                "id": 3,
                "organization_id": 1,
                "external_id": "c",
                "name": "C",
                "created_at": T0,
            },
        ],
    )
    await conn.execute(usage_events.insert(), events)


async def _stored_at_0004(url: str) -> tuple[list[dict[str, object]], Any]:
    """The database at revision 0004 with ``_events()`` stored; its engine (to dispose)."""
    events = _events()
    await asyncio.to_thread(migrate.upgrade, url, "0004")
    engine = create_engine(url)
    async with engine.begin() as conn:
        await _insert(conn, events)
    return events, engine


async def _rollups(conn) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    result = await conn.execute(
        text(
            "SELECT organization_id, dimension, grain, api_key_id, bucket, value, outcome, "
            "calls, credits FROM usage_rollups "
            "ORDER BY organization_id, dimension, grain, api_key_id, bucket, value, outcome"
        )
    )
    return [tuple(row) for row in result]


async def test_0005_fills_outcomes_rollups_and_first_seen_and_goes_back(scratch_url):
    events, engine = await _stored_at_0004(scratch_url)
    try:
        await asyncio.to_thread(migrate.upgrade, scratch_url)

        async with engine.connect() as conn:
            stored = dict(
                (await conn.execute(text("SELECT event_id, outcome FROM usage_events"))).all()
            )
            migrated = await _rollups(conn)
            firsts = dict(
                (
                    await conn.execute(
                        select(column("id"), column("first_seen_at", UTCDateTime)).select_from(
                            table("api_keys")
                        )
                    )
                ).all()
            )
        async with engine.begin() as conn:
            await rebuild(conn)
            rebuilt = await _rollups(conn)

        await asyncio.to_thread(migrate.downgrade, scratch_url, "0004")
        async with engine.connect() as conn:
            downgraded = [
                tuple(row)
                for row in await conn.execute(
                    text(
                        "SELECT organization_id, dimension, grain, api_key_id, bucket, value, "
                        "calls, credits FROM usage_rollups ORDER BY organization_id, dimension, "
                        "grain, api_key_id, bucket, value"
                    )
                )
            ]
    finally:
        await engine.dispose()

    assert stored == {
        row["event_id"]: OUTCOME_CODES[outcome_of(int(str(row["status"])))] for row in events
    }
    assert len(set(stored.values())) == 5  # every outcome is present
    assert migrated == rebuilt
    calls_per_outcome = {}
    for _, dimension, grain, key, _, _, outcome, calls, _ in migrated:
        if (dimension, grain, key) == (0, 86400, -1):
            calls_per_outcome[outcome] = calls_per_outcome.get(outcome, 0) + calls
    # The layout of 0007: an all-outcomes row, and no row of the implied SUCCESS (1).
    assert calls_per_outcome == {
        0: len(stored),
        **{
            code: sum(1 for value in stored.values() if value == code)
            for code in set(stored.values()) - {1}
        },
    }
    earliest = {
        key: min(e["occurred_at"] for e in events if e["api_key_id"] == key)  # type: ignore[type-var]
        for key in (1, 2)
    }
    assert firsts == {1: earliest[1], 2: earliest[2], 3: None}
    summed: dict[tuple[object, ...], list[int]] = {}
    for *key, outcome, calls, credits in migrated:
        if key[2:4] == [900, -1] or outcome != 0:
            continue  # all-keys quarter hours came with 0006; the 0004 layout has none
        slot = summed.setdefault(tuple(key), [0, 0])
        slot[0] += int(str(calls))
        slot[1] += int(str(credits))
    assert downgraded == [
        (*key, calls, credits) for key, (calls, credits) in sorted(summed.items())
    ]


async def test_0007_adds_all_outcomes_rows_drops_successes_and_goes_back(scratch_url):
    """0007 turns the rollups of 0006 into those ``rollups rebuild`` writes now, and its
    downgrade gives back exactly the rows of 0006 (a cell whose calls all failed gets no
    SUCCESS row, as 0006 had none)."""
    _, engine = await _stored_at_0004(scratch_url)
    try:
        await asyncio.to_thread(migrate.upgrade, scratch_url, "0006")
        async with engine.connect() as conn:
            before = await _rollups(conn)
        await asyncio.to_thread(migrate.upgrade, scratch_url)
        async with engine.connect() as conn:
            migrated = await _rollups(conn)
        async with engine.begin() as conn:
            await rebuild(conn)
            rebuilt = await _rollups(conn)
        await asyncio.to_thread(migrate.downgrade, scratch_url, "0006")
        async with engine.connect() as conn:
            after = await _rollups(conn)
    finally:
        await engine.dispose()
    assert {row[6] for row in before} == {1, 2, 3, 4, 5}
    assert {row[6] for row in migrated} == {0, 2, 3, 4, 5}
    # A cell without successes is there (so the downgrade's "no row" case is exercised).
    cells = {row[:6] for row in before}
    assert cells - {row[:6] for row in before if row[6] == 1}
    assert migrated == rebuilt
    assert after == before
