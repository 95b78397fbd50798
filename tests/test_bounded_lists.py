"""Every breakdown list is bounded: the first `limit` rows, then one `isOther` row summing
the rest, checked against plain Python over the raw events; and the cost estimate counts
what such a list can really return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from graphql import parse

from app.settings import Settings
from graphql_schema.limits.cost import CostLimits, estimate_cost
from graphql_schema.schema import build_schema
from tests import oracle
from tests.factories import event, graphql, post_events

AT = datetime(2026, 6, 2, 9, tzinfo=UTC)
START, END = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 3, tzinfo=UTC)
RANGE = {"start": START.isoformat(), "end": END.isoformat()}
ROW = "calls creditsConsumed percentOfTotal isOther otherRowCount"


def spread(slug: str, count: int, **per_index) -> list[dict]:
    """``count`` events, field values computed per index (many ties in credits and calls)."""
    return [
        event(
            slug,
            AT + timedelta(seconds=index),
            **{field: value(index) for field, value in per_index.items()},
        )
        for index in range(count)
    ]


async def ask(client, token, query, variables=None):
    body = (await graphql(client, token, query, {"range": RANGE, **(variables or {})})).json()
    assert "errors" not in body, body
    return body["data"]["organization"]


def check_limited(rows, wanted, limit, name):
    """``rows`` are the first ``limit`` of the oracle's ``wanted`` (ordered by credits, then
    calls, then name), then one other row whose figures are the sum of all the others."""
    assert len(wanted) > limit
    listed, other = rows[:-1], rows[-1]
    assert len(listed) == limit
    assert [(name(row), row["calls"], row["creditsConsumed"]) for row in listed] == wanted[:limit]
    assert not any(row["isOther"] for row in listed)
    assert all(row["otherRowCount"] is None for row in listed)
    rest = wanted[limit:]
    assert other["isOther"] is True
    assert other["otherRowCount"] == len(rest)
    assert other["calls"] == sum(calls for _, calls, _ in rest)
    assert other["creditsConsumed"] == sum(credits for _, _, credits in rest)
    total = sum(credits for _, _, credits in wanted)
    assert other["percentOfTotal"] == pytest.approx(100 * other["creditsConsumed"] / total, 1e-4)
    assert sum(row["percentOfTotal"] for row in rows) == pytest.approx(100.0, abs=1e-3)


ENDPOINT_TABLES = f"""
query($range: TimeRangeInput!, $limit: Int) {{
  organization {{
    endpointUsage(timeRange: $range, limit: $limit) {{ endpoint {ROW} }}
    usage(timeRange: $range) {{ byEndpoint(limit: $limit) {{ endpoint {ROW} }} }}
    apiKey(id: "key-a") {{
      endpointUsage(timeRange: $range, limit: $limit) {{ endpoint {ROW} }}
      usage(timeRange: $range) {{ byEndpoint(limit: $limit) {{ endpoint {ROW} }} }}
    }}
    apiKeys {{ nodes {{ endpointUsage(timeRange: $range, limit: $limit) {{ endpoint {ROW} }} }} }}
  }}
}}
"""


@pytest.mark.parametrize("limit", [1, 20, None], ids=["one", "twenty", "default"])
async def test_five_hundred_endpoints_give_limit_rows_and_one_other_row(
    client, tenant, ingest, limit
):
    # 500 distinct endpoints from one key (any producer can make them up), credits 0-6 and
    # one to three calls each: many ties, broken by name.
    events = [
        event(tenant.slug, AT + timedelta(seconds=i), endpoint=f"/v1/e{i:03d}", credits=i % 7)
        for i in range(500)
        for _ in range(i % 3 + 1)
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    data = await ask(client, tenant.token, ENDPOINT_TABLES, {"limit": limit})
    wanted = oracle.table(oracle.select(events, START, END), lambda item: item["endpoint"])
    assert len(wanted) == 500
    tables = [
        data["endpointUsage"],
        data["usage"]["byEndpoint"],
        data["apiKey"]["endpointUsage"],
        data["apiKey"]["usage"]["byEndpoint"],
        data["apiKeys"]["nodes"][0]["endpointUsage"],
    ]
    for rows in tables:
        assert rows == tables[0]
    check_limited(tables[0], wanted, limit or 100, lambda row: row["endpoint"])
    assert tables[0][-1]["endpoint"] == ""


async def test_sources_past_the_default_limit_are_summed(client, tenant, ingest):
    events = spread(
        tenant.slug, 240, source=lambda i: f"src-{i % 130:03d}", credits=lambda i: i % 4
    )
    assert (await post_events(client, ingest, events)).status_code == 200
    query = (
        "query($range: TimeRangeInput!) { organization { usage(timeRange: $range) "
        f"{{ bySource {{ source {ROW} }} }} }} }}"
    )
    rows = (await ask(client, tenant.token, query))["usage"]["bySource"]
    wanted = oracle.table(oracle.select(events, START, END), lambda item: item["source"])
    check_limited(rows, wanted, 100, lambda row: row["source"])
    assert rows[-1]["source"] == ""


BY_USER_AND_KEY = f"""
query($range: TimeRangeInput!, $limit: Int) {{
  organization {{ usage(timeRange: $range) {{
    byUser(limit: $limit) {{ user {{ name }} {ROW} }}
    byApiKey(limit: $limit) {{ apiKey {{ name }} {ROW} }}
  }} }}
}}
"""


async def test_the_cut_among_tied_users_and_keys_follows_display_names(client, tenant, ingest):
    # 60 users and keys with one call and one credit each (all tied), created in reverse
    # order of their names, so internal ids run against the names; plus calls without any.
    events = [
        event(
            tenant.slug,
            AT + timedelta(seconds=n),
            user={"id": f"u-{n}", "name": f"User {59 - n:02d}"},
            api_key={"id": f"k-{n}", "name": f"key {59 - n:02d}"},
        )
        for n in range(60)
    ]
    events += [event(tenant.slug, AT, user=None, api_key=None)]
    for batch in (events[:30], events[30:]):
        assert (await post_events(client, ingest, batch)).status_code == 200
    report = (await ask(client, tenant.token, BY_USER_AND_KEY, {"limit": 7}))["usage"]
    names = [f"User {n:02d}" for n in range(60)]
    wanted = [(name, 1, 1) for name in names] + [(None, 1, 1)]  # the unnamed row last
    check_limited(report["byUser"], wanted, 7, lambda row: row["user"] and row["user"]["name"])
    assert report["byUser"][-1]["user"] is None
    keys = [(f"key {n:02d}", 1, 1) for n in range(60)] + [(None, 1, 1)]
    check_limited(report["byApiKey"], keys, 7, lambda row: row["apiKey"] and row["apiKey"]["name"])


async def test_the_row_without_a_user_can_be_listed_and_is_not_the_other_row(
    client, tenant, ingest
):
    events = spread(
        tenant.slug, 30, user=lambda i: None if i < 20 else f"u-{i}", credits=lambda i: 1
    )
    assert (await post_events(client, ingest, events)).status_code == 200
    rows = (await ask(client, tenant.token, BY_USER_AND_KEY, {"limit": 2}))["usage"]["byUser"]
    assert [(row["user"], row["calls"], row["isOther"]) for row in rows] == [
        (None, 20, False),
        ({"name": "u-20"}, 1, False),
        (None, 9, True),
    ]


async def test_a_small_report_has_no_other_row(client, tenant, ingest):
    events = spread(
        tenant.slug,
        12,
        endpoint=lambda i: f"/e{i % 3}",
        source=lambda i: f"s{i % 2}",
        user=lambda i: f"u{i % 4}",
        api_key=lambda i: f"k{i % 5}",
        credits=lambda i: i,
    )
    assert (await post_events(client, ingest, events)).status_code == 200
    query = f"""query($range: TimeRangeInput!) {{ organization {{ usage(timeRange: $range) {{
      byEndpoint {{ {ROW} }} bySource {{ {ROW} }} byUser {{ {ROW} }} byApiKey {{ {ROW} }}
    }} }} }}"""
    report = (await ask(client, tenant.token, query))["usage"]
    assert [len(report[name]) for name in ("byEndpoint", "bySource", "byUser", "byApiKey")] == [
        3,
        2,
        4,
        5,
    ]
    for rows in report.values():
        assert not any(row["isOther"] or row["otherRowCount"] is not None for row in rows)


async def test_a_limit_equal_to_the_row_count_has_no_other_row(client, tenant, ingest):
    events = spread(tenant.slug, 6, endpoint=lambda i: f"/e{i}")
    assert (await post_events(client, ingest, events)).status_code == 200
    data = await ask(client, tenant.token, ENDPOINT_TABLES, {"limit": 6})
    assert [row["isOther"] for row in data["endpointUsage"]] == [False] * 6


@pytest.mark.parametrize(
    "limit", [0, -1, 101, 2_147_483_647], ids=["zero", "negative", "over", "max-int"]
)
async def test_a_limit_out_of_range_is_refused_naming_it(client, tenant, limit):
    query = (
        "query($range: TimeRangeInput!, $limit: Int) { organization { "
        "endpointUsage(timeRange: $range, limit: $limit) { endpoint } } }"
    )
    body = (await graphql(client, tenant.token, query, {"range": RANGE, "limit": limit})).json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "limit"
    assert "max_page_size" in error["message"]


def cost(query, variables=None):
    schema = build_schema(Settings())._schema
    limits = CostLimits(max_page_size=100, max_series_points=10_000)
    return estimate_cost(
        schema, parse(query), operation_name=None, variables=variables, limits=limits
    )


REPORT = "{ organization { usage(timeRange: {preset: TODAY}) { %s } } }"


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        (REPORT % "byEndpoint(limit: 5) { endpoint calls }", None, 1 + 1 + (5 + 1) * 3),
        (REPORT % "bySource { source }", None, 1 + 1 + (100 + 1) * 2),
        (
            "query($n: Int) { organization { usage(timeRange: {preset: TODAY}) "
            "{ byUser(limit: $n) { user { name } } } } }",
            {"n": 3},
            1 + 1 + (3 + 1) * (1 + 1 + 1),
        ),
        (REPORT % "byApiKey(limit: 10) { isOther }", None, 1 + 1 + 11 * 2),
        (
            "{ organization { apiKeys(first: 50) { nodes { "
            "endpointUsage(timeRange: {preset: TODAY}, limit: 10) { endpoint } } } } }",
            None,
            1 + 1 + 50 * (1 + 11 * 2),
        ),
        # Refused by the resolver; priced as the default meanwhile.
        (REPORT % "byEndpoint(limit: 5000) { endpoint }", None, 1 + 1 + 101 * 2),
    ],
    ids=["literal", "default", "variable", "keys", "per-key", "out-of-range"],
)
def test_the_cost_of_a_breakdown_follows_its_limit(query, variables, expected):
    assert cost(query, variables) == expected


class TestCostLimitOfBreakdowns:
    @pytest.fixture
    def settings(self, clean_database):
        return Settings(database_url=clean_database, max_query_cost=3_000)

    async def test_a_smaller_limit_lets_a_page_of_tables_through(self, client, tenant):
        query = (
            "query($n: Int) { organization { apiKeys(first: 20) { nodes { "
            "endpointUsage(timeRange: {preset: TODAY}, limit: $n) { endpoint calls } } } } }"
        )
        refused = (await graphql(client, tenant.token, query, {"n": None})).json()
        [error] = refused["errors"]
        assert error["extensions"]["limit"] == "max_query_cost"
        assert error["extensions"]["actual"] == 1 + 1 + 20 * (1 + 101 * 3)
        answered = (await graphql(client, tenant.token, query, {"n": 10})).json()
        assert answered == {"data": {"organization": {"apiKeys": {"nodes": []}}}}
