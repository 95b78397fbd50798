"""Inputs at the edges of what Python can represent get a coded 4xx, never a 500 (issue 10,
class 5): datetimes whose offset pushes them past year 1 or 9999, text that lower-casing
lengthens, malformed or overflowing cursors, and `previous` and `series` at the ends of
the calendar. Each through the real app (or the real ``creditlens`` process), on SQLite and
on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events
from tests.test_cli_ingest import run_cli
from tests.test_ingest_totals import totals

BAD_TIMESTAMPS = [
    ("0001-01-01T00:00:00+05:00", "is before 2000-01-01"),
    ("0001-01-01T04:59:59.999999+05:00", "is before 2000-01-01"),
    ("9999-12-31T23:59:59-05:00", "is more than a day in the future"),
    ("9999-12-31T23:59:59.999999999-00:01", "is more than a day in the future"),
]
LONG_WHEN_LOWERED = "İ" * 100  # 100 characters; lower-cased, 200 ('i' + a combining dot)


@pytest.fixture
async def world(engine, clock):
    tenant = await make_tenant(engine, now=clock())
    return tenant, await make_ingest_token(engine, now=clock())


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _error(body: dict[str, Any]) -> dict[str, Any]:
    [error] = body["errors"]
    return error


# --- events ------------------------------------------------------------------------------


async def test_events_past_the_calendar_are_refused_whole_and_listed(world, client, engine, clock):
    tenant, token = world
    before = await totals(engine)
    good = clock() - timedelta(minutes=5)
    batch = [event(tenant.slug, good)]
    for timestamp, _ in BAD_TIMESTAMPS:
        batch += [event(tenant.slug, good, timestamp=timestamp), event(tenant.slug, good)]

    response = await post_events(client, token, batch)

    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"index": 1 + 2 * place, "field": "timestamp", "reason": reason}
        for place, (_, reason) in enumerate(BAD_TIMESTAMPS)
    ]
    assert await totals(engine) == before


async def test_a_source_is_measured_after_lower_casing(world, client, engine, clock):
    tenant, token = world
    before = await totals(engine)
    at = clock() - timedelta(minutes=5)

    refused = await post_events(
        client,
        token,
        [event(tenant.slug, at), event(tenant.slug, at, source=LONG_WHEN_LOWERED)],
    )

    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert (error["index"], error["field"]) == (1, "source")
    assert "once lower-cased" in error["reason"]
    assert await totals(engine) == before

    # 50 of them lower-case to exactly 100 characters: stored, and reported as stored.
    fits = "İ" * 50
    accepted = await post_events(client, token, [event(tenant.slug, at, source=fits)])
    assert accepted.status_code == 200, accepted.text
    query = "{ organization { usage(timeRange: {preset: TODAY}) { bySource { source calls } } } }"
    tenant_token = tenant.token
    body = (await graphql(client, tenant_token, query)).json()
    assert body["data"]["organization"]["usage"]["bySource"] == [
        {"source": fits.lower(), "calls": 1}
    ]
    assert len(fits.lower()) == 100


async def test_the_cli_names_events_past_the_calendar_without_a_traceback(
    world, database_url, clock, tmp_path
):
    tenant, _ = world
    good = clock() - timedelta(minutes=5)
    lines = [
        event(tenant.slug, good),
        event(tenant.slug, good, timestamp=BAD_TIMESTAMPS[0][0]),
        event(tenant.slug, good, timestamp=BAD_TIMESTAMPS[2][0]),
        event(tenant.slug, good, source=LONG_WHEN_LOWERED),
    ]
    path = tmp_path / "edges.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")

    code, _, err = await run_cli(database_url, "ingest", str(path), "--quiet")

    assert code == 1, err
    assert "Traceback" not in err
    assert "event 1 (timestamp): is before 2000-01-01" in err
    assert "event 2 (timestamp): is more than a day in the future" in err
    assert "event 3 (source): must be a string of 1 to 100 characters (once lower-cased)" in err


async def test_the_cli_names_a_csv_field_too_large_to_read_without_a_traceback(
    world, database_url, clock, tmp_path
):
    tenant, _ = world
    at = (clock() - timedelta(minutes=5)).isoformat()
    header = "id,organization,source,endpoint,status,credits,timestamp\n"
    rows = f"a,{tenant.slug},api,/x,200,1,{at}\nb,{tenant.slug},{'x' * 200_000},/x,200,1,{at}\n"
    path = tmp_path / "edges.csv"
    path.write_text(header + rows, encoding="utf-8")

    code, _, err = await run_cli(database_url, "ingest", str(path), "--quiet")

    assert code == 1, err
    assert "Traceback" not in err
    assert "event 1 (event): malformed CSV at line 3: field larger than field limit" in err


# --- cursors -----------------------------------------------------------------------------

BAD_CURSORS = [
    _cursor("apikey:" + "9" * 5000),  # int() refuses more than 4,300 digits
    _cursor("apikey:" + "9" * 40),  # an int, but no BIGINT
    _cursor("apikey:9223372036854775808"),  # one past the largest BIGINT
    _cursor("apikey:١٢٣"),  # Arabic-Indic digits: str.isdigit and int accept them
    _cursor("apikey:٣"),
    _cursor("apikey:007"),  # another spelling of key 7
    _cursor("apikey:-1"),
    _cursor("apikey:"),
    _cursor("apikey:1").rstrip("="),  # the same bytes without padding
    "YXBpa2V5OjE=\n",
    "é",
    "",
    "%%%",
    "A" * 100_000,
]


@pytest.mark.parametrize(
    "cursor",
    BAD_CURSORS,
    ids=[
        "5000-digits",
        "40-digits",
        "bigint-plus-one",
        "arabic-indic-digits",
        "one-arabic-indic-digit",
        "leading-zeros",
        "negative",
        "no-digits",
        "unpadded",
        "trailing-newline",
        "non-ascii",
        "empty",
        "not-base64",
        "very-long",
    ],
)
async def test_a_malformed_cursor_is_refused_naming_after(world, client, cursor):
    tenant, _ = world
    query = (
        "query($after: String) { organization { apiKeys(first: 2, after: $after) { totalCount } } }"
    )
    response = await graphql(client, tenant.token, query, {"after": cursor})

    assert response.status_code == 200
    error = _error(response.json())
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_a_cursor_from_a_page_still_reads_the_next_page(world, client, clock):
    tenant, token = world
    at = clock() - timedelta(minutes=5)
    keys = [f"key-{n}" for n in range(3)]
    accepted = await post_events(client, token, [event(tenant.slug, at, api_key=k) for k in keys])
    assert accepted.status_code == 200
    query = """query($after: String) { organization { apiKeys(first: 2, after: $after) {
      edges { cursor node { name } } pageInfo { hasNextPage endCursor } } } }"""

    first = (await graphql(client, tenant.token, query)).json()["data"]["organization"]
    after = first["apiKeys"]["pageInfo"]["endCursor"]
    second = (await graphql(client, tenant.token, query, {"after": after})).json()

    names = [edge["node"]["name"] for edge in first["apiKeys"]["edges"]]
    names += [edge["node"]["name"] for edge in second["data"]["organization"]["apiKeys"]["edges"]]
    assert sorted(names) == keys
