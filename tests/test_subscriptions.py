"""``Subscription.usageUpdates`` over graphql-transport-ws on a real server (issue 16):
authentication in connection_init, the same permissions as over HTTP, no tick from
another organization, and a tick after each ingest."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.factories import event, make_ingest_token, make_tenant
from tests.live_server import ROOT, live_server

SUBSCRIBE = "subscription($key: ID) { usageUpdates(keyId: $key) { at cycleConsumed todayCalls todayCredits lastEventAt } }"  # noqa: E501
WAIT = 10  # seconds: generous bound for anything the server pushes


def _now():
    """The server runs on the real clock."""
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    with live_server(
        database_url,
        tmp_path_factory.mktemp("ws") / "server.log",
        # No Redis: one worker fans out in process (tests/test_workers.py: through Redis).
        # Short, so the tests that wait for these closes take about a second each.
        ws_init_timeout_seconds=1,
        ws_idle_timeout_seconds=1.5,
        ws_max_subscriptions_per_token=2,
    ) as running:
        yield running


def ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


async def receive(socket, wait=WAIT):
    return json.loads(await asyncio.wait_for(socket.recv(), wait))


async def open_socket(server, token):
    socket = await connect(ws_url(server), subprotocols=["graphql-transport-ws"])
    await socket.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    return socket


async def subscribe(socket, operation_id="1", key=None):
    payload = {"query": SUBSCRIBE, "variables": {"key": key}}
    await socket.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))


async def ingest(server, token, events):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post(
            "/v1/events", json=events, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200, response.text


async def close_code(socket):
    """The code the server closed with (after at most a few messages)."""
    for _ in range(5):
        try:
            await asyncio.wait_for(socket.recv(), WAIT)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    raise AssertionError("the server did not close the socket")


async def test_an_admin_gets_a_tick_now_and_after_each_ingest(server, engine):
    tenant = await make_tenant(engine, now=_now())
    other = await make_tenant(engine, now=_now())
    ingest_token = await make_ingest_token(engine, now=_now())
    socket = await open_socket(server, tenant.token)
    try:
        assert (await receive(socket))["type"] == "connection_ack"
        await subscribe(socket)
        first = await receive(socket)
        assert first["type"] == "next", first
        assert first["payload"]["data"]["usageUpdates"]["todayCalls"] == 0
        await ingest(server, ingest_token, [event(other.slug, _now(), credits=9)])
        # Another organization's ingest: no tick (a wrong one would come within the 1 s
        # between ticks plus the ~20 ms a tick takes, bench/ticks.py).
        with pytest.raises(TimeoutError):
            await receive(socket, wait=1.5)
        await ingest(server, ingest_token, [event(tenant.slug, _now(), credits=7)] * 1)
        tick = (await receive(socket))["payload"]["data"]["usageUpdates"]
        assert tick["todayCalls"] == 1
        assert tick["todayCredits"] == 7
        assert tick["cycleConsumed"] == 7
        assert tick["lastEventAt"] is not None
    finally:
        await socket.close()


async def test_a_member_and_a_free_plan_get_the_http_error_codes(server, engine):
    member = await make_tenant(engine, now=_now(), role="MEMBER")
    free = await make_tenant(engine, now=_now(), plan="FREE")
    for tenant, code in ((member, "FORBIDDEN"), (free, "PLAN_REQUIRED")):
        socket = await open_socket(server, tenant.token)
        try:
            assert (await receive(socket))["type"] == "connection_ack"
            await subscribe(socket)
            answer = await receive(socket)
            assert answer["type"] == "error", answer
            assert answer["payload"][0]["extensions"]["code"] == code
        finally:
            await socket.close()


async def test_a_key_of_another_organization_is_not_found(server, engine):
    tenant = await make_tenant(engine, now=_now())
    other = await make_tenant(engine, now=_now())
    ingest_token = await make_ingest_token(engine, now=_now())
    await ingest(server, ingest_token, [event(other.slug, _now(), api_key="theirs")])
    socket = await open_socket(server, tenant.token)
    try:
        await receive(socket)
        await subscribe(socket, key="theirs")
        answer = await receive(socket)
        assert answer["type"] == "error", answer
        assert answer["payload"][0]["extensions"]["code"] == "NOT_FOUND"
    finally:
        await socket.close()


@pytest.mark.parametrize(
    "token", ["", "cl_not_a_token", None], ids=["empty", "invalid", "no-payload"]
)
async def test_a_bad_token_closes_the_socket_with_4403(server, token):
    socket = await connect(ws_url(server), subprotocols=["graphql-transport-ws"])
    payload = {} if token is None else {"Authorization": f"Bearer {token}"}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert await close_code(socket) == 4403


async def test_an_ingest_token_cannot_subscribe(server, engine):
    socket = await open_socket(server, await make_ingest_token(engine, now=_now()))
    assert await close_code(socket) == 4403


async def test_subscribe_before_init_closes_with_4401(server):
    socket = await connect(ws_url(server), subprotocols=["graphql-transport-ws"])
    await subscribe(socket)
    assert await close_code(socket) == 4401


async def test_no_init_in_time_closes_with_4408(server):
    socket = await connect(ws_url(server), subprotocols=["graphql-transport-ws"])
    assert await close_code(socket) == 4408


async def test_a_second_init_closes_with_4429(server, engine):
    tenant = await make_tenant(engine, now=_now())
    socket = await open_socket(server, tenant.token)
    await receive(socket)
    await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert await close_code(socket) == 4429


async def test_subscriptions_per_token_are_limited(server, engine):
    tenant = await make_tenant(engine, now=_now())
    socket = await open_socket(server, tenant.token)
    try:
        await receive(socket)
        for operation_id in ("a", "b"):
            await subscribe(socket, operation_id)
            assert (await receive(socket))["type"] == "next"
        await subscribe(socket, "c")
        answer = await receive(socket)
        assert (answer["id"], answer["type"]) == ("c", "error")
        assert answer["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        # Completing one frees its place.
        await socket.send(json.dumps({"id": "a", "type": "complete"}))
        await asyncio.sleep(0.5)
        await subscribe(socket, "d")
        assert (await receive(socket))["type"] == "next"
    finally:
        await socket.close()


async def test_ping_gets_pong_and_garbage_closes_with_4400(server, engine):
    tenant = await make_tenant(engine, now=_now())
    socket = await open_socket(server, tenant.token)
    await receive(socket)
    await socket.send(json.dumps({"type": "ping"}))
    assert (await receive(socket))["type"] == "pong"
    await socket.send("not json")
    assert await close_code(socket) == 4400


async def test_a_connection_without_subscription_is_closed_when_idle(server, engine):
    tenant = await make_tenant(engine, now=_now())
    socket = await open_socket(server, tenant.token)
    assert (await receive(socket))["type"] == "connection_ack"
    assert await close_code(socket) == 1000


async def test_another_subprotocol_is_refused_with_4406(server):
    socket = await connect(ws_url(server), subprotocols=["graphql-ws"])
    assert await close_code(socket) == 4406


async def test_a_file_ingested_by_the_cli_ticks_a_subscription_through_redis(
    database_url, redis_url, engine, tmp_path
):
    """`creditlens ingest FILE` is another process: its batches reach the server's
    subscribers through Redis, and the per-token limit is counted there too."""
    tenant = await make_tenant(engine, now=_now())
    path = tmp_path / "events.ndjson"
    events = [event(tenant.slug, _now(), credits=2) for _ in range(3)]
    path.write_text("".join(json.dumps(item) + "\n" for item in events))
    with live_server(
        database_url,
        tmp_path / "server.log",
        redis_url=redis_url,
        ws_max_subscriptions_per_token=1,
    ) as server:
        socket = await open_socket(server, tenant.token)
        second = await open_socket(server, tenant.token)
        try:
            assert (await receive(socket))["type"] == "connection_ack"
            await subscribe(socket)
            assert (await receive(socket))["payload"]["data"]["usageUpdates"]["todayCalls"] == 0
            assert (await receive(second))["type"] == "connection_ack"
            await subscribe(second)
            answer = await receive(second)
            assert answer["payload"][0]["extensions"]["code"] == "RATE_LIMITED", answer
            cli = await asyncio.create_subprocess_exec(
                *(sys.executable, "-c", "from app.cli import main; main()"),
                *("ingest", str(path), "--quiet"),
                cwd=ROOT,
                env={
                    **os.environ,
                    "CREDITLENS_DATABASE_URL": database_url,
                    "CREDITLENS_REDIS_URL": redis_url,
                },
            )
            assert await asyncio.wait_for(cli.wait(), 60) == 0
            tick = (await receive(socket))["payload"]["data"]["usageUpdates"]
            assert (tick["todayCalls"], tick["todayCredits"]) == (3, 6)
        finally:
            await socket.close()
            await second.close()
