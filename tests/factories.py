"""Keyword factories for tests: organizations, users, tokens, events and requests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import writing
from db.folding import fold_all
from db.queries.directory import create_organization, create_user
from db.queries.tokens import create_token
from domain.scopes import TokenScope

PEPPER = "creditlens-development-pepper"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Tenant:
    organization_id: int
    slug: str
    user_id: int
    token: str


async def make_tenant(
    engine: AsyncEngine,
    *,
    now: datetime,
    plan: str = "PRO",
    role: str = "ADMIN",
    timezone: str = "UTC",
    slug: str | None = None,
    allowance: int = 100_000,
    anchor: datetime | None = None,
) -> Tenant:
    """An organization with one user and a token for that user."""
    slug = slug or f"org-{next(_numbers)}"
    async with writing(engine) as conn:
        organization_id = await create_organization(
            conn,
            slug=slug,
            name=slug.title(),
            plan=plan,
            timezone=timezone,
            credit_allowance=allowance,
            billing_cycle_anchor=anchor or datetime(2026, 1, 1, tzinfo=UTC),
            now=now,
        )
        user_id = await create_user(
            conn,
            organization_id=organization_id,
            external_id=f"viewer-{next(_numbers)}",
            name="Viewer",
            email=None,
            role=role,
            now=now,
        )
        _, token = await create_token(
            conn, pepper=PEPPER, scope=TokenScope.USER, user_id=user_id, now=now
        )
    return Tenant(organization_id, slug, user_id, token)


async def add_user(
    engine: AsyncEngine, tenant: Tenant, *, role: str, now: datetime, expires_at: Any = None
) -> tuple[int, int, str]:
    """Another user of the tenant's organization: (user id, token id, token)."""
    async with writing(engine) as conn:
        user_id = await create_user(
            conn,
            organization_id=tenant.organization_id,
            external_id=f"user-{next(_numbers)}",
            name="Someone",
            email=None,
            role=role,
            now=now,
        )
        token_id, token = await create_token(
            conn,
            pepper=PEPPER,
            scope=TokenScope.USER,
            user_id=user_id,
            now=now,
            expires_at=expires_at,
        )
    return user_id, token_id, token


async def make_ingest_token(engine: AsyncEngine, *, now: datetime) -> str:
    async with writing(engine) as conn:
        _, token = await create_token(
            conn, pepper=PEPPER, scope=TokenScope.INGEST, user_id=None, now=now
        )
    return token


def event(organization: str, occurred_at: datetime, **fields: Any) -> dict[str, Any]:
    """A valid event; override any field by keyword (None removes it)."""
    body: dict[str, Any] = {
        "id": f"evt-{next(_numbers)}",
        "organization": organization,
        "api_key": "key-a",
        "source": "api",
        "endpoint": "/v2/person",
        "status": 200,
        "credits": 1,
        "timestamp": occurred_at.isoformat(),
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


async def post_events(
    client: httpx.AsyncClient, token: str, events: list[dict[str, Any]]
) -> httpx.Response:
    return await client.post(
        "/v1/events", json=events, headers={"Authorization": f"Bearer {token}"}
    )


async def graphql(
    client: httpx.AsyncClient,
    token: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )


async def answer(
    client: httpx.AsyncClient,
    token: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``data`` of the answer to ``query``, which must have no error, and which must be
    the same read as ingested and read again once every pending event is folded into the
    rollups (when the client has a ``folding_engine``: tests/conftest.py). The app's folder
    waits for a longer or older tail (SQLite: 2 s), so without this a test that asks right
    after ingesting reads its events from the tail only, never from the rollups, whose
    layout (all-keys and all-outcomes rows: db/rollup_keys.py) the reads must undo."""
    body = (await graphql(client, token, query, variables)).json()
    assert "errors" not in body, body
    engine = getattr(client, "folding_engine", None)
    if engine is not None and await fold_all(engine):
        # A fold changes no answer, so the app would rightly reuse the first one: ask anew.
        answers = getattr(client, "answers", None)
        if answers is not None:
            answers.clear()
        again = (await graphql(client, token, query, variables)).json()
        assert again == body, "the rollups answer otherwise than the unfolded tail did"
    data: dict[str, Any] = body["data"]
    return data


# Fixture parameters of tests that read what they ingested: read as it comes (mostly from
# the rollup tail) and read with everything folded into the rollups (``settle``).
STORAGE = ["as-sent", "folded"]


async def settle(engine: AsyncEngine, storage: str) -> None:
    """Fold every pending event into the rollups when ``storage`` is "folded"."""
    if storage == "folded":
        await fold_all(engine)


async def tenant_with_daily_calls(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    storage: str,
    *,
    now: datetime,
    timezone: str,
    days: int,
    hours_before: int,
) -> Tenant:
    """A tenant with one call a day for ``days`` days (``hours_before`` each day's instant),
    over three keys (key-0..2), four endpoints, three outcomes and 0-4 credits, sent through
    the ingestion route and settled as ``storage`` says."""
    tenant = await make_tenant(engine, now=now, timezone=timezone)
    ingest = await make_ingest_token(engine, now=now)
    events = [
        event(
            tenant.slug,
            now - timedelta(days=day, hours=hours_before),
            api_key=f"key-{day % 3}",
            endpoint=f"/v2/e{day % 4}",
            status=(200, 404, 429)[day % 3],
            credits=day % 5,
        )
        for day in range(days)
    ]
    response = await post_events(client, ingest, events)
    assert response.status_code == 200, response.text
    await settle(engine, storage)
    return tenant


async def answered_both_ways(
    client: httpx.AsyncClient,
    token: str,
    query: str,
    variables: dict[str, Any] | None,
    monkeypatch: Any,
    *switches: tuple[object, str, object],
) -> tuple[Any, Any]:
    """The JSON answer of ``query``, then the same with a fast path switched off: each
    switch is (owner, attribute, value) set for the second request only."""
    first = (await graphql(client, token, query, variables)).json()
    with monkeypatch.context() as off:
        for owner, attribute, value in switches:
            off.setattr(owner, attribute, value)
        second = (await graphql(client, token, query, variables)).json()
    return first, second


def count_answers(monkeypatch: Any, owner: type, name: str) -> list[int]:
    """Counts the calls of the method ``owner.name`` that answered something (not None):
    how often a fast path was taken. The count is the list's one item."""
    answered = [0]
    method = getattr(owner, name)

    def counting(self: Any, *args: Any) -> Any:
        answer = method(self, *args)
        answered[0] += answer is not None
        return answer

    monkeypatch.setattr(owner, name, counting)
    return answered


async def client_and_daily_tenant(
    uncached: tuple[httpx.AsyncClient, AsyncEngine],
    storage: str,
    *,
    now: datetime,
    timezone: str,
    days: int,
    hours_before: int,
) -> tuple[httpx.AsyncClient, Tenant]:
    """The ``uncached`` fixture's client, and a tenant of ``tenant_with_daily_calls``."""
    client, engine = uncached
    tenant = await tenant_with_daily_calls(
        client, engine, storage, now=now, timezone=timezone, days=days, hours_before=hours_before
    )
    return client, tenant


def known_schema(query: type) -> Any:
    """A small schema of a test's own, run as the real one is: our ``Schema`` with its
    known operations (so plain documents are run by their plan) and ``RowExecution``."""
    from graphql import specified_rules

    from graphql_schema.execution import RowExecution
    from graphql_schema.known_operations import Checks, KnownOperations
    from graphql_schema.limits.cost import CostLimits, CostMemo
    from graphql_schema.schema import Schema
    from graphql_schema.validation import Validator

    schema = Schema(query=query, execution_context_class=RowExecution)
    schema.known_operations = KnownOperations(
        Checks(
            max_tokens=10_000,
            parse_cache_size=16,
            validator=Validator(hide_suggestions=False, maxsize=16),
            max_cost=1_000_000,
            cost_limits=CostLimits(max_page_size=100, max_series_points=100, max_steps=10_000),
            cost_memo=CostMemo(maxsize=16),
        ),
        tuple(specified_rules),
    )
    return schema
