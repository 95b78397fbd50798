"""Ingestion remembers the ids of keys and users it has committed (db/ingestion/known_ids.py).

What must never happen: an event counted under another key or user than the one it names.
That would take an id remembered from a registration that rolled back (the database may
give that id to another row later), or one remembered for another database.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from db import migrate
from db.engine import create_engine, writing
from db.ingestion.known_ids import KnownIds, Learned, known_ids
from db.ingestion.writer import IngestRejected, ingest, ingest_events, prepare
from tests.factories import event, make_tenant

AT = datetime(2026, 3, 2, 10, tzinfo=UTC)


class Abandoned(Exception):
    """Raised inside a write transaction to roll it back."""


async def _write_then_roll_back(engine, items, learned: Learned, *, now: datetime) -> None:  # type: ignore[no-untyped-def]
    async with writing(engine) as conn:
        valid = prepare(items, now=now)
        await ingest_events(conn, valid, now=now, known=known_ids(engine), learned=learned)
        raise Abandoned


async def _named(engine, table: str) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """For each stored event id, the external id of its key (or user): what it is counted
    under."""
    column = "api_key_id" if table == "api_keys" else "user_id"
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                f"SELECT e.event_id, t.external_id FROM usage_events AS e "
                f"JOIN {table} AS t ON t.id = e.{column}"
            )
        )
        named: dict[str, set[str]] = {}
        for event_id, external in rows:
            named.setdefault(external, set()).add(event_id)
        return named


async def test_an_id_from_a_rolled_back_registration_is_never_reused(engine, clock) -> None:  # type: ignore[no-untyped-def]
    tenant = await make_tenant(engine, now=clock())
    first = await ingest(engine, [event(tenant.slug, AT, api_key="kept")], now=clock())
    assert first.accepted == 1

    # A write that registers key "lost" and user "gone", then rolls back: their ids were
    # read in that transaction (``learned``) but never committed.
    learned = Learned()
    lost = event(tenant.slug, AT, api_key="lost", user="gone")
    with pytest.raises(Abandoned):
        await _write_then_roll_back(engine, [lost], learned, now=clock())
    assert tuple(sorted(learned.tables)) == ("api_keys", "users")

    # Other keys and users take the ids the rolled back rows had (SQLite reuses them), then
    # the lost ones are named again: each event must be counted under the key it names.
    taker = event(tenant.slug, AT, api_key="taker", user="taker")
    again = event(tenant.slug, AT, api_key="lost", user="gone")
    for item in (taker, again):
        assert (await ingest(engine, [item], now=clock())).accepted == 1

    keys = await _named(engine, "api_keys")
    assert keys["lost"] == {again["id"]}
    assert keys["taker"] == {taker["id"]}
    people = await _named(engine, "users")
    assert people["gone"] == {again["id"]}
    assert people["taker"] == {taker["id"]}


async def test_remembered_ids_count_every_event_under_its_own_key_and_user(engine, clock) -> None:  # type: ignore[no-untyped-def]
    tenants = [await make_tenant(engine, now=clock()) for _ in range(3)]
    sent: dict[str, tuple[str, str]] = {}
    for batch in range(6):
        items = []
        for i in range(40):
            tenant = tenants[(batch + i) % 3]
            # The same external ids in every organization: only the pair names a row.
            item = event(
                tenant.slug,
                AT + timedelta(minutes=i),
                api_key=f"key-{i % 5}",
                user=f"user-{(i + batch) % 7}",
            )
            sent[item["id"]] = (tenant.slug, item["api_key"], item["user"])  # type: ignore[assignment]
            items.append(item)
        assert (await ingest(engine, items, now=clock())).accepted == len(items)

    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT e.event_id, o.slug, k.external_id, u.external_id FROM usage_events AS e "
                "JOIN organizations AS o ON o.id = e.organization_id "
                "JOIN api_keys AS k ON k.id = e.api_key_id AND k.organization_id = o.id "
                "JOIN users AS u ON u.id = e.user_id AND u.organization_id = o.id"
            )
        )
        stored = {event_id: (slug, key, user) for event_id, slug, key, user in rows}
    assert stored == sent


async def test_each_database_has_its_own_memory(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    """Two databases where the same (organization, key) pair has different ids."""
    engines = []
    for name, order in (("one", ["a", "b"]), ("two", ["b", "a"])):
        url = f"sqlite+aiosqlite:///{tmp_path / name}.db"
        await asyncio.to_thread(migrate.upgrade, url)  # it runs its own event loop
        engine = create_engine(url)
        engines.append(engine)
        tenant = await make_tenant(engine, now=clock(), slug="same")
        for key in order:
            await ingest(engine, [event(tenant.slug, AT, api_key=key)], now=clock())
    try:
        for engine in engines:
            await ingest(engine, [event("same", AT, id="after", api_key="a")], now=clock())
            async with engine.connect() as conn:
                counted = await conn.execute(
                    text(
                        "SELECT k.external_id FROM usage_events AS e "
                        "JOIN api_keys AS k ON k.id = e.api_key_id WHERE e.event_id = 'after'"
                    )
                )
                assert counted.scalar_one() == "a"
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_committed_write_is_remembered_and_a_failed_one_is_not(engine, clock) -> None:  # type: ignore[no-untyped-def]
    tenant = await make_tenant(engine, now=clock())
    known = known_ids(engine)
    await ingest(engine, [event(tenant.slug, AT, api_key="k1", user="u1")], now=clock())
    async with engine.connect() as conn:
        key_id = (
            await conn.execute(text("SELECT id FROM api_keys WHERE external_id = 'k1'"))
        ).scalar_one()
    org = tenant.organization_id
    assert known.split("api_keys", [(org, "k1")]) == ({(org, "k1"): key_id}, [])

    # A batch naming an unknown organization is refused before it writes: nothing new known.
    refused = [event(tenant.slug, AT, api_key="k2"), event("nobody", AT, api_key="k3")]
    with pytest.raises(IngestRejected):
        await ingest(engine, refused, now=clock())
    assert known.split("api_keys", [(org, "k2")]) == ({}, [(org, "k2")])


def test_memory_is_bounded() -> None:
    known = KnownIds(limit=3)
    learned = Learned()
    learned.add("users", {(1, "a"): 1, (1, "b"): 2})
    known.remember(learned)
    assert known.split("users", [(1, "a"), (1, "c")]) == ({(1, "a"): 1}, [(1, "c")])
    more = Learned()
    more.add("users", {(1, "c"): 3, (1, "d"): 4})
    known.remember(more)  # past the limit: forgets the older ids, keeps these
    assert known.split("users", [(1, "a"), (1, "c"), (1, "d")]) == (
        {(1, "c"): 3, (1, "d"): 4},
        [(1, "a")],
    )
    assert known.split("api_keys", [(1, "a")]) == ({}, [(1, "a")])


async def test_writing_with_the_memory_matches_writing_without(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    """The same batches written through ``ingest`` (remembering) and through
    ``ingest_events`` without memory store the same rows."""
    stored = []
    for name, remembering in (("with", True), ("without", False)):
        url = f"sqlite+aiosqlite:///{tmp_path / name}.db"
        await asyncio.to_thread(migrate.upgrade, url)  # it runs its own event loop
        engine = create_engine(url)
        try:
            tenant = await make_tenant(engine, now=clock(), slug="org")
            for batch in range(4):
                items = [
                    event(
                        tenant.slug,
                        AT + timedelta(minutes=i),
                        id=f"e-{batch}-{i}",
                        api_key=f"k{(i * batch) % 4}",
                        user=None if i % 3 == 0 else f"u{i % 5}",
                    )
                    for i in range(25)
                ]
                if remembering:
                    await ingest(engine, items, now=clock())
                else:
                    async with writing(engine) as conn:
                        await ingest_events(conn, prepare(items, now=clock()), now=clock())
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT e.event_id, k.external_id, k.id, u.external_id, u.id "
                        "FROM usage_events AS e JOIN api_keys AS k ON k.id = e.api_key_id "
                        "LEFT JOIN users AS u ON u.id = e.user_id ORDER BY e.event_id"
                    )
                )
                stored.append([tuple(row) for row in rows])
        finally:
            await engine.dispose()
    assert stored[0] == stored[1]
    assert len(stored[0]) == 100


async def test_organizations_by_slug_and_id_are_remembered_misses_never(engine, clock) -> None:  # type: ignore[no-untyped-def]
    tenant = await make_tenant(engine, now=clock())
    org = tenant.organization_id
    known = known_ids(engine)
    by_slug = event(tenant.slug, AT)
    by_id = event(org, AT)
    assert (await ingest(engine, [by_slug, by_id], now=clock())).accepted == 2
    assert known.split("organizations", [tenant.slug, org]) == ({tenant.slug: org, org: org}, [])

    # An organization not there yet is refused, then accepted once it exists: a miss is
    # never remembered.
    with pytest.raises(IngestRejected):
        await ingest(engine, [event("later", AT)], now=clock())
    later = await make_tenant(engine, now=clock(), slug="later")
    assert (await ingest(engine, [event("later", AT, id="late")], now=clock())).accepted == 1
    async with engine.connect() as conn:
        stored = await conn.execute(
            text("SELECT organization_id FROM usage_events WHERE event_id = 'late'")
        )
        assert stored.scalar_one() == later.organization_id
