"""A request's one connection outlives none of its fields, even when a field fails; it is
one pooled connection, returned at the end, never reopened. The token statement takes
none: it runs on the worker's statement line (PostgreSQL, db.statement_line) or the loop's
reader (SQLite, db.loop_reads), and sees every commit at once."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
import weakref
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DisconnectionError, OperationalError

from app.availability import is_outage
from app.settings import Settings
from db import migrate
from db.engine import create_engine
from db.loop_reads import LoopConnection
from db.queries.tokens import authenticate, revoke_token
from db.session import RequestDatabase, RequestFinished
from db.statement_line import LineConnection, StatementLine, statement_line
from tests.factories import (
    PEPPER,
    event,
    graphql,
    make_ingest_token,
    make_tenant,
    post_events,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
QUERY = """
{
  organization {
    usage(timeRange: {start: "2026-06-01T00:00:00Z", end: "2026-06-04T00:00:00Z"}) {
      calls
      series(granularity: HOUR) { calls }
      creditsConsumed
      bySource { source calls }
      byEndpoint { endpoint calls }
    }
  }
}
"""


@pytest.fixture
def settings(clean_database: str) -> Settings:
    return Settings(database_url=clean_database, max_series_points=48)


async def test_a_failing_field_beside_readers_answers_cleanly(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    ingest = await make_ingest_token(engine, now=clock())
    at = datetime(2026, 6, 2, tzinfo=UTC)
    events = [event(tenant.slug, at + timedelta(minutes=n)) for n in range(50)]
    assert (await post_events(client, ingest, events)).status_code == 200
    for _ in range(5):
        response = await graphql(client, tenant.token, QUERY)
        assert response.status_code == 200
        body = response.json()
        assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
        assert "48" in body["errors"][0]["message"]
    # Fields still running when the response was made must not leave a connection open:
    # they give it back once they stop (polled, so a loaded machine cannot fail it; a leak
    # never gives it back).
    for _ in range(100):
        if engine.pool.checkedout() == 0:
            break
        await asyncio.sleep(0.1)
    assert engine.pool.checkedout() == 0
    follow_up = await graphql(
        client,
        tenant.token,
        "{ organization { usage(timeRange: {preset: LAST_30_DAYS}) { calls } } }",
    )
    assert follow_up.json() == {"data": {"organization": {"usage": {"calls": 50}}}}


def _checked_out(engine) -> int:  # type: ignore[no-untyped-def]
    return int(engine.sync_engine.pool.checkedout())


async def test_the_token_statement_takes_no_pooled_connection_and_the_queries_one(engine, clock):
    """The token statement runs on the worker's statement line (PostgreSQL) or the loop's
    reader (SQLite): no pooled connection at all. The queries then take one, which a later
    token statement of the same request uses (no second connection)."""
    tenant = await make_tenant(engine, now=clock())
    before = _checked_out(engine)
    db = RequestDatabase(engine)
    async with db.statement_connection() as conn:
        principal = await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
        assert principal is not None
        assert principal.organization is not None
        assert principal.organization.id == tenant.organization_id
    assert _checked_out(engine) == before
    async with db.connection() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    async with db.statement_connection() as conn:
        again = await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
        assert again == principal
    assert _checked_out(engine) == before + 1
    await db.close()
    assert _checked_out(engine) == before
    for use in (db.statement_connection, db.connection):
        with pytest.raises(RequestFinished):
            async with use():
                pass
    assert _checked_out(engine) == before


async def test_a_request_that_only_authenticates_returns_its_connection(engine, clock):
    tenant = await make_tenant(engine, now=clock())
    before = _checked_out(engine)
    for token, found in ((tenant.token, True), ("cl_unknown", False)):
        db = RequestDatabase(engine)
        async with db.statement_connection() as conn:
            principal = await authenticate(conn, token=token, pepper=PEPPER, now=clock())
        assert (principal is not None) is found
        await db.close()
        assert _checked_out(engine) == before


async def test_the_connection_keeps_the_read_engines_isolation_level(engine, clock, is_postgres):
    """Built around a connection the token statement already used, the request's
    SQLAlchemy connection still gets the read engine's execution options (autocommit on
    PostgreSQL, app.graphql_route), and the pool gets the connection back without them."""
    reader = engine.execution_options(isolation_level="AUTOCOMMIT") if is_postgres else engine
    tenant = await make_tenant(engine, now=clock())
    db = RequestDatabase(reader)
    async with db.statement_connection() as conn:
        assert await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
    async with db.connection() as conn:
        assert _autocommit(await conn.get_raw_connection()) is is_postgres
    await db.close()
    if is_postgres:
        async with engine.connect() as conn:
            assert _autocommit(await conn.get_raw_connection()) is False


async def test_a_requests_first_connection_is_checked_out_and_wrapped_in_one_hop(
    engine, clock, is_postgres, monkeypatch
):
    """No statement took a pooled connection before (the token's ran on the line or the
    loop's reader): the checkout and SQLAlchemy's ``Connection`` are made in one greenlet
    hop, as ``AsyncEngine.connect`` makes them (R41), with the read engine's options, and
    the connection goes back to the pool at the end."""
    import db.session as session
    import db.statement_line as line

    hops: list[object] = []
    spawn = session.greenlet_spawn

    async def counting(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        hops.append(fn)
        return await spawn(fn, *args, **kwargs)

    await make_tenant(engine, now=clock())  # the fixtures' own connections are back
    for module in (session, line):  # where a request's connection is made
        monkeypatch.setattr(module, "greenlet_spawn", counting)
    reader = engine.execution_options(isolation_level="AUTOCOMMIT") if is_postgres else engine
    before = _checked_out(engine)
    db = RequestDatabase(reader)
    async with db.connection() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        assert _autocommit(await conn.get_raw_connection()) is is_postgres
    assert len(hops) == 1
    assert _checked_out(engine) == before + 1
    await db.close()
    assert _checked_out(engine) == before


def _autocommit(pooled) -> bool:  # type: ignore[no-untyped-def]
    """Whether the driver adapter runs without BEGIN (SQLAlchemy's AUTOCOMMIT on asyncpg
    is the adapter's, the server's level stays READ COMMITTED)."""
    return bool(getattr(pooled.dbapi_connection, "autocommit", False))


async def _first_use(db: RequestDatabase, use: str) -> None:
    async with getattr(db, use)() as conn:
        if use == "statement_connection":
            await authenticate(conn, token="cl_unknown", pepper=PEPPER, now=NOW)


async def test_a_database_that_cannot_be_reached_is_an_outage(tmp_path, is_postgres):
    """The first use of a request's connection fails as ``AsyncEngine.connect`` fails, so
    the routes answer 503 with Retry-After (app.availability), not 500. (On SQLite the
    token statement's first try, on the loop's reader, cannot open the file either, and
    the statement is handed to the request's connection, which fails as before; the
    reader never creates the file.)"""
    url = (
        "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
        if is_postgres
        else f"sqlite+aiosqlite:///{tmp_path}/missing/directory/file.db"
    )
    threads = set(threading.enumerate())
    engine = create_engine(url)
    try:
        for use in ("statement_connection", "connection"):
            db = RequestDatabase(engine)
            with pytest.raises((OSError, OperationalError)) as caught:
                await _first_use(db, use)
            assert is_outage(caught.value), repr(caught.value)
            await db.close()
        assert not (tmp_path / "missing").exists()
    finally:
        await engine.dispose()
        # aiosqlite stops the thread of a connection that failed to open by a call that
        # answers on this event loop: let it answer before the test's loop is closed (it
        # raised "Event loop is closed" into the next test otherwise).
        for thread in set(threading.enumerate()) - threads:
            thread.join(timeout=10)


async def test_connections_the_database_dropped_are_replaced(
    client, engine, clock, database_url, is_postgres
):
    """A PostgreSQL restart or failover drops every pooled connection. The statements that
    run on the driver's own connection (the token, the report) must invalidate a dead one as
    SQLAlchemy does: a request on it is answered 503 with Retry-After, and the next ones get
    new connections. (Before, the dead connection went back to the pool and every later
    request on it was a 500, until the server was restarted.) SQLite has no connection to
    drop: its requests must simply go on being answered."""
    tenant = await make_tenant(engine, now=clock())
    query = "{ organization { usage(timeRange: {preset: LAST_30_DAYS}) { calls } } }"
    assert (await graphql(client, tenant.token, query)).status_code == 200
    if is_postgres:
        url = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        admin = await asyncpg.connect(url)
        try:
            dropped = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert dropped >= 1
    answers = [await graphql(client, tenant.token, query) for _ in range(12)]
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 503}, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["Retry-After"]
    assert statuses[-3:] == [200, 200, 200], statuses
    if is_postgres:
        assert 503 in statuses  # the dead connection was met, and answered as an outage


async def test_a_token_the_loop_reader_cannot_read_at_once_is_read_the_usual_way(tmp_path, clock):
    """SQLite (its own file, on either leg): the token statement runs on the loop's own
    reader (db.loop_reads), which never waits. While another connection holds the file
    exclusively, the reader fails at once and the statement goes to the request's pooled
    connection, which waits for the lock as every statement did before (busy timeout) and
    answers; the reader answers again afterwards."""
    path = tmp_path / "locked.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    try:
        tenant = await make_tenant(engine, now=clock())
        # In WAL mode every open connection keeps a shared lock on the file: none may be
        # open for another to take it exclusively.
        await engine.dispose()
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE organizations SET name = name")
        released = threading.Event()

        def release() -> None:
            holder.execute("COMMIT")
            holder.close()  # the exclusive lock goes with the connection
            released.set()

        timer = threading.Timer(0.5, release)
        timer.start()
        try:
            db = RequestDatabase(engine)
            async with db.statement_connection() as conn:
                principal = await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
                assert _checked_out(engine) == 1  # the fallback took the request's connection
            assert released.is_set()  # answered once the lock went, not around it
            assert principal is not None
            assert principal.organization is not None
            assert principal.organization.id == tenant.organization_id
            await db.close()
        finally:
            timer.join()
        db = RequestDatabase(engine)
        async with db.statement_connection() as conn:
            assert await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
            assert _checked_out(engine) == 0
        await db.close()
    finally:
        await engine.dispose()


async def test_a_revoked_token_is_refused_by_the_next_statement(engine, clock):
    """Whichever connection runs the token statement (the loop's reader on SQLite), a
    revocation committed by another connection is seen by the very next statement."""
    tenant = await make_tenant(engine, now=clock())
    db = RequestDatabase(engine)
    async with db.statement_connection() as conn:
        principal = await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
    await db.close()
    assert principal is not None
    other = create_engine(engine.url.render_as_string(hide_password=False))
    try:
        async with other.begin() as conn:
            assert await revoke_token(conn, token_id=principal.token_id, now=clock())
    finally:
        await other.dispose()
    db = RequestDatabase(engine)
    async with db.statement_connection() as conn:
        assert await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock()) is None
    await db.close()


async def test_concurrent_token_statements_each_get_their_own_principal(engine, clock, is_postgres):
    """Forty requests authenticating at once: each gets its own principal, and every
    connection they took is back in the pool at the end. On SQLite none takes one (the
    loop's reader); on PostgreSQL those that find the worker's line busy take their pooled
    connection, as before the line (the next test)."""
    kind = LineConnection if is_postgres else LoopConnection
    tenants = [await make_tenant(engine, now=clock()) for _ in range(4)]
    before = _checked_out(engine)

    async def sign_in(token: str) -> tuple[int | None, int]:
        db = RequestDatabase(engine)
        try:
            async with db.statement_connection() as conn:
                assert isinstance(conn, kind)
                principal = await authenticate(conn, token=token, pepper=PEPPER, now=clock())
                checked_out = _checked_out(engine)
        finally:
            await db.close()
        assert principal is not None
        return principal.organization_id, checked_out

    asked = [tenants[n % 4] for n in range(40)]
    answers = await asyncio.gather(*(sign_in(tenant.token) for tenant in asked))
    assert [organization for organization, _ in answers] == [t.organization_id for t in asked]
    assert _checked_out(engine) == before
    if _line_of(engine, is_postgres) is None:
        assert {checked_out for _, checked_out in answers} == {before}


def _line_of(engine, is_postgres: bool) -> StatementLine | None:  # type: ignore[no-untyped-def]
    """The engine's statement line: PostgreSQL's; SQLite has none (the loop's reader)."""
    line = statement_line(engine)
    assert (line is not None) is is_postgres
    return line


async def test_a_request_never_waits_for_the_statement_line(engine, clock, is_postgres):
    """PostgreSQL: while the line runs another statement (here a slow one), a request's
    token statement takes its pooled connection and is answered before that statement
    ends; once the line is free, a request takes no pooled connection at all."""
    tenant = await make_tenant(engine, now=clock())
    line = _line_of(engine, is_postgres)
    if line is None:
        return
    before = _checked_out(engine)
    slow = asyncio.create_task(line.fetchrow("SELECT pg_sleep(1)"))
    await asyncio.sleep(0)  # the task takes the line's lock before its first await
    assert not line.free(asyncio.get_running_loop())
    db = RequestDatabase(engine)
    async with db.statement_connection() as conn:
        principal = await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
        assert _checked_out(engine) == before + 1
    assert not slow.done()
    await db.close()
    assert principal is not None
    await slow
    db = RequestDatabase(engine)
    async with db.statement_connection() as conn:
        assert await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
        assert _checked_out(engine) == before
    await db.close()


async def test_the_statement_line_survives_a_failing_statement_and_closes_with_its_engine(
    database_url, is_postgres
):
    """A statement that fails (not the connection) leaves the line as it was; a lost
    connection fails the statement as an outage and the next one opens a new connection;
    disposing the engine closes the line's connection. (SQLite has no line: its loop's
    reader is tested above.)"""
    engine = create_engine(database_url)
    try:
        line = _line_of(engine.execution_options(isolation_level="AUTOCOMMIT"), is_postgres)
        if line is None:
            return
        assert line is statement_line(engine)  # one per engine, whatever its options
        first = await line.fetchrow("SELECT pg_backend_pid() AS pid")
        with pytest.raises(asyncpg.DivisionByZeroError):
            await line.fetchrow("SELECT 1 / 0")
        assert (await line.fetchrow("SELECT pg_backend_pid() AS pid"))["pid"] == first["pid"]
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first["pid"]})
        with pytest.raises(DisconnectionError) as lost:
            await line.fetchrow("SELECT pg_backend_pid() AS pid")
        assert is_outage(lost.value)
        second = await line.fetchrow("SELECT pg_backend_pid() AS pid")
        assert second["pid"] != first["pid"]
        driver = line._driver
        assert driver is not None
        assert not driver.is_closed()
    finally:
        await engine.dispose()
    assert driver.is_closed()


async def test_the_statement_line_belongs_to_the_loop_that_opened_it(engine, clock, is_postgres):
    """asyncpg's connection belongs to its event loop: while the line's connection is open,
    a request on another loop is not served by it (the pool's path is taken), and once the
    connection is gone the line may serve the next loop."""
    tenant = await make_tenant(engine, now=clock())
    line = _line_of(engine, is_postgres)
    if line is None:
        return
    loop = asyncio.get_running_loop()
    other = asyncio.new_event_loop()
    try:
        assert line.serves(loop)
        db = RequestDatabase(engine)
        async with db.statement_connection() as conn:
            assert await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
        await db.close()
        assert not line.serves(other)
        assert line.serves(loop)
        line.close()  # nothing open and nobody waiting: the next caller's loop
        assert line.serves(other)
        assert line.serves(loop)
        db = RequestDatabase(engine)
        async with db.statement_connection() as conn:
            assert isinstance(conn, LineConnection)
            assert await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
        await db.close()
        assert not line.serves(other)
    finally:
        other.close()


async def test_the_statement_line_does_not_keep_its_engine_alive(database_url, is_postgres):
    """Lines are kept per engine, weakly: an engine that was disposed and dropped (a test's,
    a worker's at shutdown) is collected with its line."""
    engine = create_engine(database_url)
    line = _line_of(engine, is_postgres)
    if line is not None:
        assert (await line.fetchrow("SELECT 1 AS one"))["one"] == 1
    gone = weakref.ref(engine.sync_engine)
    await engine.dispose()
    del engine, line
    gc.collect()
    assert gone() is None
