"""API keys: pages, cursors, revoked keys, and per-key usage batched into one query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import update

from db.engine import writing
from db.tables import api_keys
from tests import oracle
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events
from tests.statements import recorded

PAGE = """
query($first: Int!, $after: String, $revoked: Boolean!) {
  organization {
    apiKeys(first: $first, after: $after, includeRevoked: $revoked) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id name revokedAt lastUsedAt } }
    }
  }
}
"""
PER_KEY = """
query($range: TimeRangeInput!) {
  organization {
    apiKeys(first: 100) {
      nodes { id endpointUsage(timeRange: $range) { endpoint calls creditsConsumed } }
    }
  }
}
"""
AT = datetime(2026, 6, 1, 10, tzinfo=UTC)


@pytest.fixture
async def twelve_keys(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    ingest = await make_ingest_token(engine, now=clock())
    events = [
        event(
            tenant.slug,
            AT + timedelta(minutes=number),
            api_key={"id": f"key-{number:02d}", "name": f"Key {number}"},
            endpoint=f"/v2/e{number % 3}",
            credits=number,
        )
        for number in range(12)
        for _ in range(number % 4 + 1)
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    async with writing(engine) as conn:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.external_id == "key-03")
            .values(revoked_at=AT + timedelta(days=1))
        )
    return tenant, events


async def test_pages_walk_every_active_key_once(client, twelve_keys):
    tenant, _ = twelve_keys
    seen, after = [], None
    while True:
        variables = {"first": 5, "after": after, "revoked": False}
        body = (await graphql(client, tenant.token, PAGE, variables)).json()
        page = body["data"]["organization"]["apiKeys"]
        assert page["totalCount"] == 11
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"key-{n:02d}" for n in range(12) if n != 3]


async def test_revoked_keys_are_listed_when_asked(client, twelve_keys):
    tenant, _ = twelve_keys
    body = (await graphql(client, tenant.token, PAGE, {"first": 100, "revoked": True})).json()
    nodes = [edge["node"] for edge in body["data"]["organization"]["apiKeys"]["edges"]]
    revoked = [node for node in nodes if node["revokedAt"]]
    assert [node["id"] for node in revoked] == ["key-03"]
    assert all(node["lastUsedAt"] for node in nodes)


@pytest.mark.parametrize(
    ("first", "after"),
    [(101, None), (-1, None), (5, "not-a-cursor"), (5, "YXBpa2V5Ong=")],
    ids=["over-100", "negative", "garbage-cursor", "cursor-without-id"],
)
async def test_bad_page_arguments_are_refused(client, twelve_keys, first, after):
    tenant, _ = twelve_keys
    variables = {"first": first, "after": after, "revoked": False}
    error = (await graphql(client, tenant.token, PAGE, variables)).json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == ("first" if after is None else "after")


async def test_per_key_usage_matches_raw_events(client, twelve_keys):
    tenant, events = twelve_keys
    start, end = AT - timedelta(hours=1), AT + timedelta(hours=1)
    variables = {"range": {"start": start.isoformat(), "end": end.isoformat()}}
    body = (await graphql(client, tenant.token, PER_KEY, variables)).json()
    for node in body["data"]["organization"]["apiKeys"]["nodes"]:
        wanted = oracle.table(
            oracle.select(events, start, end, node["id"]), lambda item: item["endpoint"]
        )
        got = [(r["endpoint"], r["calls"], r["creditsConsumed"]) for r in node["endpointUsage"]]
        assert got == wanted


async def test_per_key_usage_is_one_query_for_the_whole_page(client, engine, twelve_keys):
    tenant, _ = twelve_keys
    with recorded(engine) as statements:
        variables = {"range": {"preset": "LAST_30_DAYS"}}
        body = (await graphql(client, tenant.token, PER_KEY, variables)).json()
    assert len(body["data"]["organization"]["apiKeys"]["nodes"]) == 11
    rollup_reads = [s for s in statements if "usage_rollups" in s]
    assert len(rollup_reads) == 1, rollup_reads


async def test_the_total_is_counted_only_when_asked(client, engine, twelve_keys):
    """A page without ``totalCount`` sends no count statement; one with it counts the keys of
    every page, revoked ones only when included (bench/PROPOSALS.md, R19)."""
    tenant, _ = twelve_keys
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    without = "{ organization { apiKeys(first: 2) { nodes { id } } } }"
    both = (
        "{ organization { a: apiKeys(first: 2) { totalCount } "
        "b: apiKeys(first: 1, includeRevoked: true) { ... on ApiKeyConnection { totalCount } } } }"
    )
    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        body = (await graphql(client, tenant.token, without)).json()
        counts_without = [s for s in statements if "count(" in s]
        counted = (await graphql(client, tenant.token, both)).json()
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert body["data"]["organization"]["apiKeys"]["nodes"] == [
        {"id": "key-00"},
        {"id": "key-01"},
    ]
    assert counts_without == []
    assert counted == {"data": {"organization": {"a": {"totalCount": 11}, "b": {"totalCount": 12}}}}


async def test_api_key_by_id_of_another_organization_is_null_like_an_unknown_one(
    client, engine, clock, twelve_keys
):
    _, _ = twelve_keys
    other = await make_tenant(engine, now=clock())
    query = '{ organization { mine: apiKey(id: "key-01") { id } none: apiKey(id: "nope") { id } } }'
    body = (await graphql(client, other.token, query)).json()
    assert body == {"data": {"organization": {"mine": None, "none": None}}}
