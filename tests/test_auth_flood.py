"""Authentication under abuse (issue 10, class 9): one Authorization header only, and a
flood of bad tokens from one address stops costing database lookups, while valid tokens
keep working."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from db.queries import tokens
from tests.factories import make_ingest_token, make_tenant

FAILURES_PER_MINUTE = 10
VIEWER = {"query": "{ viewer { id } }"}


@pytest.fixture
async def app(clean_database, clock):
    settings = Settings(database_url=clean_database, auth_failures_per_minute=FAILURES_PER_MINUTE)
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


def _client(application, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _guess() -> str:
    return "cl_" + secrets.token_urlsafe(32)


@contextmanager
def token_lookups(engine) -> Iterator[list[str]]:
    """The digests looked up in access_tokens while the block runs: every lookup goes
    through ``db.queries.tokens._principal_row`` (on PostgreSQL on the driver's connection,
    which SQLAlchemy's events do not see), counted here."""
    seen: list[str] = []
    looked_up = tokens._principal_row

    async def counted(conn, digest):  # type: ignore[no-untyped-def]
        seen.append(digest)
        return await looked_up(conn, digest)

    tokens._principal_row = counted  # type: ignore[assignment]
    try:
        yield seen
    finally:
        tokens._principal_row = looked_up  # type: ignore[assignment]


@pytest.mark.parametrize("path", ["/graphql", "/v1/events"])
async def test_two_authorization_headers_are_400(app, path):
    async with _client(app) as client:
        response = await client.post(
            path,
            json=VIEWER if path == "/graphql" else [],
            headers=[("Authorization", "Bearer cl_one"), ("Authorization", "Bearer cl_two")],
        )
    assert response.status_code == 400
    assert "one Authorization header" in response.text


async def test_a_bad_token_flood_stops_reaching_the_database(app, clock):
    engine = app.state.engine
    tenant = await make_tenant(engine, now=clock())
    async with _client(app) as client:
        # Seen valid from this address before the flood.
        assert (
            await client.post("/graphql", json=VIEWER, headers=_bearer(tenant.token))
        ).is_success
        with token_lookups(engine) as lookups:
            answers = [
                await client.post("/graphql", json=VIEWER, headers=_bearer(_guess()))
                for _ in range(50)
            ]
        statuses = [answer.status_code for answer in answers]
        assert statuses == [401] * FAILURES_PER_MINUTE + [429] * (50 - FAILURES_PER_MINUTE)
        assert len(lookups) == FAILURES_PER_MINUTE  # then none: a hash, not a lookup
        refused = answers[-1]
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) >= 1
        # The same address's known good token still works and is still checked.
        with token_lookups(engine) as lookups:
            ok = await client.post("/graphql", json=VIEWER, headers=_bearer(tenant.token))
        assert ok.status_code == 200
        assert len(lookups) == 1
        # Ingestion shares the count: guessed ingest tokens are refused the same way.
        ingest = await client.post("/v1/events", json=[], headers=_bearer(_guess()))
        assert (ingest.status_code, ingest.json()["error"]) == (429, "rate_limited")
        assert ingest.headers["retry-after"]
        # Once the bucket refills, a bad token is looked up (and refused) again.
        clock.now += timedelta(minutes=1)
        assert (
            await client.post("/graphql", json=VIEWER, headers=_bearer(_guess()))
        ).status_code == 401
    # Other addresses are not affected, new tokens included.
    other_token = await make_ingest_token(engine, now=clock())
    async with _client(app, "198.51.100.20") as other:
        assert (await other.post("/graphql", json=VIEWER, headers=_bearer(tenant.token))).is_success
        stored = await other.post("/v1/events", json=[], headers=_bearer(other_token))
        assert stored.json() == {"accepted": 0, "duplicates": 0}


async def test_refusals_are_counted_in_metrics(app):
    async with _client(app) as client:
        for _ in range(FAILURES_PER_MINUTE + 3):
            await client.post("/graphql", json=VIEWER, headers=_bearer(_guess()))
        metrics = (await client.get("/metrics")).text
    assert 'creditlens_rate_limited_total{surface="authentication"} 3' in metrics
