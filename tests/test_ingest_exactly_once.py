"""Exactly once under concurrent writers: overlapping batches sent at the same moment.

Several HTTP clients (each its own connection to the app) and several engines (each its own
pool, as separate processes would have) send batches that share event ids with each other
and within themselves. Whatever the interleaving, every id is stored once, the rollups sum
to the raw events, and the answers add up: accepted over all responses equals the ids
stored, accepted plus duplicates equals the events sent.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import httpx
import pytest

from db.engine import create_engine
from db.ingestion import ingest
from tests.factories import event, make_ingest_token, make_tenant, post_events
from tests.stored_totals import totals

CLIENTS = 6
BATCHES_PER_CLIENT = 4
BATCH_SIZE = 300


def _pool(slugs: list[str], start, count: int, rng: random.Random) -> list[dict]:
    """Distinct events over a few organizations, keys, endpoints, sources and users."""
    return [
        event(
            rng.choice(slugs),
            start + timedelta(seconds=7 * i),
            api_key=rng.choice(["key-a", "key-b", {"id": "key-c", "name": "CRM"}, None]),
            user=rng.choice(["ann", "bob", None]),
            source=rng.choice(["api", "crm_integration", "extension"]),
            endpoint=rng.choice(["/v2/person", "/v2/company", "prospecting/contact/enrich"]),
            credits=rng.choice([0, 1, 1, 2, 5]),
        )
        for i in range(count)
    ]


def _overlapping_batches(pool: list[dict], rng: random.Random) -> list[list[dict]]:
    """Batches drawn from one pool, so they overlap; some repeat an event inside."""
    batches = []
    for _ in range(CLIENTS * BATCHES_PER_CLIENT):
        batch = rng.sample(pool, BATCH_SIZE)
        batch.extend(rng.sample(batch, 10))
        rng.shuffle(batch)
        batches.append(batch)
    return batches


async def _check(engine, batches, answers, tenant_count_ids):
    sent = sum(len(batch) for batch in batches)
    unique_ids = {(item["organization"], item["id"]) for batch in batches for item in batch}
    stored = await totals(engine)
    assert stored.events == len(unique_ids) == tenant_count_ids
    assert stored.rollups_match_events()
    assert sum(answer["accepted"] for answer in answers) == len(unique_ids)
    assert sum(answer["accepted"] + answer["duplicates"] for answer in answers) == sent


@pytest.fixture
async def tenants(engine, clock):
    return [await make_tenant(engine, now=clock()) for _ in range(3)]


async def test_concurrent_http_clients_store_each_event_once(app, engine, clock, tenants):
    rng = random.Random(11)
    token = await make_ingest_token(engine, now=clock())
    pool = _pool([t.slug for t in tenants], clock() - timedelta(days=2), 2000, rng)
    batches = _overlapping_batches(pool, rng)
    used = {(item["organization"], item["id"]) for batch in batches for item in batch}

    async def client_sends(mine: list[list[dict]]) -> list[dict]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answers = []
            for batch in mine:
                response = await post_events(http, token, batch)
                assert response.status_code == 200, response.text
                answers.append(response.json())
            return answers

    per_client = [batches[i::CLIENTS] for i in range(CLIENTS)]
    results = await asyncio.gather(*(client_sends(mine) for mine in per_client))
    answers = [answer for result in results for answer in result]
    await _check(engine, batches, answers, len(used))

    # Sending everything again adds nothing.
    again = await asyncio.gather(*(client_sends(mine) for mine in per_client))
    assert all(answer["accepted"] == 0 for result in again for answer in result)
    assert (await totals(engine)).events == len(used)


async def test_concurrent_engines_store_each_event_once(database_url, engine, clock, tenants):
    """Separate engines, as separate server processes would have, racing on the same ids."""
    rng = random.Random(12)
    pool = _pool([t.slug for t in tenants], clock() - timedelta(days=1), 1500, rng)
    batches = _overlapping_batches(pool, rng)
    engines = [create_engine(database_url, pool_size=2) for _ in range(CLIENTS)]
    try:

        async def writer(own, mine):
            answers = []
            for batch in mine:
                result = await ingest(own, batch, now=clock())
                answers.append({"accepted": result.accepted, "duplicates": result.duplicates})
            return answers

        results = await asyncio.gather(
            *(writer(own, batches[i::CLIENTS]) for i, own in enumerate(engines))
        )
    finally:
        for own in engines:
            await own.dispose()
    answers = [answer for result in results for answer in result]
    used = {(item["organization"], item["id"]) for batch in batches for item in batch}
    await _check(engine, batches, answers, len(used))


async def test_same_batch_sent_by_many_at_once_is_accepted_by_exactly_one(
    database_url, engine, clock, tenants
):
    batch = _pool([tenants[0].slug], clock() - timedelta(hours=5), 500, random.Random(13))
    engines = [create_engine(database_url, pool_size=1) for _ in range(CLIENTS)]
    try:
        results = await asyncio.gather(*(ingest(own, batch, now=clock()) for own in engines))
    finally:
        for own in engines:
            await own.dispose()
    assert sorted(result.accepted for result in results) == [0] * (CLIENTS - 1) + [500]
    assert all(result.accepted + result.duplicates == 500 for result in results)
    stored = await totals(engine)
    assert stored.events == 500
    assert stored.credits == sum(item["credits"] for item in batch)
    assert stored.rollups_match_events()
