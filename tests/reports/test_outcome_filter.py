"""``outcomes: [CallOutcome!]`` restricts every figure of a report: totals, each breakdown,
the series, previous and change, for the organization, one key and a page of keys;
against plain Python over the raw events, with the outcome derived here independently."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

import pytest

from db.folding import fold_all
from tests import oracle
from tests.factories import event, graphql, make_tenant, post_events
from tests.reports.queries import ask, explicit, instant, utc
from tests.statements import recorded

ZONE = "Asia/Kathmandu"
START, END = utc(2026, 12, 1), utc(2026, 12, 8)
PREVIOUS = utc(2026, 11, 24)
STATUSES = [200, 201, 302, 404, 429, 400, 403, 500, 503, 200]

QUERY = """
query($r: TimeRangeInput!, $o: [CallOutcome!], $key: ID) {
  organization {
    usage(timeRange: $r, outcomes: $o, keyId: $key) {
      calls creditsConsumed
      byEndpoint { endpoint calls creditsConsumed percentOfTotal }
      bySource { source calls creditsConsumed }
      byUser { user { id } calls creditsConsumed }
      byApiKey { apiKey { id } calls creditsConsumed }
      series(granularity: DAY) { start end calls creditsConsumed }
      previous { calls creditsConsumed }
      change { callsPercent creditsPercent }
    }
    endpointUsage(timeRange: $r, outcomes: $o, keyId: $key) { endpoint calls creditsConsumed }
    apiKeys {
      nodes {
        id
        endpointUsage(timeRange: $r, outcomes: $o) { endpoint calls creditsConsumed }
        usage(timeRange: $r, outcomes: $o) { calls creditsConsumed }
      }
    }
  }
}
"""


def make_events(slug: str) -> list[dict]:
    events = []
    for index in range(300):
        fields = {}
        if index % 10 == 9:
            fields["outcome"] = "no_result"  # a 200 that found nothing
        events.append(
            event(
                slug,
                PREVIOUS + timedelta(minutes=67 * index),
                api_key=f"key-{index % 3}",
                endpoint=f"/v2/e{index % 4}",
                source=["api", "crm"][index % 2],
                user=None if index % 7 == 0 else f"user-{index % 5}",
                status=STATUSES[index % len(STATUSES)],
                credits=1 + index % 6,
                **fields,
            )
        )
    return events


@pytest.fixture
async def world(client, engine, clock, ingest):
    clock.now = utc(2027, 1, 15, 12)
    tenant = await make_tenant(engine, now=clock(), timezone=ZONE)
    events = make_events(tenant.slug)
    assert (await post_events(client, ingest, events)).status_code == 200
    return tenant, events


def table(events, group):
    return [[name, calls, credits] for name, calls, credits in oracle.table(events, group)]


FILTERS = {
    "no-result": ["NO_RESULT"],
    "errors": ["CLIENT_ERROR", "SERVER_ERROR", "RATE_LIMITED"],
    "success": ["SUCCESS"],
    # SUCCESS with some others: the all-outcomes rollup rows less the outcomes left out.
    "success-and-no-result": ["SUCCESS", "NO_RESULT"],
    "all-five": ["SUCCESS", "NO_RESULT", "RATE_LIMITED", "CLIENT_ERROR", "SERVER_ERROR"],
    "none-given": None,
}


@pytest.mark.parametrize("key", [None, "key-1"], ids=["all-keys", "one-key"])
@pytest.mark.parametrize("outcomes", FILTERS.values(), ids=list(FILTERS))
async def test_every_figure_counts_only_the_chosen_outcomes(client, world, outcomes, key):
    tenant, events = world
    kept = [e for e in events if outcomes is None or oracle.outcome_of(e) in outcomes]
    variables = {"r": explicit(START, END), "o": outcomes, "key": key}
    data = await ask(client, tenant.token, QUERY, variables)
    report = data["usage"]
    now = oracle.select(kept, START, END, key)
    before = oracle.select(kept, PREVIOUS, START, key)
    assert (report["calls"], report["creditsConsumed"]) == oracle.totals(now)
    assert (report["previous"]["calls"], report["previous"]["creditsConsumed"]) == (
        oracle.totals(before)
    )
    now_credits, before_credits = oracle.totals(now)[1], oracle.totals(before)[1]
    assert report["change"]["creditsPercent"] == pytest.approx(
        100 * (now_credits - before_credits) / before_credits, abs=1e-4
    )
    endpoints = table(now, lambda e: e["endpoint"])
    assert [[r["endpoint"], r["calls"], r["creditsConsumed"]] for r in report["byEndpoint"]] == (
        endpoints
    )
    assert sum(r["percentOfTotal"] for r in report["byEndpoint"]) == pytest.approx(100, abs=0.01)
    assert [[r["endpoint"], r["calls"], r["creditsConsumed"]] for r in data["endpointUsage"]] == (
        endpoints
    )
    assert [[r["source"], r["calls"], r["creditsConsumed"]] for r in report["bySource"]] == (
        table(now, lambda e: e["source"])
    )
    assert sorted(
        [(r["user"] or {}).get("id", ""), r["calls"], r["creditsConsumed"]]
        for r in report["byUser"]
    ) == sorted([name or "", c, k] for name, c, k in table(now, oracle.user_of))
    assert sorted(
        [(r["apiKey"] or {}).get("id", ""), r["calls"], r["creditsConsumed"]]
        for r in report["byApiKey"]
    ) == sorted([name or "", c, k] for name, c, k in table(now, oracle.key_of))
    series = oracle.series(kept, START, END, ZONE, "DAY", key)
    assert [
        (instant(b["start"]), instant(b["end"]), b["calls"], b["creditsConsumed"])
        for b in report["series"]
    ] == series
    for node in data["apiKeys"]["nodes"]:
        mine = oracle.select(kept, START, END, node["id"])
        assert (node["usage"]["calls"], node["usage"]["creditsConsumed"]) == oracle.totals(mine)
        assert [
            [r["endpoint"], r["calls"], r["creditsConsumed"]] for r in node["endpointUsage"]
        ] == table(mine, lambda e: e["endpoint"])


async def test_the_filter_really_filters(client, world):
    tenant, _ = world
    variables = {"r": explicit(START, END), "key": None}
    everything = (await ask(client, tenant.token, QUERY, {**variables, "o": None}))["usage"]
    some = (await ask(client, tenant.token, QUERY, {**variables, "o": ["NO_RESULT"]}))["usage"]
    assert 0 < some["creditsConsumed"] < everything["creditsConsumed"]


async def test_an_empty_list_is_refused_and_the_other_panels_answer(client, world):
    tenant, _ = world
    query = """
    query($r: TimeRangeInput!) {
      organization { name usage(timeRange: $r, outcomes: []) { calls } }
    }
    """
    body = (await graphql(client, tenant.token, query, {"r": explicit(START, END)})).json()
    assert body["data"]["organization"] == {"name": tenant.slug.title(), "usage": None}
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "outcomes"}


async def test_a_page_of_keys_reads_its_filtered_tables_in_one_query(client, engine, world):
    tenant, _ = world
    query = """
    query($r: TimeRangeInput!) {
      organization { apiKeys { nodes {
        endpointUsage(timeRange: $r, outcomes: [NO_RESULT]) { endpoint calls }
        all: endpointUsage(timeRange: $r) { endpoint calls }
      } } }
    }
    """
    await fold_all(engine)  # else ``ask`` folds and asks again inside the recording
    with recorded(engine) as statements:
        data = await ask(client, tenant.token, query, {"r": explicit(START, END)})
    nodes = data["apiKeys"]["nodes"]
    assert len(nodes) == 3
    assert all(node["endpointUsage"] != node["all"] for node in nodes)
    # One grouped read per filter for the whole page, not one per key.
    reads = [
        s
        for s in statements
        if s.lstrip().startswith("SELECT") and ("usage_rollups" in s or "usage_events" in s)
    ]
    assert len(reads) == 2, reads


async def test_an_endpoint_whose_calls_all_failed_has_no_success(client, engine, clock, ingest):
    """SUCCESS is stored as the all-outcomes rows less the other outcomes' rows
    (db/rollup_keys.py): where every call failed the difference is nothing, and the
    endpoint must be no row at all, not a row of zeros; with another outcome asked for, it
    holds exactly that outcome's calls. Day, hour and quarter-hour pieces, and raw edges."""
    clock.now = utc(2027, 1, 15, 12)
    tenant = await make_tenant(engine, now=clock(), timezone="UTC")
    day = utc(2026, 12, 3)
    sent = []
    for index in range(48):
        at = day + timedelta(minutes=29 * index + 7)
        sent.append(event(tenant.slug, at, api_key="k-ok", endpoint="/ok", status=200, credits=2))
        status = 404 if index % 3 else 500
        sent.append(
            event(tenant.slug, at, api_key="k-broken", endpoint="/broken", status=status, credits=3)
        )
    assert (await post_events(client, ingest, sent)).status_code == 200
    query = """
    query($r: TimeRangeInput!, $o: [CallOutcome!], $key: ID) { organization {
      usage(timeRange: $r, outcomes: $o, keyId: $key) {
        calls byEndpoint { endpoint calls creditsConsumed } byOutcome { outcome calls }
      } } }
    """
    ranges = [
        (day - timedelta(days=1), day + timedelta(days=2)),  # whole days
        (day + timedelta(hours=1, minutes=15), day + timedelta(hours=20, minutes=45)),
        (day + timedelta(minutes=3, seconds=5), day + timedelta(hours=23, minutes=59)),
    ]
    cases = itertools.product(
        ranges, (["SUCCESS"], ["SUCCESS", "SERVER_ERROR"], ["NO_RESULT"], None), (None, "k-broken")
    )
    for (start, end), outcomes, key in cases:
        kept = [
            e
            for e in sent
            if start <= instant(e["timestamp"]) < end
            and (outcomes is None or oracle.outcome_of(e) in outcomes)
            and key in (None, e["api_key"])
        ]
        variables = {"r": explicit(start, end), "o": outcomes, "key": key}
        report = (await ask(client, tenant.token, query, variables))["usage"]
        assert [
            [r["endpoint"], r["calls"], r["creditsConsumed"]] for r in report["byEndpoint"]
        ] == table(kept, lambda e: e["endpoint"]), (start, outcomes)
        outcome_calls = Counter(oracle.outcome_of(e) for e in kept)
        assert {r["outcome"]: r["calls"] for r in report["byOutcome"]} == outcome_calls
        if outcomes == ["SUCCESS"]:
            assert [r["endpoint"] for r in report["byEndpoint"]] == ([] if key else ["/ok"])
