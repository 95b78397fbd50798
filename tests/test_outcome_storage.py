"""Call outcomes as stored and read: ingestion derives them, every usage figure filters by
them, ``by_outcome`` splits by them; ``first_seen_at`` moves back only. Each figure is
checked against plain Python over the events as sent (issue 13, storage side)."""

from __future__ import annotations

import csv
import io
import itertools
import random
from collections.abc import Collection
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from db.queries import reports
from db.tables import api_keys, usage_events
from domain.dimensions import Dimension
from domain.outcomes import OUTCOME_CODES, CallOutcome, outcome_of
from domain.records import Share, Tally
from tests.factories import (
    STORAGE,
    event,
    graphql,
    make_ingest_token,
    make_tenant,
    post_events,
    settle,
)

T0 = datetime(2026, 6, 10, tzinfo=UTC)
NEPAL = timezone(timedelta(hours=5, minutes=45))
STATUSES = [200, 200, 200, 201, 404, 429, 400, 403, 500, 503]
FILTERS: list[Collection[CallOutcome] | None] = [
    None,
    {CallOutcome.NO_RESULT},
    {CallOutcome.SUCCESS, CallOutcome.SERVER_ERROR},
    set(CallOutcome),
    set(),
]
# [start, end) pairs: local days at +05:45 (quarter-hour rollup pieces at the edges), and
# edges off the 15-minute grid (raw-event pieces).
RANGES = [
    (datetime(2026, 6, 10, tzinfo=NEPAL), datetime(2026, 6, 12, tzinfo=NEPAL)),
    (datetime(2026, 6, 10, 3, 7, 30, tzinfo=UTC), datetime(2026, 6, 11, 20, 52, 1, tzinfo=UTC)),
    (datetime(2026, 6, 9, tzinfo=UTC), datetime(2026, 6, 14, tzinfo=UTC)),
]


def _sent(slug: str, count: int) -> list[dict[str, Any]]:
    rng = random.Random(13)
    events = []
    for _ in range(count):
        status = rng.choice(STATUSES)
        fields: dict[str, Any] = {
            "api_key": rng.choice(["key-a", "key-b", None]),
            "user": rng.choice(["ann", "bob", None]),
            "source": rng.choice(["crm", "web"]),
            "endpoint": rng.choice(["/v2/person", "/v2/company", "/v1/search"]),
            "status": status,
            "credits": rng.randrange(0, 6),
        }
        if rng.random() < 0.2:
            fields["outcome"] = "no_result"
        at = T0 + timedelta(seconds=rng.randrange(0, 3 * 86400))
        events.append(event(slug, at, **fields))
    return events


def _outcome(sent: dict[str, Any]) -> CallOutcome:
    return outcome_of(sent["status"], no_result=sent.get("outcome") == "no_result")


def _expected(
    events: list[dict[str, Any]],
    start: datetime,
    end: datetime,
    outcomes: Collection[CallOutcome] | None,
    group: Any,
) -> dict[Any, Tally]:
    sums: dict[Any, list[int]] = {}
    for sent in events:
        at = datetime.fromisoformat(sent["timestamp"])
        if not start <= at < end or (outcomes is not None and _outcome(sent) not in outcomes):
            continue
        slot = sums.setdefault(group(sent), [0, 0])
        slot[0] += 1
        slot[1] += sent["credits"]
    return {key: Tally(calls, credits) for key, (calls, credits) in sums.items()}


def _as_groups(shares: list[Share]) -> dict[Any, Tally]:
    return {share.value: Tally(share.calls, share.credits) for share in shares}


@pytest.fixture(params=STORAGE)
async def stored(request, client, engine, clock):  # type: ignore[no-untyped-def]
    """The events, read as they come (mostly from the rollup tail: the app's folder waits
    for a longer or older tail) or all folded into the rollups, whose layout differs by
    outcome (the all-outcomes rows and no SUCCESS rows: db/rollup_keys.py)."""
    tenant = await make_tenant(engine, now=clock(), slug="outcomes")
    token = await make_ingest_token(engine, now=clock())
    events = _sent(tenant.slug, 400)
    for start in range(0, len(events), 100):
        response = await post_events(client, token, events[start : start + 100])
        assert response.status_code == 200, response.text
    await settle(engine, request.param)
    async with engine.connect() as conn:
        keys = {row.external_id: row.id for row in await conn.execute(select(api_keys))}
    return tenant, events, keys


async def test_ingestion_stores_the_outcome_of_each_event(stored, engine):
    _, events, _ = stored
    async with engine.connect() as conn:
        rows = dict(
            (await conn.execute(select(usage_events.c.event_id, usage_events.c.outcome))).all()
        )
    assert rows == {sent["id"]: OUTCOME_CODES[_outcome(sent)] for sent in events}
    assert {_outcome(sent) for sent in events} == set(CallOutcome)


@pytest.mark.parametrize("outcomes", FILTERS, ids=["all", "no-result", "two", "every", "none"])
@pytest.mark.parametrize("window", range(len(RANGES)), ids=["nepal-days", "ragged", "week"])
async def test_filtered_figures_equal_raw_sums(stored, engine, outcomes, window):
    tenant, events, keys = stored
    start, end = RANGES[window]
    org = tenant.organization_id
    async with engine.connect() as conn:
        total = await reports.totals(
            conn, organization_id=org, start=start, end=end, api_key_ids=None, outcomes=outcomes
        )
        per_endpoint = await reports.breakdown(
            conn,
            organization_id=org,
            dimension=Dimension.ENDPOINT,
            start=start,
            end=end,
            api_key_ids=None,
            outcomes=outcomes,
        )
        per_key = await reports.by_api_key(
            conn, organization_id=org, start=start, end=end, api_key_ids=None, outcomes=outcomes
        )
        key_a_sources = await reports.breakdown_per_key(
            conn,
            organization_id=org,
            dimension=Dimension.SOURCE,
            start=start,
            end=end,
            api_key_ids=[keys["key-a"]],
            outcomes=outcomes,
        )
        edges = [
            start + timedelta(hours=7 * i) for i in range(int((end - start) / timedelta(hours=7)))
        ]
        edges.append(end)
        series = await reports.series(
            conn, organization_id=org, edges=edges, api_key_ids=None, outcomes=outcomes
        )
        split = await reports.by_outcome(
            conn, organization_id=org, start=start, end=end, api_key_ids=None, outcomes=outcomes
        )

    everything = _expected(events, start, end, outcomes, lambda sent: "")
    assert total == everything.get("", Tally(0, 0))
    assert _as_groups(per_endpoint) == _expected(
        events, start, end, outcomes, lambda sent: sent["endpoint"]
    )
    assert _as_groups(per_key) == _expected(
        events, start, end, outcomes, lambda sent: keys.get(sent.get("api_key"), 0)
    )
    assert _as_groups(key_a_sources[keys["key-a"]]) == _expected(
        [sent for sent in events if sent.get("api_key") == "key-a"],
        start,
        end,
        outcomes,
        lambda sent: sent["source"],
    )
    assert series == [
        _expected(events, low, high, outcomes, lambda sent: "").get("", Tally(0, 0))
        for low, high in itertools.pairwise(edges)
    ]
    by_outcome = _expected(events, start, end, outcomes, lambda sent: _outcome(sent).value)
    assert _as_groups(split) == by_outcome
    assert sum(share.credits for share in split) == total.credits
    if outcomes is None and window == 0:
        assert len(split) == len(CallOutcome)  # the data covers every outcome


async def test_outcome_other_than_no_result_is_refused_naming_the_field(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    bad = [
        event(tenant.slug, clock(), outcome="NO_RESULT"),
        event(tenant.slug, clock(), outcome="success"),
        event(tenant.slug, clock(), outcome=1),
    ]
    response = await post_events(client, token, [event(tenant.slug, clock()), *bad])
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(error["index"], error["field"]) for error in errors] == [
        (1, "outcome"),
        (2, "outcome"),
        (3, "outcome"),
    ]


async def test_no_result_only_changes_a_success(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    sent = [
        event(tenant.slug, clock(), status=200, outcome="no_result"),
        event(tenant.slug, clock(), status=500, outcome="no_result"),
        event(tenant.slug, clock(), status=429, outcome="no_result"),
    ]
    assert (await post_events(client, token, sent)).status_code == 200
    async with engine.connect() as conn:
        rows = dict(
            (await conn.execute(select(usage_events.c.event_id, usage_events.c.outcome))).all()
        )
    assert [rows[item["id"]] for item in sent] == [
        OUTCOME_CODES[CallOutcome.NO_RESULT],
        OUTCOME_CODES[CallOutcome.SERVER_ERROR],
        OUTCOME_CODES[CallOutcome.RATE_LIMITED],
    ]


async def test_csv_ingest_reads_the_outcome_column(engine, clock):
    from app.file_ingest import ingest_stream

    tenant = await make_tenant(engine, now=clock())
    rows = [
        event(tenant.slug, clock() - timedelta(minutes=1), outcome="no_result"),
        event(tenant.slug, clock() - timedelta(minutes=2)),
    ]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=[*rows[0].keys()])
    writer.writeheader()
    writer.writerows(rows)
    text.seek(0)
    summary = await ingest_stream(engine, text, kind="csv", batch_size=1000, progress=False)
    assert summary.accepted == 2, summary.errors
    async with engine.connect() as conn:
        stored = dict(
            (await conn.execute(select(usage_events.c.event_id, usage_events.c.outcome))).all()
        )
    assert stored == {
        rows[0]["id"]: OUTCOME_CODES[CallOutcome.NO_RESULT],
        rows[1]["id"]: OUTCOME_CODES[CallOutcome.SUCCESS],
    }


FIRST_SEEN = """
query { organization { apiKeys { nodes { id createdAt firstSeenAt lastUsedAt } } } }
"""


async def test_first_seen_moves_back_only_and_is_null_before_any_event(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    middle = clock() - timedelta(days=3)
    for at in (middle, middle + timedelta(days=1), middle - timedelta(days=2), middle):
        response = await post_events(client, token, [event(tenant.slug, at, api_key="key-a")])
        assert response.status_code == 200
    async with engine.begin() as conn:
        await conn.execute(
            api_keys.insert().values(
                organization_id=tenant.organization_id,
                external_id="unused",
                name="Unused",
                created_at=clock(),
            )
        )
    body = (await graphql(client, tenant.token, FIRST_SEEN)).json()
    assert "errors" not in body, body
    nodes = {node["id"]: node for node in body["data"]["organization"]["apiKeys"]["nodes"]}
    assert datetime.fromisoformat(nodes["key-a"]["firstSeenAt"]) == middle - timedelta(days=2)
    assert datetime.fromisoformat(nodes["key-a"]["lastUsedAt"]) == middle + timedelta(days=1)
    assert nodes["unused"]["firstSeenAt"] is None
