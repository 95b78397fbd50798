"""Deliveries survive a kill -9 of the server, through the outbox.

Real ``creditlens serve`` processes on the session's database (SQLite file or PostgreSQL)
and a real receiver on 127.0.0.1:

* killed after the crossing is committed and before any attempt: a restarted server
  delivers the message, once;
* killed while an attempt is in flight (the receiver holds the request): the message is
  claimed again when its lease ends and delivered with the same ``webhook-id``; the receiver
  saw that id twice, which is what the id is for (at least once, deduplicated by id).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.settings import Settings
from app.webhooks.secret_box import SecretBox
from db.tables import webhook_deliveries
from tests.alerts_receiver import CREATE_ALERT, Receiver
from tests.factories import event, make_ingest_token, make_tenant
from tests.live_server import live_server

ROOT = Path(__file__).resolve().parent.parent
CREDITLENS = Path(sys.executable).parent / "creditlens"


@pytest.fixture
def settings(clean_database):
    # The test process itself delivers nothing: only the servers it starts do.
    return Settings(database_url=clean_database, webhook_dispatcher=False)


@contextmanager
def serve(database_url: str, **settings: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``creditlens serve`` on a free port of 127.0.0.1, with CREDITLENS_* ``settings``."""
    with live_server(
        database_url, log_level="WARNING", webhook_allow_insecure="true", **settings
    ) as running:
        yield running.process, running.url


def kill_9(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL


async def outbox(engine) -> list[dict]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id))
        return [row._asdict() for row in rows]


async def cross_through(base: str, engine, receiver: Receiver) -> str:
    """Over real HTTP: create a MONTH alert for the receiver and send the crossing batch."""
    now = datetime.now(UTC)
    tenant = await make_tenant(engine, now=now, slug="acme")
    ingest = await make_ingest_token(engine, now=now)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        created = await http.post(
            "/graphql",
            json={
                "query": CREATE_ALERT,
                "variables": {
                    "input": {
                        "name": "Monthly",
                        "window": "MONTH",
                        "thresholdCredits": 100,
                        "webhookUrl": receiver.url,
                    }
                },
            },
            headers={"Authorization": f"Bearer {tenant.token}"},
        )
        receiver.secrets.add(created.json()["data"]["createAlert"]["signingSecret"])
        sent = await http.post(
            "/v1/events",
            json=[event("acme", now - timedelta(minutes=1), credits=250)],
            headers={"Authorization": f"Bearer {ingest}"},
        )
    assert sent.status_code == 200, sent.text
    return tenant.token


async def settled(engine, within: float = 30.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        rows = await outbox(engine)
        if rows and rows[0]["status"] != "PENDING":
            return rows[0]
        assert time.monotonic() < deadline, f"never delivered: {rows}"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_a_crossing_committed_before_a_kill_is_delivered_once_after_restart(
    database_url, engine
):
    async with Receiver() as receiver:
        # Polls once at start, then not for a minute: the crossing stays in the outbox.
        with serve(database_url, webhook_poll_seconds="60") as (first, base):
            await cross_through(base, engine, receiver)
            [pending] = await outbox(engine)
            assert (pending["status"], pending["attempts"]) == ("PENDING", 0)
            kill_9(first)
        assert receiver.received == []

        with serve(database_url, webhook_poll_seconds="0.1"):
            [request] = await receiver.wait_for(1)
            row = await settled(engine)
            # Time for a duplicate to show, if there were one.
            await asyncio.sleep(1.0)
    assert receiver.ids == {pending["public_id"]: 1}
    assert request.verified
    assert request.body == pending["payload"].encode()
    assert (row["status"], row["attempts"], row["response_status"]) == ("SUCCEEDED", 1, 200)


@pytest.mark.slow
async def test_an_attempt_in_flight_at_a_kill_is_sent_again_with_the_same_id(database_url, engine):
    async with Receiver(delay=30) as receiver:
        settings = {
            "webhook_poll_seconds": "0.1",
            "webhook_timeout_seconds": "2",
            "webhook_lease_seconds": "3",
        }
        with serve(database_url, **settings) as (first, base):
            await cross_through(base, engine, receiver)
            [held] = await receiver.wait_for(1)
            kill_9(first)
        receiver.delay = 0
        with serve(database_url, **settings):
            requests = await receiver.wait_for(2)
            row = await settled(engine)
    assert [r.id for r in requests] == [held.id, held.id]
    assert requests[0].body == requests[1].body
    assert all(r.verified for r in requests)
    assert (row["status"], row["attempts"], row["response_status"]) == ("SUCCEEDED", 2, 200)


async def queue_test_message(engine, receiver: Receiver) -> str:
    """An alert of a new organization, and one test message for it in the outbox."""
    from db.queries.alerts import NewMessage, enqueue_test_message, find_alert
    from db.queries.alerts import create_alert as insert_alert
    from db.queries.directory import find_organization
    from domain.alerts import AlertWindow, Threshold

    now = datetime.now(UTC)
    box = SecretBox(Settings().webhook_secret_key.get_secret_value())
    tenant = await make_tenant(engine, now=now)
    async with engine.begin() as conn:
        alert_id = await insert_alert(
            conn,
            organization_id=tenant.organization_id,
            name="cli",
            api_key_id=None,
            window=AlertWindow.DAY,
            threshold=Threshold(5, None),
            webhook_url=receiver.url,
            sealed_secret=box.seal("whsec_c2VjcmV0"),
            now=now,
        )
        organization = await find_organization(conn, ref=str(tenant.organization_id))
        alert = await find_alert(conn, organization_id=tenant.organization_id, alert_id=alert_id)
        delivery = await enqueue_test_message(
            conn, new=NewMessage(alert, organization, "alert.test", (now, now), 0, None), now=now
        )
    receiver.secrets.add("whsec_c2VjcmV0")
    return delivery.public_id


def cli_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "CREDITLENS_DATABASE_URL": database_url,
        "CREDITLENS_WEBHOOK_ALLOW_INSECURE": "true",
        "CREDITLENS_WEBHOOK_POLL_SECONDS": "0.1",
    }


@pytest.mark.slow
async def test_webhooks_run_once_delivers_what_is_due(database_url, engine):
    async with Receiver() as receiver:
        public_id = await queue_test_message(engine, receiver)
        process = await asyncio.create_subprocess_exec(
            str(CREDITLENS),
            "webhooks",
            "run",
            "--once",
            cwd=ROOT,
            env=cli_env(database_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "1 webhook attempt(s) made"
    assert receiver.ids == {public_id: 1}
    assert receiver.received[0].verified


@pytest.mark.slow
async def test_webhooks_run_delivers_until_sigterm(database_url, engine):
    async with Receiver() as receiver:
        process = await asyncio.create_subprocess_exec(
            str(CREDITLENS),
            "webhooks",
            "run",
            cwd=ROOT,
            env=cli_env(database_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            public_id = await queue_test_message(engine, receiver)
            await receiver.wait_for(1, within=60)
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert receiver.ids == {public_id: 1}
