"""Tokens: missing, malformed, unknown, expired, revoked, or of the wrong scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db.engine import writing
from db.queries.tokens import _PRINCIPAL, _principal_row, hash_token, revoke_token
from domain.scopes import TokenScope
from tests.factories import PEPPER, add_user, graphql, make_ingest_token, make_tenant

VIEWER = "{ viewer { name role } }"


def assert_unauthenticated(response):
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in body


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer cl_not-a-real-token", "Bearer x" * 50],
    ids=["missing", "empty", "no-token", "basic", "unknown", "oversized"],
)
async def test_no_or_bad_token_is_401_with_graphql_body(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = await client.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert_unauthenticated(response)


async def test_valid_token_names_the_viewer(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), role="MEMBER")
    body = (await graphql(client, tenant.token, VIEWER)).json()
    assert body == {"data": {"viewer": {"name": "Viewer", "role": "MEMBER"}}}


async def test_expired_token_is_refused(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    _, _, token = await add_user(
        engine, tenant, role="ADMIN", now=clock(), expires_at=clock() + timedelta(hours=1)
    )
    assert (await graphql(client, token, VIEWER)).status_code == 200
    clock.now += timedelta(hours=1)
    assert_unauthenticated(await graphql(client, token, VIEWER))


async def test_revoked_token_stops_working_at_once(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    _, token_id, token = await add_user(engine, tenant, role="ADMIN", now=clock())
    assert (await graphql(client, token, VIEWER)).status_code == 200
    async with writing(engine) as conn:
        assert await revoke_token(conn, token_id=token_id, now=clock())
    assert_unauthenticated(await graphql(client, token, VIEWER))


async def test_ingest_token_cannot_query(client, engine, clock):
    token = await make_ingest_token(engine, now=clock())
    response = await graphql(client, token, VIEWER)
    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "ingest" in error["message"]


async def test_user_token_cannot_ingest(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    response = await client.post(
        "/v1/events", json=[], headers={"Authorization": f"Bearer {tenant.token}"}
    )
    assert response.status_code == 403
    assert "--ingest" in response.json()["message"]


async def test_tokens_are_stored_only_as_hashes(client, engine, clock):
    from sqlalchemy import select

    from db.tables import access_tokens

    tenant = await make_tenant(engine, now=clock())
    async with engine.connect() as conn:
        stored = (await conn.execute(select(access_tokens.c.token_hash))).scalars().all()
    assert tenant.token not in stored
    assert all(len(value) == 64 for value in stored)


async def test_a_revoked_ingest_token_stops_ingesting_at_once(client, engine, clock):
    from db.queries.tokens import create_token
    from tests.factories import PEPPER, event, post_events

    tenant = await make_tenant(engine, now=clock())
    async with writing(engine) as conn:
        token_id, token = await create_token(
            conn, pepper=PEPPER, scope=TokenScope.INGEST, user_id=None, now=clock()
        )
    batch = [event(tenant.slug, clock() - timedelta(hours=1))]
    assert (await post_events(client, token, batch)).status_code == 200
    async with writing(engine) as conn:
        assert await revoke_token(conn, token_id=token_id, now=clock())
    response = await post_events(client, token, batch)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


async def test_a_batch_looks_its_token_up_where_graphql_does(client, engine, clock, ingest):
    """Off SQLAlchemy's pooled execution: on the worker's statement line (PostgreSQL) or the
    loop's reader (SQLite; through SQLAlchemy it cost six crossings to aiosqlite's thread)."""
    from tests.factories import event, post_events
    from tests.statements import recorded

    tenant = await make_tenant(engine, now=clock())
    with recorded(engine) as statements:
        response = await post_events(client, ingest, [event(tenant.slug, clock())])
    assert response.status_code == 200
    assert any("usage_events" in statement for statement in statements)  # the batch's writes
    assert not [statement for statement in statements if "access_tokens" in statement]


async def test_an_expired_token_cannot_ingest(client, engine, clock):
    from db.queries.tokens import create_token
    from tests.factories import PEPPER, event, post_events

    tenant = await make_tenant(engine, now=clock())
    async with writing(engine) as conn:
        _, token = await create_token(
            conn,
            pepper=PEPPER,
            scope=TokenScope.INGEST,
            user_id=None,
            now=clock(),
            expires_at=clock() + timedelta(minutes=5),
        )
    batch = [event(tenant.slug, clock() - timedelta(hours=1))]
    assert (await post_events(client, token, batch)).status_code == 200
    clock.now += timedelta(minutes=5)
    assert (await post_events(client, token, batch)).status_code == 401


async def test_a_graphql_get_needs_a_token_too(client):
    response = await client.get("/graphql", params={"query": VIEWER})
    assert_unauthenticated(response)


async def test_the_token_statement_reads_the_same_through_the_driver(engine, clock):
    """On PostgreSQL the token statement runs on the driver's connection
    (db.queries.tokens._principal_row): its row must be what SQLAlchemy's execution of
    the same statement gives, instants included (UTC-aware, as their columns make them)."""
    tenant = await make_tenant(engine, now=clock())
    _, _, expiring = await add_user(
        engine, tenant, role="MEMBER", now=clock(), expires_at=clock() + timedelta(days=3)
    )
    for token in (tenant.token, expiring):
        digest = hash_token(token, PEPPER)
        async with engine.connect() as conn:
            through_driver = await _principal_row(conn, digest)
            executed = (await conn.execute(_PRINCIPAL, {"digest": digest})).first()
        assert through_driver is not None
        assert executed is not None
        assert dict(through_driver) == dict(executed._mapping)
        for value in through_driver.values():
            if isinstance(value, datetime):
                assert value.tzinfo is UTC
    async with engine.connect() as conn:
        assert await _principal_row(conn, hash_token("cl_unknown", PEPPER)) is None
