"""The dispatcher, against a real receiver on 127.0.0.1: signed Standard Webhooks, retries
with the same id, the timeout, giving up, no redirects, the guard at delivery time, and
several dispatchers sharing one outbox. Timings come from settings shrunk for tests; bounds
on waiting are generous and nothing asserts a speed."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.settings import Settings
from app.webhooks.dispatcher import Dispatcher
from db.engine import create_engine
from db.tables import alerts, webhook_deliveries
from tests.alerts_receiver import MovingClock, Receiver, alerts_of, create_alert
from tests.conftest import DEFAULT_NOW
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events

FAST = {
    "webhook_allow_insecure": True,
    "webhook_poll_seconds": 0.05,
    "webhook_retry_base_seconds": 0.1,
    "webhook_timeout_seconds": 2.0,
    "webhook_lease_seconds": 5.0,
}
TEST = "mutation($id: ID!) { sendTestWebhook(alertId: $id) { id } }"


@pytest.fixture
def clock():
    return MovingClock(DEFAULT_NOW)


@pytest.fixture
def settings(clean_database):
    return Settings(database_url=clean_database, **FAST)


async def wait_until(predicate, *, within: float = 20.0):
    """Poll an async predicate until it is true (a generous bound, not a timing claim)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await predicate()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.05)


async def deliveries(engine):
    async with engine.connect() as conn:
        rows = await conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id))
        return [row._asdict() for row in rows]


async def settled(engine, count: int = 1):
    async def check():
        rows = await deliveries(engine)
        done = [row for row in rows if row["status"] != "PENDING"]
        return rows if len(rows) >= count and len(done) == len(rows) else None

    return await check() or await wait_until(check)


async def cross(client, engine, clock, receiver, **alert_fields):
    """An organization whose alert crosses with one batch; returns (tenant, alert, secret)."""
    tenant = await make_tenant(engine, now=clock(), slug="acme")
    alert, secret = await create_alert(
        client, tenant.token, thresholdCredits=100, webhookUrl=receiver.url, **alert_fields
    )
    receiver.secrets.add(secret)
    ingest = await make_ingest_token(engine, now=clock())
    response = await post_events(
        client, ingest, [event("acme", clock() - timedelta(minutes=1), credits=150)]
    )
    assert response.status_code == 200
    return tenant, alert, secret


async def test_a_crossing_is_delivered_once_signed_and_recorded(client, engine, clock):
    async with Receiver() as receiver:
        tenant, alert, _ = await cross(client, engine, clock, receiver)
        [request] = await receiver.wait_for(1)
        [row] = await settled(engine)
    assert request.verified
    assert request.id == row["public_id"]
    assert request.body == row["payload"].encode()
    assert request.headers["content-type"] == "application/json"
    assert int(request.timestamp) == pytest.approx(clock().timestamp(), abs=60)
    body = request.json
    assert body["type"] == "alert.triggered"
    assert body["data"]["creditsConsumed"] == 150
    assert body["data"]["alert"]["id"] == alert["id"]
    [listed] = await alerts_of(client, tenant.token)
    assert listed["state"] == "TRIGGERED"
    [delivery] = listed["deliveries"]
    assert delivery == {
        "id": request.id,
        "event": "alert.triggered",
        "status": "SUCCEEDED",
        "attempts": 1,
        "responseStatus": 200,
        "lastError": None,
        "nextAttemptAt": None,
    }
    assert receiver.ids == {request.id: 1}


async def test_a_failing_receiver_gets_the_same_message_again_until_it_succeeds(
    client, engine, clock
):
    async with Receiver(fail_first=2) as receiver:
        await cross(client, engine, clock, receiver)
        requests = await receiver.wait_for(3)
        [row] = await settled(engine)
    assert [r.id for r in requests] == [row["public_id"]] * 3
    assert {r.body for r in requests} == {row["payload"].encode()}
    assert all(r.verified for r in requests)
    assert (row["status"], row["attempts"], row["response_status"]) == ("SUCCEEDED", 3, 200)
    assert row["last_error"] is None
    # Backoff: each retry waited longer than the one before (base 0.1 s, jitter 50-100 %).
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert gaps[0] >= 0.05
    assert gaps[1] >= 0.1


async def test_a_receiver_slower_than_the_timeout_is_retried(clean_database, clock):
    settings = Settings(database_url=clean_database, **{**FAST, "webhook_timeout_seconds": 0.3})
    from app.main import create_app

    app = create_app(settings, clock=clock)
    import httpx

    async with Receiver(delay=1.5) as receiver, app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            engine = app.state.engine
            await cross(client, engine, clock, receiver)

            async def timed_out():
                rows = await deliveries(engine)
                return rows and rows[0]["last_error"] and rows

            [row] = await wait_until(timed_out)
            assert row["last_error"] == "no response within 0.3 s"
            assert row["status"] == "PENDING"
            assert row["response_status"] is None
            receiver.delay = 0
            [row] = await settled(engine)
    assert row["status"] == "SUCCEEDED"
    assert row["attempts"] >= 2
    assert set(receiver.ids) == {row["public_id"]}


async def test_a_message_is_given_up_after_the_retry_period(clean_database, clock):
    settings = Settings(
        database_url=clean_database, **{**FAST, "webhook_retry_period_seconds": 0.5}
    )
    from app.main import create_app

    app = create_app(settings, clock=clock)
    import httpx

    async with Receiver(status=503) as receiver, app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await cross(client, app.state.engine, clock, receiver)
            [row] = await settled(app.state.engine)
    assert row["status"] == "FAILED"
    assert row["response_status"] == 503
    assert row["next_attempt_at"] is None
    assert row["last_error"] == "the receiver answered HTTP 503"
    assert row["attempts"] == len(receiver.received) >= 2
    # The last attempt began after the retry period: retries lasted at least that long.
    assert row["last_attempt_at"] - row["created_at"] >= timedelta(seconds=0.5)


async def test_redirects_are_not_followed(client, engine, clock):
    async with Receiver() as target, Receiver(status=307) as redirecting:
        # A 307 is never followed, wherever it points: the attempt failed.
        await cross(client, engine, clock, redirecting)
        await redirecting.wait_for(2)
    assert target.received == []
    rows = await deliveries(engine)
    assert rows[0]["response_status"] == 307
    assert rows[0]["last_error"] == "the receiver answered HTTP 307"


async def test_a_garbled_answer_is_a_failed_attempt_recorded_without_control_characters(
    client, engine, clock
):
    async with Receiver(raw=b"HTTP/1.1 200 OK\r\nbad\x1b[31m header\n\r\n\r\n") as receiver:
        await cross(client, engine, clock, receiver)
        await receiver.wait_for(2)
    row = (await deliveries(engine))[0]
    assert row["status"] == "PENDING"
    assert row["response_status"] is None
    assert row["last_error"].startswith("RemoteProtocolError")
    assert all(ch.isprintable() for ch in row["last_error"])


async def test_a_test_webhook_is_delivered_signed(client, engine, clock):
    async with Receiver() as receiver:
        tenant = await make_tenant(engine, now=clock())
        alert, secret = await create_alert(
            client, tenant.token, thresholdCredits=5, webhookUrl=receiver.url
        )
        receiver.secrets.add(secret)
        await graphql(client, tenant.token, TEST, {"id": alert["id"]})
        [request] = await receiver.wait_for(1)
    assert request.verified
    assert request.json["type"] == "alert.test"


async def test_the_guard_runs_again_at_delivery_time(clean_database, clock):
    """DNS rebinding: a name that was public when the alert was saved resolves to a private
    address now. The attempt is refused before any connection, and retried later."""
    settings = Settings(database_url=clean_database, webhook_dispatcher=False)
    engine = create_engine(clean_database)
    try:
        tenant = await make_tenant(engine, now=clock())
        async with engine.begin() as conn:
            from db.queries.alerts import create_alert as insert_alert
            from db.queries.alerts import find_alert
            from domain.alerts import AlertWindow, Threshold

            alert_id = await insert_alert(
                conn,
                organization_id=tenant.organization_id,
                name="rebound",
                api_key_id=None,
                window=AlertWindow.DAY,
                threshold=Threshold(5, None),
                webhook_url="https://hooks.customer.test/in",
                sealed_secret=Dispatcher(engine, settings).box.seal("whsec_c2VjcmV0"),
                now=clock(),
            )
            from db.queries.alerts import NewMessage, enqueue_test_message
            from db.queries.directory import find_organization

            organization = await find_organization(conn, ref=str(tenant.organization_id))
            alert = await find_alert(
                conn, organization_id=tenant.organization_id, alert_id=alert_id
            )
            await enqueue_test_message(
                conn,
                new=NewMessage(alert, organization, "alert.test", (clock(), clock()), 0, None),
                now=clock(),
            )

        async def rebound(host: str, port: int) -> list[str]:
            assert host == "hooks.customer.test"
            return ["8.8.8.8", "127.0.0.1"]

        dispatcher = Dispatcher(engine, settings, clock=clock, resolver=rebound)
        assert await dispatcher.run_once() == 1
        [row] = await deliveries(engine)
    finally:
        await engine.dispose()
    assert row["status"] == "PENDING"
    assert row["attempts"] == 1
    assert row["response_status"] is None
    assert "127.0.0.1, a loopback address" in row["last_error"]


async def test_an_unreadable_secret_fails_the_attempt_not_the_dispatcher(client, engine, clock):
    async with Receiver() as receiver:
        tenant = await make_tenant(engine, now=clock())
        alert, _ = await create_alert(
            client, tenant.token, thresholdCredits=5, webhookUrl=receiver.url
        )
        async with engine.begin() as conn:
            await conn.execute(update(alerts).values(signing_secret="not-a-fernet-token"))
        await graphql(client, tenant.token, TEST, {"id": alert["id"]})

        async def failed():
            rows = await deliveries(engine)
            return rows and rows[0]["last_error"] and rows

        [row] = await wait_until(failed)
        assert "cannot be decrypted" in row["last_error"]
        # The dispatcher lives on: a good message after it is delivered.
        second, secret = await create_alert(
            client, tenant.token, name="ok", thresholdCredits=5, webhookUrl=receiver.url
        )
        receiver.secrets.add(secret)
        await graphql(client, tenant.token, TEST, {"id": second["id"]})
        [request] = await receiver.wait_for(1)
    assert request.verified
    assert receiver.received[0].json["data"]["alert"]["name"] == "ok"


MESSAGES = 120
DISPATCHERS = 4


async def test_several_dispatchers_share_the_outbox_and_send_each_message_once(
    clean_database, clock
):
    """Four dispatchers (as four workers would) on one outbox: every message reaches the
    receiver exactly once. On PostgreSQL they claim at the same time (SKIP LOCKED)."""
    settings = Settings(
        database_url=clean_database, **{**FAST, "webhook_concurrency": 8, "pool_size": 4}
    )
    engine = create_engine(clean_database, pool_size=8)
    try:
        async with Receiver() as receiver:
            tenant = await make_tenant(engine, now=clock())
            async with engine.begin() as conn:
                from db.queries.alerts import NewMessage, enqueue_test_message, find_alert
                from db.queries.alerts import create_alert as insert_alert
                from db.queries.directory import find_organization
                from domain.alerts import AlertWindow, Threshold

                box = Dispatcher(engine, settings).box
                alert_id = await insert_alert(
                    conn,
                    organization_id=tenant.organization_id,
                    name="many",
                    api_key_id=None,
                    window=AlertWindow.DAY,
                    threshold=Threshold(5, None),
                    webhook_url=receiver.url,
                    sealed_secret=box.seal("whsec_c2VjcmV0"),
                    now=clock(),
                )
                organization = await find_organization(conn, ref=str(tenant.organization_id))
                alert = await find_alert(
                    conn, organization_id=tenant.organization_id, alert_id=alert_id
                )
                for _ in range(MESSAGES):
                    await enqueue_test_message(
                        conn,
                        new=NewMessage(alert, organization, "alert.test", (clock(),) * 2, 0, None),
                        now=clock(),
                    )
            receiver.secrets.add("whsec_c2VjcmV0")
            stop = asyncio.Event()
            runs = [
                asyncio.create_task(Dispatcher(engine, settings, clock=clock).run(stop))
                for _ in range(DISPATCHERS)
            ]
            await receiver.wait_for(MESSAGES, within=60)
            await settled(engine, MESSAGES)
            stop.set()
            await asyncio.gather(*runs)
    finally:
        await engine.dispose()
    assert len(receiver.ids) == MESSAGES
    assert set(receiver.ids.values()) == {1}
    assert all(request.verified for request in receiver.received)
    engine = create_engine(clean_database)
    try:
        async with engine.connect() as conn:
            statuses = await conn.execute(
                select(webhook_deliveries.c.status, func.count()).group_by(
                    webhook_deliveries.c.status
                )
            )
            assert dict(statuses.all()) == {"SUCCEEDED": MESSAGES}
    finally:
        await engine.dispose()


async def test_the_dispatcher_outlives_a_database_that_is_not_ready(tmp_path, clock, caplog):
    """Polls against a database without the tables fail, are logged once, and the loop goes
    on: once the database is migrated, a queued message is delivered."""
    from sqlalchemy import text

    from db import migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'late.db'}"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT 1"))  # the file exists, the tables do not
        settings = Settings(database_url=url, **FAST)
        stop = asyncio.Event()
        running = asyncio.create_task(Dispatcher(engine, settings, clock=clock).run(stop))
        await asyncio.sleep(0.5)  # about ten failed polls
        assert not running.done()
        failures = [r for r in caplog.records if "the database failed" in r.getMessage()]
        assert len(failures) == 1
        await asyncio.to_thread(migrate.upgrade, url)
        async with Receiver() as receiver:
            tenant = await make_tenant(engine, now=clock())
            async with engine.begin() as conn:
                from db.queries.alerts import NewMessage, enqueue_test_message, find_alert
                from db.queries.alerts import create_alert as insert_alert
                from db.queries.directory import find_organization
                from domain.alerts import AlertWindow, Threshold

                alert_id = await insert_alert(
                    conn,
                    organization_id=tenant.organization_id,
                    name="late",
                    api_key_id=None,
                    window=AlertWindow.DAY,
                    threshold=Threshold(5, None),
                    webhook_url=receiver.url,
                    sealed_secret=Dispatcher(engine, settings).box.seal("whsec_c2VjcmV0"),
                    now=clock(),
                )
                organization = await find_organization(conn, ref=str(tenant.organization_id))
                alert = await find_alert(
                    conn, organization_id=tenant.organization_id, alert_id=alert_id
                )
                await enqueue_test_message(
                    conn,
                    new=NewMessage(alert, organization, "alert.test", (clock(),) * 2, 0, None),
                    now=clock(),
                )
            await receiver.wait_for(1)
            stop.set()
            await running
        assert any("answers again" in r.getMessage() for r in caplog.records)
    finally:
        await engine.dispose()
