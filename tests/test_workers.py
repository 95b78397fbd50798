"""``creditlens serve --workers 2`` as real processes (issue 16): one rate limit through
Redis, metrics summed across workers, and a SIGTERM that drops no request in flight."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.settings import Settings
from app.workers import WorkersRefused, check_workers
from tests.factories import event, make_ingest_token, make_tenant
from tests.live_server import ROOT, LiveServer, live_server

QUERY = '{"query": "{ viewer { id } }"}'
LIMIT = 6


def _count(metrics: str, series: str) -> float:
    match = re.search(re.escape(series) + r" (\S+)", metrics)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def workers(database_url, redis_url, tmp_path):
    with live_server(
        database_url,
        tmp_path / "server.log",
        serve_args=("--workers", "2"),
        environment={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")},
        redis_url=redis_url,
        rate_limit_per_minute=LIMIT,
    ) as running:
        yield running


async def test_two_workers_share_the_limit_and_sum_their_metrics(workers, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    headers = {"Authorization": f"Bearer {tenant.token}", "Content-Type": "application/json"}
    statuses = []
    for _ in range(3 * LIMIT):
        # A new connection each time: the kernel hands them to either worker.
        async with httpx.AsyncClient(base_url=workers.url, timeout=30) as http:
            response = await http.post("/graphql", content=QUERY, headers=headers)
            statuses.append(response.status_code)
    assert statuses.count(200) == LIMIT, statuses
    assert statuses.count(429) == 2 * LIMIT, statuses
    # Whichever worker answers /metrics reports all of them.
    for _ in range(6):
        async with httpx.AsyncClient(base_url=workers.url, timeout=30) as http:
            metrics = (await http.get("/metrics")).text
        assert _count(metrics, 'creditlens_requests_total{path="/graphql",status="200"}') == LIMIT
        assert _count(metrics, 'creditlens_rate_limited_total{surface="graphql"}') == 2 * LIMIT
    files = {path.name for path in (workers.log.parent / "metrics").glob("counter_*.db")}
    assert len(files) >= 2, files  # one file per worker process


def test_more_than_one_worker_needs_redis(database_url):
    with pytest.raises(WorkersRefused, match="CREDITLENS_REDIS_URL"):
        check_workers(Settings(database_url=database_url), 2)
    check_workers(Settings(database_url=database_url), 1)
    check_workers(Settings(database_url=database_url, redis_url="redis://127.0.0.1:6379/15"), 2)


def test_serve_refuses_two_workers_without_redis_in_one_line(database_url):
    env = {**os.environ, "CREDITLENS_DATABASE_URL": database_url}
    env.pop("CREDITLENS_REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "serve", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: --workers 2 needs CREDITLENS_REDIS_URL")
    assert "Traceback" not in done.stderr


async def test_sigterm_answers_every_request_in_flight(database_url, redis_url, tmp_path, engine):
    tenant = await make_tenant(engine, now=_now())
    token = await make_ingest_token(engine, now=_now())
    with live_server(
        database_url,
        tmp_path / "server.log",
        serve_args=("--workers", "2"),
        redis_url=redis_url,
    ) as server:
        answers = await asyncio.to_thread(_stop_while_posting, server, tenant.slug, token)
    assert answers == [(200, {"accepted": 50, "duplicates": 0})] * len(answers), answers


def _stop_while_posting(server: LiveServer, slug: str, token: str) -> list[object]:
    """Six ingest requests whose bodies are half sent when the server gets SIGTERM; each
    one's answer (or transport error) once the server has exited."""
    clients = 6
    started = threading.Barrier(clients + 1)
    release = threading.Event()
    answers: list[object] = [None] * clients

    def slow_batch(index: int) -> None:
        events = [event(slug, _now() - timedelta(minutes=5)) for _ in range(50)]
        body = httpx.Request("POST", "/", json=events).content

        def chunks():
            yield body[:10]
            started.wait(timeout=30)  # every request is on the wire
            release.wait(timeout=30)  # ... and the server was told to stop
            yield body[10:]

        try:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                response = http.post(
                    "/v1/events",
                    content=chunks(),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                )
                answers[index] = (response.status_code, response.json())
        except httpx.HTTPError as error:
            answers[index] = error

    threads = [threading.Thread(target=slow_batch, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    started.wait(timeout=30)
    time.sleep(0.5)  # the first chunks reached the workers
    os.kill(server.pid, signal.SIGTERM)
    time.sleep(0.5)  # the workers are shutting down: no new connections
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    # The supervisor exits on its own once its workers have drained.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(server.pid):
        time.sleep(0.1)
    assert not _alive(server.pid), server.log_text()
    return answers


def _now():
    """The server processes run on the real clock."""
    return datetime.now(UTC)


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return finished == 0


async def test_a_subscriber_on_one_host_hears_an_ingest_on_another(
    database_url, redis_url, tmp_path, engine
):
    from tests.test_subscriptions import ingest, open_socket, receive, subscribe

    tenant = await make_tenant(engine, now=_now())
    ingest_token = await make_ingest_token(engine, now=_now())
    with (
        live_server(database_url, tmp_path / "a.log", redis_url=redis_url) as host_a,
        live_server(database_url, tmp_path / "b.log", redis_url=redis_url) as host_b,
    ):
        socket = await open_socket(host_a, tenant.token)
        try:
            assert (await receive(socket))["type"] == "connection_ack"
            await subscribe(socket)
            assert (await receive(socket))["type"] == "next"
            await ingest(host_b, ingest_token, [event(tenant.slug, _now(), credits=5)])
            tick = (await receive(socket))["payload"]["data"]["usageUpdates"]
            assert (tick["todayCalls"], tick["todayCredits"]) == (1, 5)
        finally:
            await socket.close()


async def test_sigterm_closes_subscriptions_for_a_reconnect(
    database_url, redis_url, tmp_path, engine
):
    from tests.test_subscriptions import close_code, open_socket, receive, subscribe

    tenant = await make_tenant(engine, now=_now())
    with live_server(
        database_url, tmp_path / "server.log", serve_args=("--workers", "2"), redis_url=redis_url
    ) as server:
        socket = await open_socket(server, tenant.token)
        assert (await receive(socket))["type"] == "connection_ack"
        await subscribe(socket)
        assert (await receive(socket))["type"] == "next"
        os.kill(server.pid, signal.SIGTERM)
        # 1012 "service restart": the client reconnects, to another worker or host.
        assert await close_code(socket) == 1012
        for _ in range(300):
            if not _alive(server.pid):
                break
            await asyncio.sleep(0.1)
        assert not _alive(server.pid), server.log_text()
