"""``rollups rebuild`` recomputes the rollups from raw events and changes no answer; the
freshness fields (a key's lastUsedAt, a report's lastEventAt) follow ingestion."""

from __future__ import annotations

import asyncio
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from db.engine import writing
from db.folding import fold_all
from db.rollups import rebuild
from db.tables import usage_rollups
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events
from tests.stored_totals import totals

ROOT = Path(__file__).resolve().parent.parent
CREDITLENS = str(ROOT / ".venv" / "bin" / "creditlens")

REPORT = """
query($range: TimeRangeInput!) {
  organization {
    usage(timeRange: $range) {
      calls creditsConsumed lastEventAt
      byEndpoint { endpoint calls creditsConsumed percentOfTotal }
      bySource { source calls creditsConsumed percentOfTotal }
      byUser { user { id } calls creditsConsumed percentOfTotal }
      byApiKey { apiKey { id name } calls creditsConsumed percentOfTotal }
      hours: series(granularity: HOUR) { start calls creditsConsumed }
      days: series(granularity: DAY) { start calls creditsConsumed }
    }
  }
}
"""
RANGES = [
    {"start": "2026-05-01T00:00:00Z", "end": "2026-06-15T00:00:00Z", "timezone": "UTC"},
    # Ragged edges read raw events; +05:45 days end on quarter hours.
    {"start": "2026-05-03T07:13:27Z", "end": "2026-06-01T18:02:01Z", "timezone": "Asia/Kathmandu"},
]


async def _rollup_rows(engine) -> list[tuple]:
    await fold_all(engine)  # the rollups hold every event once the tail is folded
    async with engine.connect() as conn:
        rows = await conn.execute(select(usage_rollups).order_by(*usage_rollups.primary_key))
        return [tuple(row) for row in rows]


async def _reports(client, token) -> list[dict]:
    answers = []
    for time_range in RANGES:
        response = await graphql(client, token, REPORT, {"range": time_range})
        body = response.json()
        assert "errors" not in body, body
        answers.append(body["data"])
    return answers


@pytest.fixture
async def loaded(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    other = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    rng = random.Random(5)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    events = [
        event(
            rng.choice([tenant.slug, other.slug]),
            start + timedelta(seconds=rng.randrange(44 * 86400)),
            api_key=rng.choice(["key-a", {"id": "key-b", "name": "Billing"}, None]),
            user=rng.choice(["ann", "bob", None]),
            source=rng.choice(["API", "crm_integration", "extension"]),
            endpoint=rng.choice(["/v2/person", "/v2/company", "prospecting/contact/enrich"]),
            credits=rng.choice([0, 1, 2, 5]),
        )
        for _ in range(1200)
    ]
    for offset in range(0, len(events), 400):
        response = await post_events(client, token, events[offset : offset + 400])
        assert response.status_code == 200, response.text
    return tenant, events


async def test_rebuild_changes_no_rollup_row_and_no_answer(loaded, client, engine):
    tenant, _ = loaded
    rows, answers = await _rollup_rows(engine), await _reports(client, tenant.token)
    assert rows
    assert answers[0]["organization"]["usage"]["calls"] > 0

    async with writing(engine) as conn:
        written = await rebuild(conn)

    assert written == len(rows)
    assert await _rollup_rows(engine) == rows
    assert await _reports(client, tenant.token) == answers


async def test_rebuild_repairs_damaged_rollups(loaded, client, engine):
    tenant, _ = loaded
    rows, answers = await _rollup_rows(engine), await _reports(client, tenant.token)
    async with writing(engine) as conn:
        await conn.execute(delete(usage_rollups).where(usage_rollups.c.grain == 86400))
        await conn.execute(update(usage_rollups).values(credits=usage_rollups.c.credits + 1))
    # Damage behind the app's back moves no data version: the app would reuse the answers it
    # kept (app/answer_cache.py). Forget them, so the damaged rollups are read and kept.
    client.answers.clear()
    assert await _reports(client, tenant.token) != answers

    async with writing(engine) as conn:
        await rebuild(conn)

    assert await _rollup_rows(engine) == rows
    # The rebuild moved every organization's data version: the damaged answers are not reused.
    assert await _reports(client, tenant.token) == answers


async def test_cli_rebuild_changes_no_answer(loaded, client, engine, database_url):
    tenant, _ = loaded
    rows, answers = await _rollup_rows(engine), await _reports(client, tenant.token)
    async with writing(engine) as conn:
        await conn.execute(delete(usage_rollups))

    process = await asyncio.create_subprocess_exec(
        CREDITLENS,
        *("rollups", "rebuild", "--json"),
        env={**os.environ, "CREDITLENS_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().strip() == f'{{"rows": {len(rows)}}}'
    assert await _rollup_rows(engine) == rows
    assert await _reports(client, tenant.token) == answers
    assert (await totals(engine)).rollups_match_events()


KEYS = """
query($range: TimeRangeInput!) {
  organization {
    apiKeys { nodes { name lastUsedAt } }
    usage(timeRange: $range) { lastEventAt }
  }
}
"""


async def test_last_used_and_last_event_follow_ingestion(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    range_ = {"preset": "LAST_7_DAYS"}

    async def state():
        response = await graphql(client, tenant.token, KEYS, {"range": range_})
        data = response.json()["data"]["organization"]
        keys = {key["name"]: key["lastUsedAt"] for key in data["apiKeys"]["nodes"]}
        return keys, data["usage"]["lastEventAt"]

    assert await state() == ({}, None)
    t1 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
    t2 = datetime(2026, 6, 12, 9, 30, tzinfo=UTC)
    await post_events(
        client,
        token,
        [
            event(tenant.slug, t1, api_key={"id": "a", "name": "Prod"}),
            event(tenant.slug, t2, api_key={"id": "a", "name": "Prod"}),
            event(tenant.slug, t1, api_key={"id": "b", "name": "Staging"}),
            event(tenant.slug, t2 + timedelta(hours=1), api_key=None),
        ],
    )
    assert await state() == (
        {"Prod": "2026-06-12T09:30:00+00:00", "Staging": "2026-06-10T08:00:00+00:00"},
        "2026-06-12T10:30:00+00:00",
    )

    # A late (older) event moves nothing back; a newer one moves its key and the org forward.
    t3 = datetime(2026, 6, 15, 11, 59, 30, tzinfo=UTC)
    await post_events(
        client,
        token,
        [
            event(tenant.slug, t1 - timedelta(days=3), api_key="a"),
            event(tenant.slug, t3, api_key="b"),
        ],
    )
    assert await state() == (
        {"Prod": "2026-06-12T09:30:00+00:00", "Staging": "2026-06-15T11:59:30+00:00"},
        "2026-06-15T11:59:30+00:00",
    )

    # A refused batch moves nothing, nor does a stored id sent again with a later time.
    before = await state()
    refused = event(tenant.slug, clock(), api_key="a", credits=-1)
    assert (await post_events(client, token, [refused])).status_code == 422
    replay = event(tenant.slug, clock(), api_key="a", id=event(tenant.slug, t1)["id"])
    first = {**replay, "timestamp": t1.isoformat()}
    assert (await post_events(client, token, [first])).json()["accepted"] == 1
    assert (await post_events(client, token, [replay])).json() == {"accepted": 0, "duplicates": 1}
    assert await state() == before


EDGE_REPORT = """
query($range: TimeRangeInput!) {
  organization { usage(timeRange: $range) { calls creditsConsumed } }
}
"""


async def test_an_event_just_before_a_quarter_hour_stays_in_it(client, engine, clock):
    """Events a microsecond to half a millisecond before a quarter hour, hour and day edge
    belong before it: in the pending tail, once folded and after a rebuild (SQLite's date
    functions round fractions to milliseconds, which had moved them past the edge)."""
    tenant = await make_tenant(engine, now=clock(), timezone="UTC")
    token = await make_ingest_token(engine, now=clock())
    edges = [
        datetime(2026, 5, 4, 10, 15, tzinfo=UTC),
        datetime(2026, 5, 4, 11, 0, tzinfo=UTC),
        datetime(2026, 5, 5, 0, 0, tzinfo=UTC),
    ]
    offsets = [1, 499, 500, 501, 999_999]  # microseconds before the edge
    events = [
        event(tenant.slug, edge - timedelta(microseconds=offset), credits=100)
        for edge in edges
        for offset in offsets
    ] + [event(tenant.slug, edge, credits=1) for edge in edges]
    assert (await post_events(client, token, events)).status_code == 200

    async def figures() -> list[tuple[int, int]]:
        answers = []
        for edge in edges:
            # Whole quarter hours on both sides, so only rollups (and the tail) answer.
            for low, high in (
                (edge - timedelta(minutes=15), edge),
                (edge, edge + timedelta(minutes=15)),
            ):
                span = {"start": low.isoformat(), "end": high.isoformat(), "timezone": "UTC"}
                body = (await graphql(client, tenant.token, EDGE_REPORT, {"range": span})).json()
                usage = body["data"]["organization"]["usage"]
                answers.append((usage["calls"], usage["creditsConsumed"]))
        return answers

    expected = [(len(offsets), 100 * len(offsets)), (1, 1)] * len(edges)
    assert await figures() == expected  # pending tail
    await fold_all(engine)
    assert await figures() == expected  # folded
    async with writing(engine) as conn:
        await rebuild(conn)
    assert await figures() == expected  # rebuilt
