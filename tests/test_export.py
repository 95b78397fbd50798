"""``GET /v1/exports/usage.csv``: parsed back, it equals GraphQL's figures and a plain-Python
computation over the raw events; the panels' permissions; the formula guard; coded errors."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app.export_csv import guard
from domain.periods import Granularity, period_edges
from resolvers import export as export_rows
from tests import oracle
from tests.factories import (
    STORAGE,
    add_user,
    event,
    graphql,
    make_ingest_token,
    make_tenant,
    post_events,
    settle,
)

ZONE = "Asia/Kathmandu"  # +05:45: local days are not UTC days
NOW = datetime(2026, 6, 20, 12, tzinfo=UTC)
START = datetime(2026, 6, 1, tzinfo=UTC)
END = datetime(2026, 6, 15, tzinfo=UTC)
RANGE = {"start": "2026-06-01T00:00:00Z", "end": "2026-06-15T00:00:00Z"}
KEYS = [("key-a", "Alpha"), ("key-b", "Beta"), ("=cmd|' /C calc'!A0", "Evil")]
ENDPOINTS = ["/v2/person", "/v2/company", '=HYPERLINK("http://x")', "+1+2", "@SUM(A1)", "-3"]
SOURCES = ["api", "crm_integration", "-minus", "@at"]


def make_events(slug: str) -> list[dict]:
    events = []
    for index in range(160):
        key, name = KEYS[index % 3]
        user = None if index % 5 == 0 else {"id": f"user-{index % 4}", "name": f"User {index % 4}"}
        events.append(
            event(
                slug,
                START - timedelta(hours=7) + timedelta(minutes=137 * index),
                api_key={"id": key, "name": name},
                endpoint=ENDPOINTS[index % len(ENDPOINTS)],
                source=SOURCES[index % len(SOURCES)],
                user=user,
                credits=(index * 7) % 11,
                status=[200, 404, 200, 429, 503, 400, 201][index % 7],
            )
        )
    return events


@pytest.fixture(params=STORAGE)
async def world(request, client, engine, clock):
    clock.now = NOW
    tenant = await make_tenant(engine, now=NOW, timezone=ZONE, slug="acme")
    ingest = await make_ingest_token(engine, now=NOW)
    events = make_events(tenant.slug)
    assert (await post_events(client, ingest, events)).status_code == 200
    await settle(engine, request.param)
    return tenant, events


async def export(client, token, **params):
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return await client.get("/v1/exports/usage.csv", params=params, headers=headers)


def parse(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    text = response.content.decode("utf-8")
    assert "\r\n" in text
    assert not text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def unguard(cell: str) -> str:
    return cell[1:] if cell[:2] in {"'" + c for c in "=+-@\t\r"} else cell


GROUPS = {
    "endpoint": ("endpoint", lambda item: item["endpoint"]),
    "source": ("source", lambda item: item["source"]),
    "user": ("user", lambda item: oracle.user_of(item) or ""),
    "apiKey": ("api_key", lambda item: oracle.key_of(item) or ""),
}


@pytest.mark.parametrize("group_by", list(GROUPS))
async def test_a_table_equals_the_raw_events_and_graphql(client, world, group_by):
    tenant, events = world
    response = await export(client, tenant.token, groupBy=group_by, **RANGE)
    rows = parse(response)
    column, group = GROUPS[group_by]
    assert list(rows[0]) == [column, "calls", "credits_consumed", "percent_of_total"]
    got = {(unguard(row[column]), int(row["calls"]), int(row["credits_consumed"])) for row in rows}
    expected = oracle.table(oracle.select(events, START, END), group)
    assert got == set(expected)
    assert sum(float(row["percent_of_total"]) for row in rows) == pytest.approx(100, abs=0.01)
    # Ordered by credits, then calls, like every GraphQL list.
    figures = [(-int(row["credits_consumed"]), -int(row["calls"])) for row in rows]
    assert figures == sorted(figures)
    report = (
        await graphql(
            client,
            tenant.token,
            "query($r: TimeRangeInput!) { organization { usage(timeRange: $r) {"
            " calls creditsConsumed byEndpoint { endpoint calls creditsConsumed percentOfTotal }"
            " } } }",
            {"r": RANGE},
        )
    ).json()["data"]["organization"]["usage"]
    assert sum(int(row["calls"]) for row in rows) == report["calls"]
    assert sum(int(row["credits_consumed"]) for row in rows) == report["creditsConsumed"]
    if group_by == "endpoint":
        assert [
            [unguard(row["endpoint"]), int(row["calls"]), int(row["credits_consumed"])]
            for row in rows
        ] == [[r["endpoint"], r["calls"], r["creditsConsumed"]] for r in report["byEndpoint"]]
        assert [float(row["percent_of_total"]) for row in rows] == [
            r["percentOfTotal"] for r in report["byEndpoint"]
        ]


async def test_rows_per_outcome_equal_the_raw_events(client, world):
    tenant, events = world
    rows = parse(await export(client, tenant.token, groupBy="outcome", **RANGE))
    assert list(rows[0]) == ["outcome", "calls", "credits_consumed", "percent_of_total"]
    got = [[row["outcome"], int(row["calls"]), int(row["credits_consumed"])] for row in rows]
    expected = oracle.table(oracle.select(events, START, END), oracle.outcome_of)
    assert got == [list(row) for row in expected]
    assert {row[0] for row in got} == {
        "SUCCESS",
        "NO_RESULT",
        "RATE_LIMITED",
        "SERVER_ERROR",
        "CLIENT_ERROR",
    }


async def test_the_outcomes_filter_restricts_every_row_as_in_graphql(client, world):
    tenant, events = world
    response = await export(
        client, tenant.token, outcomes="NO_RESULT,SERVER_ERROR", granularity="DAY", **RANGE
    )
    rows = parse(response)
    kept = [item for item in events if oracle.outcome_of(item) in {"NO_RESULT", "SERVER_ERROR"}]
    edges = oracle.bucket_edges(START, END, ZONE, "DAY")
    expected = []
    for low, high in itertools.pairwise(edges):
        for endpoint, calls, credits in oracle.table(
            oracle.select(kept, low, high), lambda item: item["endpoint"]
        ):
            expected.append([low.isoformat(), endpoint, calls, credits])
    got = [
        [
            row["bucket_start"],
            unguard(row["endpoint"]),
            int(row["calls"]),
            int(row["credits_consumed"]),
        ]
        for row in rows
    ]
    assert got == expected
    whole = parse(
        await client.get(
            "/v1/exports/usage.csv",
            params=[("outcomes", "NO_RESULT"), ("outcomes", "SERVER_ERROR"), *RANGE.items()],
            headers={"Authorization": f"Bearer {tenant.token}"},
        )
    )
    endpoint_usage = (
        await graphql(
            client,
            tenant.token,
            "query($r: TimeRangeInput!) { organization { endpointUsage(timeRange: $r, "
            "outcomes: [NO_RESULT, SERVER_ERROR]) { endpoint calls creditsConsumed } } }",
            {"r": RANGE},
        )
    ).json()["data"]["organization"]["endpointUsage"]
    assert [
        [unguard(row["endpoint"]), int(row["calls"]), int(row["credits_consumed"])] for row in whole
    ] == [[r["endpoint"], r["calls"], r["creditsConsumed"]] for r in endpoint_usage]


async def test_daily_rows_per_key_equal_the_raw_events_and_the_series(client, world):
    tenant, events = world
    response = await export(
        client, tenant.token, groupBy="apiKey", granularity="DAY", keyId="key-b", **RANGE
    )
    rows = parse(response)
    assert list(rows[0]) == [
        "bucket_start",
        "bucket_end",
        "api_key",
        "calls",
        "credits_consumed",
        "percent_of_total",
    ]
    expected = [
        (low, high, calls, credits)
        for low, high, calls, credits in oracle.series(events, START, END, ZONE, "DAY", "key-b")
        if calls
    ]
    got = [
        (
            datetime.fromisoformat(row["bucket_start"]),
            datetime.fromisoformat(row["bucket_end"]),
            int(row["calls"]),
            int(row["credits_consumed"]),
        )
        for row in rows
    ]
    assert got == expected
    assert {row["api_key"] for row in rows} == {"key-b"}
    series = (
        await graphql(
            client,
            tenant.token,
            "query($r: TimeRangeInput!) { organization { usage(timeRange: $r, keyId: "
            '"key-b") { series(granularity: DAY) { start calls creditsConsumed } } } }',
            {"r": RANGE},
        )
    ).json()["data"]["organization"]["usage"]["series"]
    assert [
        (datetime.fromisoformat(b["start"]), b["calls"], b["creditsConsumed"])
        for b in series
        if b["calls"]
    ] == [(low, calls, credits) for low, _, calls, credits in expected]


async def test_hourly_rows_per_endpoint_equal_the_raw_events(client, world):
    tenant, events = world
    response = await export(client, tenant.token, groupBy="endpoint", granularity="HOUR", **RANGE)
    rows = parse(response)
    edges = oracle.bucket_edges(START, END, ZONE, "HOUR")
    expected: dict[tuple[datetime, datetime, str], tuple[int, int]] = {}
    for low, high in itertools.pairwise(edges):
        for endpoint, calls, credits in oracle.table(
            oracle.select(events, low, high), lambda item: item["endpoint"]
        ):
            expected[(low, high, endpoint)] = (calls, credits)
    got = {
        (
            datetime.fromisoformat(row["bucket_start"]),
            datetime.fromisoformat(row["bucket_end"]),
            unguard(row["endpoint"]),
        ): (int(row["calls"]), int(row["credits_consumed"]))
        for row in rows
    }
    assert len(got) == len(rows)
    assert got == expected
    # Each bucket's rows share its credits: their percents sum to 100.
    per_bucket: dict[str, float] = {}
    for row in rows:
        per_bucket[row["bucket_start"]] = per_bucket.get(row["bucket_start"], 0) + float(
            row["percent_of_total"]
        )
    assert all(total == pytest.approx(100, abs=0.01) for total in per_bucket.values())


async def test_every_formula_start_is_guarded(client, world):
    tenant, _ = world
    rows = parse(await export(client, tenant.token, groupBy="endpoint", **RANGE))
    cells = {row["endpoint"] for row in rows}
    assert {'\'=HYPERLINK("http://x")', "'+1+2", "'@SUM(A1)", "'-3", "/v2/person"} <= cells
    keys = {
        row["api_key"]
        for row in parse(await export(client, tenant.token, groupBy="apiKey", **RANGE))
    }
    assert "'=cmd|' /C calc'!A0" in keys
    sources = {
        row["source"]
        for row in parse(await export(client, tenant.token, groupBy="source", **RANGE))
    }
    assert {"'-minus", "'@at", "api"} <= sources


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@A1", "'@A1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("", ""),
        ("'quoted", "'quoted"),
    ],
)
def test_the_guard_prefixes_formula_starts_only(cell, expected):
    assert guard(cell) == expected


async def test_the_file_is_named_after_the_organization_range_and_group(client, world):
    tenant, _ = world
    response = await export(client, tenant.token, groupBy="user", granularity="WEEK", **RANGE)
    assert response.headers["content-disposition"] == (
        'attachment; filename="usage-acme-2026-06-01-to-2026-06-15-by-user-week.csv"'
    )


async def test_an_empty_range_has_only_the_header(client, world):
    tenant, _ = world
    response = await export(
        client, tenant.token, start="2027-01-01T00:00:00Z", end="2027-01-02T00:00:00Z"
    )
    assert response.text == "endpoint,calls,credits_consumed,percent_of_total\r\n"


async def test_a_member_is_forbidden_and_a_free_plan_needs_a_paid_one(client, engine, world):
    tenant, _ = world
    _, _, member = await add_user(engine, tenant, role="MEMBER", now=NOW)
    refused = await export(client, member, preset="LAST_7_DAYS")
    assert refused.status_code == 403
    assert refused.json()["code"] == "FORBIDDEN"
    free = await make_tenant(engine, now=NOW, plan="FREE")
    refused = await export(client, free.token, preset="LAST_7_DAYS")
    assert refused.status_code == 403
    assert refused.json()["code"] == "PLAN_REQUIRED"
    assert "Upgrade" in refused.json()["message"]


async def test_no_token_or_an_ingest_token_is_refused(client, engine, world):
    missing = await export(client, None, preset="LAST_7_DAYS")
    assert missing.status_code == 401
    assert missing.json()["code"] == "UNAUTHENTICATED"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = await export(client, "not-a-token", preset="LAST_7_DAYS")
    assert bad.status_code == 401
    ingest = await make_ingest_token(engine, now=NOW)
    assert (await export(client, ingest, preset="LAST_7_DAYS")).status_code == 403


async def test_a_key_of_another_organization_answers_like_an_unknown_key(client, engine, world):
    tenant, _ = world
    other = await make_tenant(engine, now=NOW, slug="bravo")
    token = await make_ingest_token(engine, now=NOW)
    assert (
        await post_events(client, token, [event("bravo", NOW - timedelta(days=1), api_key="key-z")])
    ).status_code == 200
    assert (
        await export(client, other.token, keyId="key-z", preset="LAST_7_DAYS")
    ).status_code == 200
    elsewhere = await export(client, tenant.token, keyId="key-z", preset="LAST_7_DAYS")
    nowhere = await export(client, tenant.token, keyId="key-y", preset="LAST_7_DAYS")
    assert elsewhere.status_code == nowhere.status_code == 404
    assert elsewhere.text.replace("key-z", "key-y") == nowhere.text
    assert elsewhere.json()["field"] == "keyId"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"preset": "LAST_YEAR"}, "preset"),
        ({"start": "2026-06-01T00:00:00Z"}, "end"),
        ({"start": "yesterday", "end": "2026-06-01T00:00:00Z"}, "start"),
        ({"start": "2026-06-01T00:00:00", "end": "2026-06-02T00:00:00Z"}, "start"),
        ({"preset": "TODAY", "start": "2026-06-01T00:00:00Z"}, "preset"),
        ({"preset": "TODAY", "timezone": "Mars/Olympus"}, "timezone"),
        ({"preset": "TODAY", "groupBy": "planet"}, "groupBy"),
        ({"preset": "TODAY", "granularity": "FORTNIGHT"}, "granularity"),
        ({"preset": "TODAY", "outcomes": "SUCCESS,MAYBE"}, "outcomes"),
        ({"preset": "TODAY", "groupby": "source"}, "groupby"),
        ({"preset": "TODAY", "keyId": ""}, "keyId"),
        ({}, "start"),
    ],
)
async def test_bad_input_is_a_coded_error_naming_the_parameter(client, world, params, field):
    tenant, _ = world
    response = await export(client, tenant.token, **params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "BAD_USER_INPUT"
    assert body["error"] == "bad_user_input"
    assert body["field"] == field
    assert body["message"]


async def test_a_parameter_given_twice_is_refused(client, world):
    tenant, _ = world
    response = await client.get(
        "/v1/exports/usage.csv?preset=TODAY&groupBy=source&groupBy=user",
        headers={"Authorization": f"Bearer {tenant.token}"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "groupBy"


async def test_the_cli_writes_the_same_csv_to_a_file_and_to_stdout(
    client, world, database_url, tmp_path
):
    from tests.test_cli_ingest import run_cli

    tenant, _ = world
    served = await export(client, tenant.token, groupBy="apiKey", granularity="DAY", **RANGE)
    assert served.status_code == 200
    args = ["export", "--org", "acme", "--start", RANGE["start"], "--end", RANGE["end"]]
    args += ["--group-by", "apiKey", "--granularity", "DAY"]
    path = tmp_path / "usage.csv"
    code, _, err = await run_cli(database_url, *args, "--output", str(path))
    assert code == 0, err
    assert path.read_bytes() == served.content
    assert not (tmp_path / "usage.csv.part").exists()
    code, out, _ = await run_cli(database_url, *args)
    assert code == 0
    assert out.encode() == served.content


async def test_the_cli_names_the_bad_option_in_one_line(world, database_url, tmp_path):
    from tests.test_cli_ingest import run_cli

    path = tmp_path / "usage.csv"
    code, _, err = await run_cli(
        database_url,
        "export",
        "--org",
        "acme",
        "--preset",
        "TODAY",
        "--key-id",
        "nobody",
        "-o",
        str(path),
    )
    assert code == 2
    assert err.startswith("error: --key-id: ")
    assert "Traceback" not in err
    assert not path.exists()
    assert not (tmp_path / "usage.csv.part").exists()
    code, _, err = await run_cli(database_url, "export", "--org", "acme", "--granularity", "X")
    assert (code, err.splitlines()[0][:22]) == (2, "error: --granularity: ")


@given(
    zone=st.sampled_from(oracle.TRICKY_ZONES),
    granularity=st.sampled_from(list(Granularity)),
    start=st.datetimes(
        min_value=datetime(2024, 1, 1),  # noqa: DTZ001 - hypothesis adds the zone
        max_value=datetime(2026, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    days=st.integers(1, 800),
)
@hypothesis_settings(max_examples=40, deadline=None)
def test_the_buckets_come_in_bounded_chunks_that_join_into_the_series(
    zone, granularity, start, days
):
    end = start + timedelta(days=days, minutes=7)
    scope = SimpleNamespace(range=SimpleNamespace(start=start, end=end, zone=ZoneInfo(zone)))
    edges = list(export_rows._edges(scope, granularity))
    assert edges == period_edges(start, end, granularity, ZoneInfo(zone))
    chunks = list(export_rows._chunks(iter(edges)))
    for chunk in chunks:
        assert 2 <= len(chunk) <= export_rows.BUCKETS_PER_CHUNK + 1
        # A week at most, unless the chunk is one bucket (a month) or ends the range.
        assert chunk[-2] - chunk[0] < export_rows.CHUNK_SPAN or len(chunk) == 2 or chunk[-1] == end
    joined = [chunks[0][0]] + [edge for chunk in chunks for edge in chunk[1:]]
    assert joined == edges
