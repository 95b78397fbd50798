"""Crossings are detected in the ingest transaction: one outbox row per alert and window,
never lost and never doubled, also under concurrent writers; backfills fire nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from app.settings import Settings
from db.ingestion import ingest
from db.tables import webhook_deliveries
from tests.alerts_receiver import alerts_of, create_alert
from tests.factories import event, make_ingest_token, make_tenant, post_events


@pytest.fixture
def settings(clean_database):
    # No dispatcher: the outbox keeps what the crossings wrote, for the test to read.
    return Settings(
        database_url=clean_database, webhook_allow_insecure=True, webhook_dispatcher=False
    )


async def outbox(engine):
    async with engine.connect() as conn:
        rows = await conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id))
        return [row._asdict() for row in rows]


async def send(client, token, slug, at, credits_list, **fields):
    events = [event(slug, at, credits=credits, **fields) for credits in credits_list]
    response = await post_events(client, token, events)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_batch_that_reaches_the_threshold_writes_one_message(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), slug="acme", timezone="Europe/Berlin")
    ingest_token = await make_ingest_token(engine, now=clock())
    alert, _ = await create_alert(client, tenant.token, thresholdCredits=100)
    now = clock()

    await send(client, ingest_token, "acme", now - timedelta(hours=1), [40, 40])
    assert await outbox(engine) == []
    await send(client, ingest_token, "acme", now - timedelta(minutes=5), [30])
    await send(client, ingest_token, "acme", now - timedelta(minutes=1), [500])

    [row] = await outbox(engine)
    assert row["event"] == "alert.triggered"
    assert row["status"] == "PENDING"
    assert row["next_attempt_at"] == now
    body = json.loads(row["payload"])
    assert body["type"] == "alert.triggered"
    assert body["id"] == row["public_id"]
    assert body["data"]["alert"] == {"id": alert["id"], "name": "Budget", "window": "DAY"}
    assert body["data"]["creditsConsumed"] == 110  # the total when it crossed
    assert body["data"]["threshold"] == {"credits": 100, "percentOfAllowance": None}
    # The Berlin day of 2026-06-15 (UTC+2).
    assert body["data"]["window"] == {
        "start": "2026-06-14T22:00:00Z",
        "end": "2026-06-15T22:00:00Z",
        "timezone": "Europe/Berlin",
    }
    [listed] = await alerts_of(client, tenant.token)
    assert listed["state"] == "TRIGGERED"
    assert listed["lastTriggeredAt"] is not None
    assert [d["id"] for d in listed["deliveries"]] == [row["public_id"]]


async def test_one_batch_can_cross_several_alerts_at_once(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), slug="acme", allowance=1000)
    ingest_token = await make_ingest_token(engine, now=clock())
    await create_alert(client, tenant.token, name="org", thresholdCredits=10)
    # A key alert needs the key to exist: the first batch registers it.
    await send(client, ingest_token, "acme", clock() - timedelta(days=40), [0], api_key="key-a")
    await create_alert(client, tenant.token, name="key", keyId="key-a", thresholdCredits=5)
    await create_alert(
        client, tenant.token, name="percent", window="MONTH", thresholdPercentOfAllowance=1.0
    )
    await create_alert(
        client, tenant.token, name="other key", keyId="key-a", window="WEEK", thresholdCredits=1_000
    )

    await send(
        client, ingest_token, "acme", clock() - timedelta(minutes=3), [6, 6], api_key="key-a"
    )

    rows = await outbox(engine)
    names = sorted(json.loads(row["payload"])["data"]["alert"]["name"] for row in rows)
    assert names == ["key", "org", "percent"]


async def test_a_key_alert_counts_only_its_key(client, engine, clock):
    # Another organization's traffic on a key of the same name counts for nothing here.
    await make_tenant(engine, now=clock(), slug="other")
    tenant = await make_tenant(engine, now=clock(), slug="solo")
    ingest_token = await make_ingest_token(engine, now=clock())
    await send(client, ingest_token, "solo", clock() - timedelta(days=40), [0], api_key="key-a")
    await create_alert(client, tenant.token, keyId="key-a", thresholdCredits=50)

    await send(
        client, ingest_token, "other", clock() - timedelta(minutes=3), [100], api_key="key-a"
    )
    await send(client, ingest_token, "solo", clock() - timedelta(minutes=3), [100], api_key="key-b")
    assert await outbox(engine) == []
    await send(client, ingest_token, "solo", clock() - timedelta(minutes=2), [49], api_key="key-a")
    assert await outbox(engine) == []
    await send(client, ingest_token, "solo", clock() - timedelta(minutes=1), [1], api_key="key-a")
    [row] = await outbox(engine)
    data = json.loads(row["payload"])["data"]
    assert data["apiKey"] == {"id": "key-a", "name": "key-a"}
    assert data["creditsConsumed"] == 50


async def test_backfilled_events_of_a_closed_window_fire_nothing(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), slug="acme")
    ingest_token = await make_ingest_token(engine, now=clock())
    await create_alert(client, tenant.token, name="day", window="DAY", thresholdCredits=100)
    yesterday = clock() - timedelta(days=1)

    # Far over the threshold, but for yesterday: that window is closed.
    await send(client, ingest_token, "acme", yesterday, [5_000])
    assert await outbox(engine) == []
    # Today's window judges today's credits only.
    await send(client, ingest_token, "acme", clock() - timedelta(minutes=1), [99])
    assert await outbox(engine) == []
    await send(client, ingest_token, "acme", clock() - timedelta(minutes=1), [1])
    assert len(await outbox(engine)) == 1


async def test_a_month_alert_counts_earlier_days_of_the_month(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), slug="acme")
    ingest_token = await make_ingest_token(engine, now=clock())
    await create_alert(client, tenant.token, window="MONTH", thresholdCredits=100)
    # Late events of earlier days of the current month belong to the open window.
    await send(client, ingest_token, "acme", clock() - timedelta(days=10), [100])
    [row] = await outbox(engine)
    assert json.loads(row["payload"])["data"]["window"]["start"] == "2026-06-01T00:00:00Z"


async def test_each_window_fires_once_and_the_next_window_fires_again(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), slug="acme")
    ingest_token = await make_ingest_token(engine, now=clock())
    await create_alert(client, tenant.token, thresholdCredits=10)
    for minutes in (30, 20, 10):
        await send(client, ingest_token, "acme", clock() - timedelta(minutes=minutes), [25])
    assert len(await outbox(engine)) == 1

    clock.now += timedelta(days=1)
    await send(client, ingest_token, "acme", clock() - timedelta(minutes=5), [25])
    await send(client, ingest_token, "acme", clock() - timedelta(minutes=4), [25])
    rows = await outbox(engine)
    starts = [json.loads(row["payload"])["data"]["window"]["start"] for row in rows]
    assert starts == ["2026-06-15T00:00:00Z", "2026-06-16T00:00:00Z"]


async def test_an_alert_created_past_its_threshold_fires_on_the_next_batch(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), slug="acme")
    ingest_token = await make_ingest_token(engine, now=clock())
    await send(client, ingest_token, "acme", clock() - timedelta(hours=2), [500])
    await create_alert(client, tenant.token, thresholdCredits=100)
    assert await outbox(engine) == []
    await send(client, ingest_token, "acme", clock() - timedelta(minutes=1), [0])
    [row] = await outbox(engine)
    assert json.loads(row["payload"])["data"]["creditsConsumed"] == 500


async def test_disabled_alerts_and_duplicates_fire_nothing(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), slug="acme")
    ingest_token = await make_ingest_token(engine, now=clock())
    alert, _ = await create_alert(client, tenant.token, thresholdCredits=10)
    from tests.factories import graphql

    paused = await graphql(
        client,
        tenant.token,
        "mutation($id: ID!) { updateAlert(id: $id, input: {enabled: false}) { enabled } }",
        {"id": alert["id"]},
    )
    assert paused.json()["data"]["updateAlert"]["enabled"] is False
    batch = [event("acme", clock() - timedelta(minutes=1), credits=50)]
    await post_events(client, ingest_token, batch)
    assert await outbox(engine) == []

    await graphql(
        client,
        tenant.token,
        "mutation($id: ID!) { updateAlert(id: $id, input: {enabled: true}) { enabled } }",
        {"id": alert["id"]},
    )
    # The same events again are duplicates: nothing new was consumed, nothing is judged.
    assert (await post_events(client, ingest_token, batch)).json()["duplicates"] == 1
    assert await outbox(engine) == []


WRITERS = 8


@pytest.mark.parametrize("round_", range(3), ids=lambda n: f"round-{n}")
async def test_concurrent_writers_cross_once_and_never_lose_the_crossing(
    client, engine, clock, round_
):
    """Each writer alone stays below the thresholds; together they pass them. Exactly one
    message per alert, whatever the interleaving.

    The writers share no row but the alert's: each writes its own key's events on its own
    day of the month (own rollup rows, own key row), and the organization's
    ``last_event_at`` is already newer than all of them (no update there). On PostgreSQL
    they really run at once, so a total read without the alert lock would miss the others'
    uncommitted credits and lose the crossing.
    """
    clock.now = datetime(2026, 6, 19, 12, tzinfo=UTC)  # a Friday: 5 writers in its week
    tenant = await make_tenant(engine, now=clock(), slug="acme")
    ingest_token = await make_ingest_token(engine, now=clock())
    # Register the keys, and move last_event_at to now.
    for number in range(WRITERS):
        await send(
            client, ingest_token, "acme", clock() - timedelta(days=40), [0], api_key=f"key-{number}"
        )
    await send(client, ingest_token, "acme", clock(), [0], api_key="key-0")
    await create_alert(client, tenant.token, window="MONTH", thresholdCredits=WRITERS * 10 - 5)
    await create_alert(client, tenant.token, name="week", window="WEEK", thresholdCredits=25)

    async def writer(number: int) -> None:
        raws = [
            event(
                "acme",
                clock() - timedelta(days=number, hours=1),
                credits=5,
                api_key=f"key-{number}",
            )
            for _ in range(2)
        ]
        await ingest(engine, raws, now=clock())

    await asyncio.gather(*(writer(number) for number in range(WRITERS)))
    rows = await outbox(engine)
    names = sorted(json.loads(row["payload"])["data"]["alert"]["name"] for row in rows)
    assert names == ["Budget", "week"]


async def test_an_organization_without_alerts_pays_one_statement(client, engine, clock):
    await make_tenant(engine, now=clock(), slug="acme")
    ingest_token = await make_ingest_token(engine, now=clock())
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        await send(client, ingest_token, "acme", clock() - timedelta(minutes=1), [1, 2, 3])
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)
    touching = [s for s in statements if "alerts" in s or "webhook_deliveries" in s]
    assert len(touching) == 1
    assert "FROM alerts" in touching[0]


async def test_the_alert_lookup_uses_the_organization_index(engine, clock, is_postgres):
    """The lookup the hot path adds is an index search, not a scan of every alert."""
    from sqlalchemy import text

    await make_tenant(engine, now=clock(), slug="acme")
    async with engine.connect() as conn:
        if is_postgres:
            await conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(
                row[0]
                for row in await conn.execute(
                    text(
                        "EXPLAIN SELECT id FROM alerts WHERE organization_id IN (1, 2) AND enabled"
                    )
                )
            )
        else:
            plan = "\n".join(
                str(row[-1])
                for row in await conn.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT id FROM alerts "
                        "WHERE organization_id IN (1, 2) AND enabled"
                    )
                )
            )
    assert "ix_alerts_organization_id" in plan
