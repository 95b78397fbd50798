"""The execution time limit (issue 10, class 1): a request's GraphQL work is stopped at
``execution_timeout_seconds``, answered with a code, and its connection is free at once."""

from __future__ import annotations

import asyncio
import gc
import time

import httpx
import pytest
from sqlalchemy import text

from app.main import create_app
from app.settings import Settings
from db.engine import create_engine
from db.session import RequestDatabase
from domain.outcomes import OUTCOME_CODES, CallOutcome
from tests.factories import graphql, make_tenant

EVENTS = 100_000
# Raw events spread over 14 minutes: a range with edges off the 15-minute grid reads them
# all from usage_events (no rollup covers a ragged piece).
_SQLITE_EVENTS = """
INSERT INTO usage_events
    (organization_id, event_id, api_key_id, user_id, source, endpoint, status, outcome,
     credits, occurred_at)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :n)
SELECT :organization, 'heavy-' || i, NULL, NULL, 'api', '/e' || (i % 500), 200, :success, 1,
       strftime('%Y-%m-%d %H:%M:%f000', '2026-06-10 12:00:00', '+' || (i * 840.0 / :n)
                || ' seconds')
FROM n
"""
_POSTGRES_EVENTS = """
INSERT INTO usage_events
    (organization_id, event_id, api_key_id, user_id, source, endpoint, status, outcome,
     credits, occurred_at)
SELECT :organization, 'heavy-' || i, NULL, NULL, 'api', '/e' || (i % 500), 200, :success, 1,
       timestamptz '2026-06-10 12:00:00+00' + (i * 840.0 / :n) * interval '1 second'
FROM generate_series(0, :n - 1) AS i
"""
RAGGED = '{start: "2026-06-10T12:00:01Z", end: "2026-06-10T12:14:59Z"}'
# 30 aliases (the alias limit) of a report over 100,000 raw events: about 13 s of work on
# SQLite and 14 s on PostgreSQL on the development machine without a limit.
HEAVY = (
    "{ organization { "
    + " ".join(
        f"a{i}: usage(timeRange: {RAGGED}) {{ calls byEndpoint {{ endpoint calls }} "
        "bySource { source calls } }"
        for i in range(30)
    )
    + " } }"
)
# Statements that run for a minute or more unless stopped (bounded, so that a failing
# run ends too).
_SQLITE_SLOW = (
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
    "SELECT count(*) FROM n"
)
_POSTGRES_SLOW = "SELECT pg_sleep(300)"


# A query stopped at its deadline leaves the resolvers it had not started yet unawaited:
# their coroutine objects are dropped, which Python reports when they are collected (as a
# RuntimeWarning, an error under this suite's ``filterwarnings = error``). That is the
# stop working as meant, so this test collects them itself and lets exactly that pass
# (the ':' of the messages is matched by '.': the filter's fields are split on colons).
_ABANDONED = "coroutine '.*_async_resolver' was never awaited"


@pytest.mark.filterwarnings(f"ignore:{_ABANDONED}:RuntimeWarning")
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <coroutine object GraphQLCoreConverter"
    ":pytest.PytestUnraisableExceptionWarning"
)
async def test_a_query_past_the_time_limit_is_stopped_with_a_code(clean_database, clock):
    # No webhook dispatcher: its poll (every 0.5 s, on the app's pool) would hold a
    # connection of its own at times, and the pool count below is the request's.
    settings = Settings(
        database_url=clean_database, execution_timeout_seconds=0.5, webhook_dispatcher=False
    )
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        engine = application.state.engine
        tenant = await make_tenant(engine, now=clock())
        statement = _POSTGRES_EVENTS if engine.dialect.name == "postgresql" else _SQLITE_EVENTS
        async with engine.begin() as conn:
            await conn.execute(
                text(statement),
                {
                    "n": EVENTS,
                    "organization": tenant.organization_id,
                    "success": OUTCOME_CODES[CallOutcome.SUCCESS],
                },
            )
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            started = time.monotonic()
            response = await graphql(client, tenant.token, HEAVY)
            elapsed = time.monotonic() - started
            assert response.status_code == 400
            body = response.json()
            assert "data" not in body
            [error] = body["errors"]
            assert error["extensions"] == {
                "code": "QUERY_TOO_COMPLEX",
                "limit": "execution_timeout_seconds",
                "maximum": 0.5,
            }
            assert "execution_timeout_seconds" in error["message"]
            assert elapsed < 8, elapsed  # the whole work takes 13 s or more
            assert engine.pool.checkedout() == 0  # the request's connection was given back
            after = await graphql(client, tenant.token, "{ viewer { id } }")
            assert after.status_code == 200
    gc.collect()  # the stopped query's unstarted resolvers, here rather than in another test


async def test_an_interrupted_statement_frees_its_connection_at_once(database_url):
    """What the limit relies on: cancelling a request's work, after ``interrupt``, stops
    the statement in flight (aiosqlite would otherwise run it on in its thread, and closing
    the connection would wait for it)."""
    engine = create_engine(database_url)
    try:
        slow = _POSTGRES_SLOW if engine.dialect.name == "postgresql" else _SQLITE_SLOW
        db = RequestDatabase(engine)

        async def run() -> None:
            async with db.connection() as conn:
                await conn.execute(text(slow))

        work = asyncio.create_task(run())
        await asyncio.sleep(0.5)
        assert not work.done()
        started = time.monotonic()
        await db.interrupt()
        work.cancel()
        await asyncio.wait({work})
        await db.close()
        assert time.monotonic() - started < 5
        assert engine.pool.checkedout() == 0
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
