"""A page's tables read at once (``Loaders.endpoint_usage_of_keys``) keep the DataLoader's
rules: the same values as ``load_many``, one read shared with any load of the same keys
(before, during or after it), a failure met by every load of the keys, and a cancelled
read leaving nothing behind. On both databases, through real reads."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from db.loaders import KeyRangeKey, Loaders, Reads
from db.queries.directory import find_api_key
from db.session import RequestDatabase
from domain.records import Share
from tests.factories import STORAGE, tenant_with_daily_calls


class CountedReads(Reads):
    """The real reads, counted; a read may be held at a gate."""

    def __init__(self, db: RequestDatabase) -> None:
        super().__init__(db)
        self.reads: list[list[KeyRangeKey]] = []
        self.gate: asyncio.Event | None = None

    async def endpoint_usage_by_key(self, keys: Sequence[KeyRangeKey]) -> list[list[Share]]:
        self.reads.append(list(keys))
        if self.gate is not None:
            await self.gate.wait()
        return await super().endpoint_usage_by_key(keys)


class CountedLoaders(Loaders):
    """The real loaders over counted reads (``reads``, ``gate``: those of the reads)."""

    def __init__(self, db: RequestDatabase) -> None:
        self.counted = CountedReads(db)
        super().__init__(self.counted)

    @property
    def reads(self) -> list[list[KeyRangeKey]]:
        return self.counted.reads

    @property
    def gate(self) -> asyncio.Event | None:
        return self.counted.gate

    @gate.setter
    def gate(self, gate: asyncio.Event | None) -> None:
        self.counted.gate = gate


@pytest.fixture(params=STORAGE)
async def page(request, uncached, clock):  # type: ignore[no-untyped-def]
    """The engine and the keys of a page (key-0..2 of a tenant with 60 days of calls)."""
    client, engine = uncached
    now = clock()
    tenant = await tenant_with_daily_calls(
        client, engine, request.param, now=now, timezone="Europe/Paris", days=60, hours_before=2
    )
    ids = []
    async with engine.connect() as conn:
        for name in ("key-0", "key-1", "key-2"):
            key = await find_api_key(conn, organization_id=tenant.organization_id, external_id=name)
            assert key is not None
            ids.append(key.id)
    start, end = now - timedelta(days=30), now
    keys = [(tenant.organization_id, key_id, start, end, None) for key_id in ids]
    return engine, keys


async def _loaders(engine: Any) -> tuple[RequestDatabase, CountedLoaders]:
    db = RequestDatabase(engine)
    return db, CountedLoaders(db)


async def _held_read(loaders: CountedLoaders, keys: list[KeyRangeKey]) -> asyncio.Future[Any]:
    """A page's read of ``keys``, claimed and held at the gate until it is opened."""
    loaders.gate = asyncio.Event()
    read = asyncio.ensure_future(loaders.endpoint_usage_of_keys(keys))
    await asyncio.sleep(0)
    assert loaders.reads == [keys]  # claimed and reading
    return read


async def test_one_read_gives_what_load_many_gives(page):
    engine, keys = page
    db, loaders = await _loaders(engine)
    other_db, other = await _loaders(engine)
    try:
        at_once = await loaders.endpoint_usage_of_keys(keys)
        assert at_once == await other.endpoint_usage_by_key.load_many(keys)
        assert all(at_once)  # every key has rows: the comparison could fail
        assert loaders.reads == [keys]
        # Afterwards the keys are the loader's: a load reads nothing more.
        assert await loaders.endpoint_usage_by_key.load(keys[1]) == at_once[1]
        assert await loaders.endpoint_usage_of_keys(keys) == at_once
        assert loaders.reads == [keys]
    finally:
        await db.close()
        await other_db.close()


async def test_loads_during_the_read_wait_for_it(page):
    engine, keys = page
    db, loaders = await _loaders(engine)
    try:
        read = await _held_read(loaders, keys)
        during = asyncio.ensure_future(loaders.endpoint_usage_by_key.load(keys[2]))
        page_again = asyncio.ensure_future(loaders.endpoint_usage_of_keys(keys[:2]))
        assert loaders.gate is not None
        loaders.gate.set()
        tables = await read
        assert await during == tables[2]
        assert await page_again == tables[:2]
        assert loaders.reads == [keys]
    finally:
        await db.close()


async def test_keys_the_loader_holds_go_through_it(page):
    engine, keys = page
    db, loaders = await _loaders(engine)
    try:
        first = await loaders.endpoint_usage_by_key.load(keys[0])
        tables = await loaders.endpoint_usage_of_keys(keys)
        assert tables[0] == first
        # The loader's batch read only the keys it did not hold.
        assert loaders.reads == [[keys[0]], keys[1:]]
    finally:
        await db.close()


async def test_a_failed_read_is_met_by_every_load_of_its_keys(page, caplog):
    engine, keys = page
    db, loaders = await _loaders(engine)
    await db.close()  # every read is refused from now on
    with pytest.raises(Exception, match="already been answered"):
        await loaders.endpoint_usage_of_keys(keys)
    with pytest.raises(Exception, match="already been answered"):
        await loaders.endpoint_usage_by_key.load(keys[1])
    assert len(loaders.reads) == 1  # the failure is kept, as after a failed batch
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    assert "never retrieved" not in caplog.text


async def test_a_cancelled_read_leaves_the_keys_to_read_again(page):
    engine, keys = page
    db, loaders = await _loaders(engine)
    try:
        read = await _held_read(loaders, keys)
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        loaders.gate = None
        tables = await loaders.endpoint_usage_of_keys(keys)
        assert all(tables)
        assert len(loaders.reads) == 2
    finally:
        await db.close()
