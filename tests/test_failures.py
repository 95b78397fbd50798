"""Every answer is JSON with an X-Request-ID, failures included (issue 10, class 6): an
unexpected exception is a masked 500, an unreachable database a coded 503, and a SQLite
file deleted under the server is noticed before anything is acknowledged."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from app.metrics import Metrics
from app.observer import RequestObserver
from app.settings import Settings
from db import migrate
from tests.factories import event, make_ingest_token, make_tenant, post_events

UNREACHABLE = [
    "sqlite+aiosqlite:////nonexistent-directory/creditlens.db",
    "postgresql+asyncpg://postgres@127.0.0.1:1/creditlens",
]
A_TOKEN = {"Authorization": "Bearer cl_" + "x" * 43}  # well-formed: it reaches the database


def _client(application) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t")


async def _aiosqlite_threads_stopped() -> None:
    """aiosqlite stops the thread of a connection that failed to open without waiting for
    it; if the test's event loop closes first, that thread fails (an unhandled thread
    exception, which pytest reports). Let them finish."""
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 5)


async def _failing_app(scope, receive, send):
    raise RuntimeError("a bug")


@pytest.mark.parametrize(
    ("path", "code_of"),
    [
        ("/graphql", lambda body: body["errors"][0]["extensions"]["code"]),
        ("/v1/events", lambda body: body["error"]),
    ],
    ids=["graphql", "ingest"],
)
async def test_an_exception_no_route_handled_is_a_json_500_with_the_request_id(
    path, code_of, caplog
):
    metrics = Metrics()
    application = RequestObserver(_failing_app, metrics)
    with caplog.at_level(logging.ERROR, logger="creditlens.http"):
        async with _client(application) as client:
            response = await client.post(path, content=b"{}")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    request_id = response.headers["x-request-id"]
    body = response.json()
    assert code_of(body) in ("INTERNAL_SERVER_ERROR", "internal_server_error")
    assert request_id in response.text
    assert "a bug" not in response.text
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.request_id == request_id
    assert str(record.exc_info[1]) == "a bug"
    assert f'creditlens_requests_total{{path="{path}",status="500"}} 1' in metrics.render()


async def test_an_unknown_path_is_a_json_404(client):
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert response.headers["x-request-id"]


async def test_a_wrong_method_is_a_json_405(client):
    response = await client.get("/v1/events")
    assert response.status_code == 405
    assert response.json()["error"] == "bad_request"
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("url", UNREACHABLE, ids=["sqlite", "postgres"])
async def test_an_unreachable_database_is_a_coded_503_on_every_surface(url, clock):
    application = create_app(Settings(database_url=url), clock=clock)
    async with application.router.lifespan_context(application), _client(application) as client:
        graphql = await client.post(
            "/graphql", json={"query": "{ viewer { id } }"}, headers=A_TOKEN
        )
        ingest = await client.post("/v1/events", json=[], headers=A_TOKEN)
        ready = await client.get("/readyz")
    await _aiosqlite_threads_stopped()
    assert graphql.status_code == 503
    [error] = graphql.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert graphql.headers["retry-after"] == "5"
    assert ingest.status_code == 503
    assert ingest.json()["error"] == "service_unavailable"
    assert ingest.headers["retry-after"] == "5"
    assert ready.status_code == 503
    for response in (graphql, ingest, ready):
        assert response.headers["x-request-id"]
        assert "127.0.0.1" not in response.text
        assert "nonexistent" not in response.text


async def test_a_deleted_sqlite_file_is_not_ready_and_acknowledges_nothing(tmp_path: Path, clock):
    path = tmp_path / "served.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, url)
    application = create_app(Settings(database_url=url), clock=clock)
    async with application.router.lifespan_context(application), _client(application) as client:
        engine = application.state.engine
        tenant = await make_tenant(engine, now=clock())
        token = await make_ingest_token(engine, now=clock())
        at = clock() - timedelta(hours=1)
        stored = await post_events(client, token, [event(tenant.slug, at)])
        assert stored.json() == {"accepted": 1, "duplicates": 0}
        assert (await client.get("/readyz")).status_code == 200
        for name in ("served.db", "served.db-wal", "served.db-shm"):
            if (tmp_path / name).exists():
                os.unlink(tmp_path / name)
        # The pool's open connections still write to the unlinked file: before the fix,
        # this batch was acknowledged with 200 and lost with the last handle.
        lost = await post_events(client, token, [event(tenant.slug, at)])
        ready = await client.get("/readyz")
        query = await client.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"Authorization": f"Bearer {tenant.token}"},
        )
    assert lost.status_code == 503
    assert lost.json()["error"] == "service_unavailable"
    assert ready.status_code == 503
    assert ready.json()["database"] == "missing"
    assert query.status_code == 503
    assert not path.exists()  # and nothing made a new, empty one in its place
