"""A page of keys whose panels take time ranges: the argument is built by a hook and the
range resolved once per request and distinct value (bench/PROPOSALS.md, R12-R13). Neither may
hand one alias another alias's range, nor one request the range of an earlier one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests import oracle
from tests.factories import (
    STORAGE,
    event,
    graphql,
    make_ingest_token,
    make_tenant,
    post_events,
    settle,
)

AT = datetime(2026, 6, 1, 10, tzinfo=UTC)

TWO_RANGES = """
query($early: TimeRangeInput!, $late: TimeRangeInput!) {
  organization {
    apiKeys(first: 10) {
      nodes {
        id
        early: endpointUsage(timeRange: $early) { endpoint calls creditsConsumed }
        late: endpointUsage(timeRange: $late) { endpoint calls creditsConsumed }
        again: endpointUsage(timeRange: $early) { endpoint calls creditsConsumed }
      }
    }
  }
}
"""

TODAY = """
query {
  organization {
    apiKeys(first: 10) {
      nodes { id endpointUsage(timeRange: {preset: TODAY}) { endpoint calls } }
    }
  }
}
"""


@pytest.fixture(params=STORAGE)
async def six_keys(request, client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    ingest = await make_ingest_token(engine, now=clock())
    events = [
        event(
            tenant.slug,
            AT + timedelta(minutes=10 * number + repeat),
            api_key={"id": f"key-{number}", "name": f"Key {number}"},
            endpoint=f"/v2/e{(number + repeat) % 3}",
            credits=number + repeat,
        )
        for number in range(6)
        for repeat in range(number % 3 + 1)
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    await settle(engine, request.param)
    return tenant, events


def _rows(panel):
    return [(row["endpoint"], row["calls"], row["creditsConsumed"]) for row in panel]


async def test_each_alias_reads_its_own_range(client, six_keys):
    tenant, events = six_keys
    middle = AT + timedelta(minutes=25)
    early = (AT - timedelta(hours=1), middle)
    late = (middle, AT + timedelta(hours=1))
    variables = {
        "early": {"start": early[0].isoformat(), "end": early[1].isoformat()},
        "late": {"start": late[0].isoformat(), "end": late[1].isoformat()},
    }
    body = (await graphql(client, tenant.token, TWO_RANGES, variables)).json()
    assert "errors" not in body, body
    nodes = body["data"]["organization"]["apiKeys"]["nodes"]
    assert len(nodes) == 6
    for node in nodes:
        for alias, (start, end) in (("early", early), ("late", late), ("again", early)):
            wanted = oracle.table(
                oracle.select(events, start, end, node["id"]), lambda item: item["endpoint"]
            )
            assert _rows(node[alias]) == wanted, (node["id"], alias)
    # Both ranges hold calls: a range served for the other would have been caught above.
    assert any(node["early"] for node in nodes)
    assert any(node["late"] for node in nodes)


async def test_a_later_request_resolves_the_preset_again(client, clock, six_keys):
    tenant, _ = six_keys
    clock.now = AT + timedelta(hours=2)
    first = (await graphql(client, tenant.token, TODAY)).json()
    calls = {
        node["id"]: sum(r["calls"] for r in node["endpointUsage"])
        for node in first["data"]["organization"]["apiKeys"]["nodes"]
    }
    assert calls == {f"key-{n}": n % 3 + 1 for n in range(6)}
    # Three days later "today" holds none of those calls: nothing of the first request's
    # range may survive into the second.
    clock.now = AT + timedelta(days=3)
    second = (await graphql(client, tenant.token, TODAY)).json()
    nodes = second["data"]["organization"]["apiKeys"]["nodes"]
    assert len(nodes) == 6
    assert all(node["endpointUsage"] == [] for node in nodes)
