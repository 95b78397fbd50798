"""The driver's statements reach the pooled connection without a greenlet hop, and a
connection SQLAlchemy would have to revalidate is revalidated as SQLAlchemy does it
(db/driver.py)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy.ext.asyncio.engine as async_engine
from sqlalchemy import text
from sqlalchemy.exc import DisconnectionError, ResourceClosedError

from db.driver import driver_connection, pooled_connection


@pytest.fixture
def spawns(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The functions handed to ``greenlet_spawn`` by ``AsyncConnection``'s methods."""
    seen: list[Any] = []
    spawn = async_engine.greenlet_spawn

    async def counting(fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(fn)
        return await spawn(fn, *args, **kwargs)

    monkeypatch.setattr(async_engine, "greenlet_spawn", counting)
    return seen


async def test_a_live_connections_pooled_connection_is_read_without_a_greenlet(engine, spawns):
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        spawns.clear()
        pooled = await pooled_connection(conn)
        assert spawns == []
        assert pooled is await conn.get_raw_connection()
        assert driver_connection(pooled) is pooled.driver_connection is not None


async def test_an_invalidated_connection_is_reconnected_as_sqlalchemy_does(engine, spawns):
    async with engine.connect() as conn:
        before = await pooled_connection(conn)
        await conn.invalidate()
        assert conn.invalidated
        spawns.clear()
        pooled = await pooled_connection(conn)
        assert spawns, "revalidating may connect: it must run in SQLAlchemy's greenlet"
        assert pooled is not before
        assert driver_connection(pooled) is not None
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1


async def test_a_closed_connection_is_refused_as_sqlalchemy_refuses_it(engine):
    conn = await engine.connect()
    await conn.close()
    with pytest.raises(ResourceClosedError):
        await conn.get_raw_connection()
    with pytest.raises(ResourceClosedError):
        await pooled_connection(conn)


async def test_a_pooled_connection_without_its_driver_is_a_lost_connection(engine):
    pooled = await engine.raw_connection()
    try:
        pooled.invalidate()
        with pytest.raises(DisconnectionError):
            driver_connection(pooled)
    finally:
        pooled.close()
