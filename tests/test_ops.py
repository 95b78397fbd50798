"""Operations: liveness, readiness, Prometheus metrics and the per-request log line."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import httpx
import pytest

from app.logging import JsonFormatter, PlainFormatter
from app.main import create_app
from app.settings import Settings
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events


async def get(url, path, clock):
    application = create_app(Settings(database_url=url), clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path)


async def test_healthz_answers_while_the_process_is_up(client):
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_ready_on_a_migrated_database(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


async def test_readyz_is_503_when_the_database_is_not_migrated(scratch_url, clock):
    response = await get(scratch_url, "/readyz", clock)
    assert response.status_code == 503
    assert response.json()["migration"] is None
    assert response.json()["expected"]


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:////nonexistent-directory/creditlens.db",
        "postgresql+asyncpg://postgres@127.0.0.1:1/creditlens",
    ],
    ids=["sqlite", "postgres"],
)
async def test_readyz_is_503_when_the_database_is_unreachable(url, clock):
    response = await get(url, "/readyz", clock)
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert "127.0.0.1" not in response.text
    healthz = await get(url, "/healthz", clock)
    assert healthz.status_code == 200  # alive, just not ready


async def test_metrics_count_requests_latency_errors_and_ingestion(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    batch = [event(tenant.slug, clock() - timedelta(hours=1)) for _ in range(3)]
    await post_events(client, token, batch)
    await post_events(client, token, [*batch, event(tenant.slug, clock() - timedelta(hours=2))])
    await graphql(client, tenant.token, "{ viewer { id } }")
    await graphql(client, tenant.token, "{ nope }")
    await graphql(client, None, "{ viewer { id } }")
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'creditlens_requests_total{path="/graphql",status="200"} 2' in text
    assert 'creditlens_requests_total{path="/graphql",status="401"} 1' in text
    assert 'creditlens_requests_total{path="/v1/events",status="200"} 2' in text
    assert "# TYPE creditlens_request_duration_seconds histogram" in text
    assert 'creditlens_request_duration_seconds_count{path="/graphql"} 3' in text
    assert 'creditlens_request_duration_seconds_bucket{path="/graphql",le="+Inf"} 3' in text
    assert 'creditlens_graphql_errors_total{code="GRAPHQL_VALIDATION_FAILED"} 1' in text
    assert 'creditlens_graphql_errors_total{code="UNAUTHENTICATED"} 1' in text
    assert "creditlens_events_ingested_total 4" in text
    assert "creditlens_events_duplicate_total 3" in text


async def test_one_log_line_per_request_names_request_viewer_operation(
    client, engine, clock, caplog
):
    tenant = await make_tenant(engine, now=clock())
    with caplog.at_level(logging.INFO, logger="creditlens.http"):
        response = await graphql(client, tenant.token, "query WhoAmI { viewer { id } }")
    [record] = [r for r in caplog.records if r.name == "creditlens.http"]
    assert record.request_id == response.headers["x-request-id"]
    assert record.viewer == f"user:{tenant.user_id}@organization:{tenant.organization_id}"
    assert record.operation == "WhoAmI"
    assert record.status == 200
    assert record.duration_ms >= 0
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "request"
    assert line["request_id"] == record.request_id
    assert line["operation"] == "WhoAmI"
    assert line["viewer"] == record.viewer
    assert f"request_id={record.request_id}" in PlainFormatter().format(record)


async def test_json_logs_are_written_to_stderr_when_asked(clean_database, clock, capsys):
    application = create_app(Settings(database_url=clean_database, log_json=True), clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/healthz")
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    [line] = [line for line in lines if line["message"] == "request"]
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["path"] == "/healthz"
