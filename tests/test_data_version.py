"""``organizations.data_version`` (migration 0008, db/data_version.py): every write that can
change an answer about an organization's usage, keys or users moves it up in the write's
transaction; writes that change nothing leave it; the authentication statement reads it."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import column, inspect, select, table, text

from app.file_ingest import ingest_stream
from db import migrate
from db.engine import create_engine, writing
from db.ingestion import IngestRejected, ingest
from db.queries.tokens import authenticate
from db.tables import api_keys, organizations, usage_events
from tests.factories import PEPPER, add_user, event, make_ingest_token, make_tenant, post_events


async def versions(engine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(organizations.c.slug, organizations.c.data_version))
        return {slug: int(version) for slug, version in rows}


async def last_event_at(engine, slug: str) -> datetime | None:
    async with engine.connect() as conn:
        o = organizations.c
        return (await conn.execute(select(o.last_event_at).where(o.slug == slug))).scalar_one()


async def count(engine, which) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(text("count(*)")).select_from(which))).scalar_one())


@pytest.fixture
async def two(engine, clock):
    """Two organizations, "acme" and "globex", and an ingest token."""
    await make_tenant(engine, now=clock(), slug="acme")
    await make_tenant(engine, now=clock(), slug="globex")
    return await make_ingest_token(engine, now=clock())


async def test_a_batch_with_new_events_moves_each_of_its_organizations_once(
    client, engine, clock, two
):
    before = await versions(engine)
    at = clock() - timedelta(minutes=5)
    batch = [event("acme", at), event("acme", at), event("globex", at)]
    response = await post_events(client, two, batch)
    assert response.json()["accepted"] == 3
    assert await versions(engine) == {"acme": before["acme"] + 1, "globex": before["globex"] + 1}

    await post_events(client, two, [event("acme", at)])
    assert await versions(engine) == {"acme": before["acme"] + 2, "globex": before["globex"] + 1}


async def test_a_batch_of_duplicates_moves_nothing(client, engine, clock, two):
    batch = [event("acme", clock() - timedelta(minutes=5), user="ann") for _ in range(3)]
    await post_events(client, two, batch)
    before = await versions(engine)
    latest = await last_event_at(engine, "acme")

    response = await post_events(client, two, batch)
    assert response.json() == {"accepted": 0, "duplicates": 3}
    assert await versions(engine) == before
    assert await last_event_at(engine, "acme") == latest


async def test_a_rejected_batch_writes_nothing_and_moves_nothing(client, engine, clock, two):
    before = await versions(engine)
    at = clock() - timedelta(minutes=5)
    # One valid event beside an invalid one, and one beside an unknown organization.
    for bad in (event("acme", at, credits=-1), event("nobody", at)):
        response = await post_events(client, two, [event("acme", at, api_key="new"), bad])
        assert response.status_code == 422, response.text
    with pytest.raises(IngestRejected):
        await ingest(engine, [event("globex", at), event("nobody", at)], now=clock())
    assert await versions(engine) == before
    assert await count(engine, usage_events) == 0
    assert await count(engine, api_keys) == 0


async def test_older_events_move_the_version_but_not_last_event_at(client, engine, clock, two):
    newest = clock() - timedelta(minutes=1)
    await post_events(client, two, [event("acme", newest)])
    before = await versions(engine)

    await post_events(client, two, [event("acme", newest - timedelta(days=3))])
    assert await versions(engine) == {**before, "acme": before["acme"] + 1}
    assert await last_event_at(engine, "acme") == newest

    later = newest + timedelta(seconds=30)
    await post_events(client, two, [event("acme", later), event("acme", newest)])
    assert await versions(engine) == {**before, "acme": before["acme"] + 2}
    assert await last_event_at(engine, "acme") == later


async def test_a_resent_event_naming_a_new_key_moves_the_version(client, engine, clock, two):
    """A duplicate stores no event, but its key or user is registered all the same (a
    producer that resent an event with other fields): the list of keys changed."""
    first = event("acme", clock() - timedelta(minutes=5), api_key="key-a", user="ann")
    await post_events(client, two, [first])
    before = await versions(engine)
    keys = await count(engine, api_keys)

    resent = {**first, "api_key": "key-b", "user": "bob"}
    response = await post_events(client, two, [resent])
    assert response.json() == {"accepted": 0, "duplicates": 1}
    assert await count(engine, api_keys) == keys + 1
    assert await versions(engine) == {**before, "acme": before["acme"] + 1}


async def test_a_new_user_moves_the_version_of_its_organization_only(engine, clock):
    acme = await make_tenant(engine, now=clock(), slug="acme")
    await make_tenant(engine, now=clock(), slug="globex")
    before = await versions(engine)
    await add_user(engine, acme, role="MEMBER", now=clock())
    assert await versions(engine) == {**before, "acme": before["acme"] + 1}


async def test_the_authentication_statement_reads_the_current_version(engine, clock):
    tenant = await make_tenant(engine, now=clock(), slug="acme")

    async def seen() -> int:
        async with engine.connect() as conn:
            principal = await authenticate(conn, token=tenant.token, pepper=PEPPER, now=clock())
        assert principal is not None
        assert principal.organization is not None
        return principal.organization.data_version

    first = await seen()
    assert first == (await versions(engine))["acme"]
    await ingest(engine, [event("acme", clock() - timedelta(minutes=1))], now=clock())
    assert await seen() == first + 1


async def test_a_file_moves_the_version_once_per_batch_with_new_events(engine, clock, two):
    at = clock() - timedelta(hours=1)
    events = [event("acme", at + timedelta(seconds=index)) for index in range(5)]
    # Batches of 2: [0, 1], [2, 3] and [4]; the second file repeats the first's events.
    stored = events[:2]
    lines = "".join(json.dumps(item) + "\n" for item in stored)
    await ingest_stream(engine, io.StringIO(lines), kind="ndjson", batch_size=2, progress=False)
    before = await versions(engine)

    lines = "".join(json.dumps(item) + "\n" for item in events)
    summary = await ingest_stream(
        engine, io.StringIO(lines), kind="ndjson", batch_size=2, progress=False
    )
    assert (summary.accepted, summary.duplicates) == (3, 2)
    assert await versions(engine) == {**before, "acme": before["acme"] + 2}


async def test_concurrent_batches_all_commit_and_each_moves_the_version(
    engine, database_url, clock, two
):
    """Batches of the same organizations at once, from several engines (as separate
    processes would): none fails (no deadlock on the organization rows), and each
    organization's version rises by the number of batches that stored one of its events."""
    at = clock() - timedelta(hours=2)
    keys = ["key-a", "key-b", "key-c"]
    # Keys and users registered first, so a batch of duplicates registers nothing.
    warm = [event(slug, at, api_key=key, user="ann") for slug in ("acme", "globex") for key in keys]
    await ingest(engine, warm, now=clock())
    before = await versions(engine)

    batches = []
    for number in range(12):
        slugs = ["acme", "globex"] if number % 2 else ["globex", "acme"]
        batches.append(
            [
                event(
                    slugs[index % 2],
                    at + timedelta(seconds=number * 100 + index),
                    api_key=keys[(number + index) % 3],
                    user="ann",
                )
                for index in range(40)
            ]
        )
    # Two batches of nothing but stored events, and one that repeats another's events.
    batches.append(warm)
    batches.append(list(warm))
    batches.append(list(batches[0]))

    engines = [engine, create_engine(database_url), create_engine(database_url)]
    try:
        results = await asyncio.gather(
            *(
                ingest(engines[number % len(engines)], batch, now=clock())
                for number, batch in enumerate(batches)
            )
        )
    finally:
        for other in engines[1:]:
            await other.dispose()

    assert sum(result.accepted for result in results) == 12 * 40
    async with engine.connect() as conn:
        ids = dict((await conn.execute(select(organizations.c.slug, organizations.c.id))).all())
    expected = dict(before)
    for result in results:
        for slug, ident in ids.items():
            expected[slug] += ident in result.organization_ids
    assert await versions(engine) == expected
    # The 12 batches with new events, for each organization; the repeat of batch 0 added
    # none, whichever of the two went first.
    assert expected == {"acme": before["acme"] + 12, "globex": before["globex"] + 12}


# The organizations table as revision 0007 has it (db.tables describes the head).
organizations_0007 = table(
    "organizations",
    column("id"),
    column("slug"),
    column("name"),
    column("plan"),
    column("timezone"),
    column("credit_allowance"),
    column("billing_cycle_anchor"),
    column("created_at"),
)


async def test_0008_adds_the_version_at_zero_and_goes_back(scratch_url):
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    await asyncio.to_thread(migrate.upgrade, scratch_url, "0007")
    engine = create_engine(scratch_url)
    try:
        async with writing(engine) as conn:
            await conn.execute(
                organizations_0007.insert().values(
                    id=1,
                    slug="acme",
                    name="Acme",
                    plan="PRO",
                    timezone="UTC",
                    credit_allowance=1000,
                    billing_cycle_anchor=anchor,
                    created_at=anchor,
                )
            )
        await asyncio.to_thread(migrate.upgrade, scratch_url)
        assert await versions(engine) == {"acme": 0}
        await ingest(engine, [event("acme", anchor + timedelta(hours=1))], now=anchor)
        assert await versions(engine) == {"acme": 1}

        await asyncio.to_thread(migrate.downgrade, scratch_url, "0007")
        async with engine.connect() as conn:
            names = list((await conn.execute(select(organizations_0007.c.slug))).scalars())
            kept = await conn.run_sync(
                lambda sync: [found["name"] for found in inspect(sync).get_columns("organizations")]
            )
    finally:
        await engine.dispose()
    assert names == ["acme"]
    assert "data_version" not in kept
    assert "last_event_at" in kept
