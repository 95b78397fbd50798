"""A key's id, once found, is kept by the worker (db/queries/directory.py ``known_key_ids``)
and the key's reports never show stale or foreign data: another organization's key of the
same name is its own, a key created since is found at once, new events are counted.

Every request here is executed (the ``uncached`` app, no answer cache), so each answer comes
from the report statement, not from a kept answer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import resolvers.usage
from db.queries.directory import find_api_key, known_key_ids
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events

KEY_REPORT = """
query($key: ID) {
  organization { endpointUsage(timeRange: {preset: LAST_30_DAYS}, keyId: $key) { endpoint calls } }
}
"""


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The external ids the key statement was run for."""
    seen: list[str] = []

    async def counted(conn: Any, *, organization_id: int, external_id: str) -> Any:
        seen.append(external_id)
        return await find_api_key(conn, organization_id=organization_id, external_id=external_id)

    monkeypatch.setattr(resolvers.usage, "find_api_key", counted)
    return seen


async def _calls(client, token: str, key: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    body = (await graphql(client, token, KEY_REPORT, {"key": key})).json()
    if "errors" in body:
        return {"error": body["errors"][0]["extensions"]["code"]}
    return {row["endpoint"]: row["calls"] for row in body["data"]["organization"]["endpointUsage"]}


async def test_a_keys_id_is_read_once_and_its_new_events_are_counted(uncached, clock, lookups):
    client, engine = uncached
    now = clock()
    tenant = await make_tenant(engine, now=now)
    ingest = await make_ingest_token(engine, now=now)
    sent = [event(tenant.slug, now - timedelta(days=day), api_key="key-a") for day in range(3)]
    assert (await post_events(client, ingest, sent)).status_code == 200
    assert await _calls(client, tenant.token, "key-a") == {"/v2/person": 3}
    assert await _calls(client, tenant.token, "key-a") == {"/v2/person": 3}
    assert lookups == ["key-a"]
    # The memo holds the id, never figures: a new event is in the next answer.
    more = [event(tenant.slug, now - timedelta(hours=1), api_key="key-a", endpoint="/v2/co")]
    assert (await post_events(client, ingest, more)).status_code == 200
    assert await _calls(client, tenant.token, "key-a") == {"/v2/person": 3, "/v2/co": 1}
    assert lookups == ["key-a"]


async def test_another_organizations_key_of_the_same_name_is_its_own(uncached, clock, lookups):
    client, engine = uncached
    now = clock()
    first = await make_tenant(engine, now=now)
    second = await make_tenant(engine, now=now)
    ingest = await make_ingest_token(engine, now=now)
    sent = [event(first.slug, now - timedelta(days=1), api_key="shared")] + [
        event(second.slug, now - timedelta(days=day), api_key="shared", endpoint="/v2/other")
        for day in range(1, 3)
    ]
    assert (await post_events(client, ingest, sent)).status_code == 200
    for _ in range(2):  # the second time both ids come from the memo
        assert await _calls(client, first.token, "shared") == {"/v2/person": 1}
        assert await _calls(client, second.token, "shared") == {"/v2/other": 2}
    assert lookups == ["shared", "shared"]
    known = known_key_ids(engine)
    ids = {known.get((tenant.organization_id, "shared")) for tenant in (first, second)}
    assert None not in ids
    assert len(ids) == 2


async def test_a_key_unknown_at_first_is_found_once_created(uncached, clock, lookups):
    client, engine = uncached
    now = clock()
    tenant = await make_tenant(engine, now=now)
    ingest = await make_ingest_token(engine, now=now)
    assert await _calls(client, tenant.token, "key-new") == {"error": "NOT_FOUND"}
    assert await _calls(client, tenant.token, "key-new") == {"error": "NOT_FOUND"}
    sent = [event(tenant.slug, now - timedelta(hours=2), api_key="key-new")]
    assert (await post_events(client, ingest, sent)).status_code == 200
    assert await _calls(client, tenant.token, "key-new") == {"/v2/person": 1}
    # Not found is never kept: every request read the key (a refused planned run reads it
    # again the usual way, bench/PROPOSALS.md R36), until it was found; then no more.
    read = len(lookups)
    assert read >= 3
    assert await _calls(client, tenant.token, "key-new") == {"/v2/person": 1}
    assert len(lookups) == read


async def test_key_ids_are_kept_per_database(uncached, second_worker, engine):
    _, own = uncached
    read_engine = own.execution_options(isolation_level="AUTOCOMMIT")
    # A copy of an engine with other options reads the same database: the same memo.
    assert known_key_ids(read_engine) is known_key_ids(own)
    # Another app has its own engine, hence its own memo (it may be another database).
    assert known_key_ids(second_worker.app.state.engine) is not known_key_ids(own)
    assert known_key_ids(engine) is not known_key_ids(own)
