"""Breakdowns by endpoint, source, user and key equal the raw events; ties, percents, the
key filter and keys of other organizations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests import oracle
from tests.factories import event, make_tenant, post_events
from tests.reports.queries import (
    REPORT,
    ask,
    error_of,
    explicit,
    utc,
)


def user_row(row):
    return (None if row["user"] is None else row["user"]["name"], row["calls"], row["credits"])


async def test_breakdowns_equal_raw_events_with_one_row_for_no_user_and_no_key(
    client, tenant, ingest
):
    at = utc(2026, 6, 2, 9)
    slug = tenant.slug
    events = [
        event(slug, at, user={"id": "u-z", "name": "Zed"}, api_key="k-1", credits=3),
        event(slug, at, user={"id": "u-a", "name": "Amy"}, api_key="k-2", credits=3),
        event(slug, at, user=None, api_key=None, credits=3, source="extension"),
        event(slug, at, user="u-a", api_key=None, credits=5, source="Extension"),
        event(slug, at, user=None, api_key="k-1", credits=0, endpoint="/v2/company"),
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    variables = {"range": explicit(utc(2026, 6, 1), utc(2026, 6, 3))}
    report = (await ask(client, tenant.token, REPORT, variables))["usage"]
    assert (report["calls"], report["creditsConsumed"]) == (5, 14)
    assert [
        (r["user"] and r["user"]["name"], r["calls"], r["creditsConsumed"])
        for r in report["byUser"]
    ] == [
        ("Amy", 2, 8),
        (None, 2, 3),
        ("Zed", 1, 3),
    ]
    assert [
        (r["apiKey"] and r["apiKey"]["id"], r["calls"], r["creditsConsumed"])
        for r in report["byApiKey"]
    ] == [
        (None, 2, 8),
        ("k-1", 2, 3),
        ("k-2", 1, 3),
    ]
    assert [(r["source"], r["calls"], r["creditsConsumed"]) for r in report["bySource"]] == [
        ("extension", 2, 8),
        ("api", 3, 6),
    ]
    for rows in (report["byEndpoint"], report["bySource"], report["byUser"], report["byApiKey"]):
        assert sum(row["percentOfTotal"] for row in rows) == pytest.approx(100.0, abs=1e-3)
    assert report["byUser"][0]["percentOfTotal"] == pytest.approx(100 * 8 / 14, abs=1e-4)


async def test_ties_are_ordered_by_display_name_not_by_internal_id(client, tenant, ingest):
    at = utc(2026, 6, 2, 9)
    slug = tenant.slug
    # Created in this order, so internal ids run Zed < Mia < Amy; names run the other way.
    events = [
        event(slug, at, user={"id": "u-1", "name": "Zed"}, api_key={"id": "k-1", "name": "zeta"}),
        event(slug, at, user={"id": "u-2", "name": "Mia"}, api_key={"id": "k-2", "name": "mu"}),
        event(slug, at, user={"id": "u-3", "name": "Amy"}, api_key={"id": "k-3", "name": "alpha"}),
        event(slug, at, user=None, api_key=None),
    ]
    for item in events:  # one batch each, so creation order is fixed
        assert (await post_events(client, ingest, [item])).status_code == 200
    variables = {"range": explicit(utc(2026, 6, 1), utc(2026, 6, 3))}
    report = (await ask(client, tenant.token, REPORT, variables))["usage"]
    assert [row["user"] and row["user"]["name"] for row in report["byUser"]] == [
        "Amy",
        "Mia",
        "Zed",
        None,
    ]
    assert [row["apiKey"] and row["apiKey"]["name"] for row in report["byApiKey"]] == [
        "alpha",
        "mu",
        "zeta",
        None,
    ]


async def test_percent_falls_back_to_calls_when_no_call_cost_credits(client, tenant, ingest):
    at = utc(2026, 6, 2, 9)
    events = [
        event(tenant.slug, at, endpoint="/a", credits=0),
        event(tenant.slug, at, endpoint="/a", credits=0),
        event(tenant.slug, at, endpoint="/b", credits=0),
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    variables = {"range": explicit(utc(2026, 6, 1), utc(2026, 6, 3))}
    rows = (await ask(client, tenant.token, REPORT, variables))["usage"]["byEndpoint"]
    assert [(row["endpoint"], row["percentOfTotal"]) for row in rows] == [
        ("/a", pytest.approx(66.6667, abs=1e-4)),
        ("/b", pytest.approx(33.3333, abs=1e-4)),
    ]


ENDPOINTS_EVERYWHERE = """
query($range: TimeRangeInput!, $key: ID!) {
  organization {
    endpointUsage(timeRange: $range, keyId: $key) { endpoint calls creditsConsumed percentOfTotal }
    usage(timeRange: $range, keyId: $key) {
      byEndpoint { endpoint calls creditsConsumed percentOfTotal }
    }
    apiKey(id: $key) {
      endpointUsage(timeRange: $range) { endpoint calls creditsConsumed percentOfTotal }
      usage(timeRange: $range) { byEndpoint { endpoint calls creditsConsumed percentOfTotal } }
    }
    apiKeys {
      nodes {
        id
        endpointUsage(timeRange: $range) { endpoint calls creditsConsumed percentOfTotal }
      }
    }
  }
}
"""


async def test_every_endpoint_table_of_a_key_agrees_with_the_raw_events(client, tenant, ingest):
    slug = tenant.slug
    events = [
        event(
            slug,
            utc(2026, 6, 1) + timedelta(minutes=37 * index),
            api_key=["k-1", "k-2", None][index % 3],
            endpoint=["/a", "/b", "/c", "/d"][index % 4],
            credits=index % 5,
        )
        for index in range(400)
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    start, end = utc(2026, 6, 1, 3, 7), utc(2026, 6, 8, 11, 59)
    variables = {"range": explicit(start, end, "Asia/Kathmandu"), "key": "k-2"}
    data = await ask(client, tenant.token, ENDPOINTS_EVERYWHERE, variables)
    wanted_rows = oracle.table(oracle.select(events, start, end, "k-2"), lambda e: e["endpoint"])
    wanted = [
        {"endpoint": name, "calls": calls, "creditsConsumed": credits}
        for name, calls, credits in wanted_rows
    ]
    page = {node["id"]: node["endpointUsage"] for node in data["apiKeys"]["nodes"]}
    tables = [
        data["endpointUsage"],
        data["usage"]["byEndpoint"],
        data["apiKey"]["endpointUsage"],
        data["apiKey"]["usage"]["byEndpoint"],
        page["k-2"],
    ]
    for rows in tables:
        assert rows == tables[0]
    assert [{k: row[k] for k in wanted[0]} for row in tables[0]] == wanted
    assert [row["percentOfTotal"] for row in tables[0]] == pytest.approx(
        oracle.percents(wanted_rows), abs=1e-4
    )


async def test_a_key_of_another_organization_is_not_found_like_an_unknown_key(
    client, engine, clock, tenant, ingest
):
    other = await make_tenant(engine, now=clock())
    at = utc(2026, 6, 2)
    assert (
        await post_events(client, ingest, [event(other.slug, at, api_key="theirs")])
    ).status_code
    variables = {"range": explicit(utc(2026, 6, 1), utc(2026, 6, 3)), "key": "theirs"}
    theirs = await error_of(client, tenant.token, REPORT, variables)
    variables["key"] = "nobody"
    unknown = await error_of(client, tenant.token, REPORT, variables)
    for error in (theirs, unknown):
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert error["extensions"]["field"] == "keyId"
    assert theirs["message"].replace("theirs", "X") == unknown["message"].replace("nobody", "X")
    # The owner sees it.
    assert (await ask(client, other.token, REPORT, {**variables, "key": "theirs"}))["usage"][
        "calls"
    ] == 1
