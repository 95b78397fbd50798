"""Unexpected failures are masked, with a request id the log line shares; suggestions and
introspection follow their settings."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from sqlalchemy import text

from app.main import create_app
from app.settings import Settings
from db import migrate
from tests.factories import graphql, make_tenant

USAGE = (
    "{ organization { name usage(timeRange: {preset: LAST_7_DAYS}) { calls creditsConsumed } } }"
)


async def test_an_unexpected_failure_is_masked_and_logged_with_the_request_id(
    scratch_url, clock, caplog
):
    await asyncio.to_thread(migrate.upgrade, scratch_url)
    application = create_app(Settings(database_url=scratch_url), clock=clock)
    async with application.router.lifespan_context(application):
        engine = application.state.engine
        tenant = await make_tenant(engine, now=clock())
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE usage_rollups"))
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            with caplog.at_level(logging.ERROR, logger="creditlens"):
                response = await graphql(client, tenant.token, USAGE)
    assert response.status_code == 200
    body = response.json()
    # usage is a nullable panel: the failure nulls it, not the whole answer.
    assert body["data"] == {"organization": {"name": tenant.slug.title(), "usage": None}}
    [error] = body["errors"]
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert error["path"] == ["organization", "usage", "calls"]
    for leak in ("usage_rollups", "SELECT", "sqlite", "asyncpg", "Traceback", ".py", "/work"):
        assert leak not in response.text
    [record] = [r for r in caplog.records if r.name == "creditlens.graphql"]
    assert record.request_id == request_id
    assert request_id in record.getMessage()
    assert "usage_rollups" in str(record.exc_info[1])


async def test_a_mistyped_field_gets_a_suggestion_by_default(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    error = (await graphql(client, tenant.token, "{ viewer { nmae } }")).json()["errors"][0]
    assert "Did you mean" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_introspection_is_on_by_default(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    body = (await graphql(client, tenant.token, "{ __schema { queryType { name } } }")).json()
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


class TestProductionSettings:
    @pytest.fixture
    def settings(self, clean_database):
        return Settings(database_url=clean_database, field_suggestions=False, introspection=False)

    async def test_suggestions_can_be_turned_off(self, client, engine, clock):
        tenant = await make_tenant(engine, now=clock())
        error = (await graphql(client, tenant.token, "{ viewer { nmae } }")).json()["errors"][0]
        assert "Did you mean" not in error["message"]
        assert "name" not in error["message"].replace("nmae", "")
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    @pytest.mark.parametrize(
        "query",
        ["{ __schema { queryType { name } } }", '{ __type(name: "Viewer") { name } }'],
        ids=["schema", "type"],
    )
    async def test_introspection_can_be_turned_off(self, client, engine, clock, query):
        tenant = await make_tenant(engine, now=clock())
        body = (await graphql(client, tenant.token, query)).json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "introspection" in body["errors"][0]["message"].lower()

    async def test_typename_still_works(self, client, engine, clock):
        tenant = await make_tenant(engine, now=clock())
        body = (await graphql(client, tenant.token, "{ __typename }")).json()
        assert body == {"data": {"__typename": "Query"}}


async def test_every_error_has_a_code(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    queries = [
        "{",
        "{ nope }",
        "{ organization { apiKeys(first: 1000) { totalCount } } }",
        '{ organization { apiKeys(after: "bogus") { totalCount } } }',
        '{ organization { endpointUsage(timeRange: {preset: TODAY}, keyId: "nope") { calls } } }',
        '{ organization { usage(timeRange: {preset: TODAY, timezone: "Mars/Base"}) { calls } } }',
    ]
    for query in queries:
        errors = (await graphql(client, tenant.token, query)).json()["errors"]
        assert all(error["extensions"]["code"] for error in errors), query
