"""Fixtures: a real database (SQLite file, or PostgreSQL when CREDITLENS_TEST_DATABASE_URL
says so), the real ASGI app over httpx, and a clock the tests control.

Each test starts from empty tables: the tables are emptied after every test rather than
rolled back, because tests also drive real server processes and concurrent writers that
cannot share one outer transaction.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.main import create_app
from app.settings import Settings
from db import migrate
from db.tables import metadata
from tests.factories import make_ingest_token, make_tenant

POSTGRES_ENV = "CREDITLENS_TEST_DATABASE_URL"
DEFAULT_NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


class FixedClock:
    """A clock that stays where the test puts it."""

    def __init__(self, now: datetime = DEFAULT_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _postgres_execute(url: str, statement: str) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database for this test session."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        path = Path(tmp_path_factory.mktemp("db")) / "creditlens-test.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate.upgrade(url)
        yield url
        return
    name = f"creditlens_test_{uuid.uuid4().hex[:10]}"
    # A PostgreSQL leg that cannot reach its server must fail, never skip.
    asyncio.run(_postgres_execute(server, f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_postgres_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


async def _empty_tables(url: str) -> None:
    from db.engine import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            names = [table.name for table in reversed(metadata.sorted_tables)]
            # DELETE, not TRUNCATE, on PostgreSQL too: TRUNCATE replaces every table's and
            # index's files, about 200 ms a test on this machine (the PostgreSQL leg's whole
            # extra time), while a test leaves a few rows. Children first (the order above).
            for name in names:
                await conn.execute(text(f"DELETE FROM {name}"))
            if conn.dialect.name == "postgresql":
                # What TRUNCATE ... RESTART IDENTITY did: ids start again at 1, as on SQLite.
                await conn.execute(
                    text("SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'")
                )
    finally:
        await engine.dispose()


@pytest.fixture
async def clean_database(database_url: str) -> AsyncIterator[str]:
    yield database_url
    await _empty_tables(database_url)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def settings(clean_database: str) -> Settings:
    return Settings(database_url=clean_database)


@pytest.fixture
async def app(settings: Settings, clock: FixedClock):  # type: ignore[no-untyped-def]
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        # For ``tests.factories.answer``: the engine whose pending events it folds.
        http.folding_engine = app.state.engine  # type: ignore[attr-defined]
        # And the answers it must not reuse when it asks again after folding.
        http.answers = app.state.answers  # type: ignore[attr-defined]
        yield http


@pytest.fixture
def engine(app):  # type: ignore[no-untyped-def]
    """The app's own engine, for direct reads and writes in a test."""
    return app.state.engine


@pytest.fixture
async def uncached(settings, clock):
    """The application without its answer cache: every request is executed."""
    application = create_app(
        Settings(database_url=settings.database_url, answer_cache_bytes=0), clock=clock
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, application.state.engine


@pytest.fixture
async def second_worker(settings: Settings, clock: FixedClock) -> AsyncIterator[httpx.AsyncClient]:
    """Another application on the same database: what a second worker process holds (its
    app is ``second_worker.app``)."""
    application = create_app(Settings(database_url=settings.database_url), clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = application  # type: ignore[attr-defined]
            yield http


@pytest.fixture
async def tenant(engine, clock):  # type: ignore[no-untyped-def]
    """An organization (PRO, UTC) with an admin and the admin's token, made at the clock."""
    return await make_tenant(engine, now=clock())


@pytest.fixture
async def ingest(engine, clock):  # type: ignore[no-untyped-def]
    """A token that may send events."""
    return await make_ingest_token(engine, now=clock())


@pytest.fixture
async def scratch_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty, unmigrated database of its own beside the session's (so a test may migrate,
    downgrade or break it): a SQLite file, or a PostgreSQL database dropped afterwards."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"creditlens_scratch_{uuid.uuid4().hex[:10]}"
    await _postgres_execute(database_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _postgres_execute(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Redis (issue 16): tests use database 15 of the local Redis and empty it around each test.
# A test that asks for it fails, never skips, when Redis is not running. Two suites running
# at once on one machine (the SQLite and PostgreSQL legs in parallel) each set their own.
TEST_REDIS_URL = os.environ.get("CREDITLENS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    from redis.asyncio import Redis

    client = Redis.from_url(TEST_REDIS_URL)
    try:
        await client.flushdb()
        yield TEST_REDIS_URL
        await client.flushdb()
    finally:
        await client.aclose()
