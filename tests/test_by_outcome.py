"""UsageReport.byOutcome and the outcomes filter on spikes, against plain Python over the
raw events (outcomes derived by ``oracle.outcome_of`` from DESIGN.md's table, not by
domain/outcomes.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.settings import Settings
from domain.outcomes import CallOutcome
from graphql_schema.limits.cost import _max_length
from graphql_schema.schema import build_schema
from graphql_schema.types.outcomes import MAX_OUTCOMES
from tests import oracle, spike_oracle
from tests.factories import answer, event, make_ingest_token, make_tenant, post_events

START, END = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 8, tzinfo=UTC)
BY_OUTCOME = """
query($range: TimeRangeInput!, $key: ID, $outcomes: [CallOutcome!]) {
  organization {
    usage(timeRange: $range, keyId: $key, outcomes: $outcomes) {
      creditsConsumed
      byOutcome { outcome calls creditsConsumed percentOfTotal }
    }
  }
}
"""
STATUSES = (200, 201, 304, 404, 429, 400, 401, 500, 503)


@pytest.fixture
async def tenant(engine, clock):
    clock.now = datetime(2027, 1, 15, tzinfo=UTC)
    return await make_tenant(engine, now=clock(), timezone="UTC")


@pytest.fixture
async def ingest(engine, clock):
    return await make_ingest_token(engine, now=clock())


def mixed(slug: str, seed: int, count: int = 300) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for _ in range(count):
        status = rng.choice(STATUSES)
        extra = {}
        if status < 400 and rng.random() < 0.3:
            extra["outcome"] = "no_result"
        events.append(
            event(
                slug,
                START + timedelta(seconds=rng.randrange(7 * 86_400)),
                api_key=rng.choice(["key-a", "key-b"]),
                status=status,
                credits=rng.choice([0, 1, 1, 2, 5]),
                **extra,
            )
        )
    return events


async def ask(client, tenant, variables):
    return (await answer(client, tenant.token, BY_OUTCOME, variables))["organization"]["usage"]


@pytest.mark.parametrize("key", [None, "key-b"], ids=["all-keys", "one-key"])
async def test_by_outcome_matches_the_raw_events(client, tenant, ingest, key):
    events = mixed(tenant.slug, 3)
    assert (await post_events(client, ingest, events)).status_code == 200
    variables = {"range": {"start": START.isoformat(), "end": END.isoformat()}, "key": key}

    usage = await ask(client, tenant, variables)

    wanted = oracle.table(oracle.select(events, START, END, key), oracle.outcome_of)
    rows = usage["byOutcome"]
    assert [(r["outcome"], r["calls"], r["creditsConsumed"]) for r in rows] == wanted
    for row, percent in zip(rows, oracle.percents(wanted), strict=True):
        assert row["percentOfTotal"] == pytest.approx(percent, abs=1e-4)
    assert sum(r["creditsConsumed"] for r in rows) == usage["creditsConsumed"]


async def test_an_empty_range_has_no_outcome_rows(client, tenant, ingest):
    variables = {"range": {"start": START.isoformat(), "end": END.isoformat()}}
    assert (await ask(client, tenant, variables))["byOutcome"] == []


def test_by_outcome_is_priced_as_the_five_rows_it_can_have():
    schema = build_schema(Settings())._schema
    field = schema.type_map["UsageReport"].fields["byOutcome"]
    assert _max_length(field) == MAX_OUTCOMES == len(CallOutcome)


async def test_the_outcomes_filter_keeps_only_those_rows(client, tenant, ingest):
    events = mixed(tenant.slug, 4)
    assert (await post_events(client, ingest, events)).status_code == 200
    variables = {
        "range": {"start": START.isoformat(), "end": END.isoformat()},
        "outcomes": ["NO_RESULT", "SERVER_ERROR"],
    }

    usage = await ask(client, tenant, variables)

    kept = [e for e in events if oracle.outcome_of(e) in {"NO_RESULT", "SERVER_ERROR"}]
    wanted = oracle.table(oracle.select(kept, START, END), oracle.outcome_of)
    assert [(r["outcome"], r["calls"], r["creditsConsumed"]) for r in usage["byOutcome"]] == wanted


SPIKES = """
query($range: TimeRangeInput!, $outcomes: [CallOutcome!]) {
  organization {
    usage(timeRange: $range, outcomes: $outcomes) {
      spikes(granularity: DAY) {
        start creditsConsumed expectedCredits excessCredits
        drivers { dimension value creditsConsumed expectedCredits excessCredits }
      }
    }
  }
}
"""


async def test_spikes_of_calls_without_result_only(client, tenant, ingest):
    # Steady successful traffic; one day a key's lookups find nothing, at a volume that is
    # no spike of all calls but is one of the NO_RESULT calls.
    rng = random.Random(8)
    history = datetime(2026, 3, 2, tzinfo=UTC)
    events = []
    for day in range(84):
        at = history + timedelta(days=day)
        for _ in range(8):
            events.append(
                event(tenant.slug, at + timedelta(minutes=rng.randrange(1440)), credits=50)
            )
        events.append(
            event(tenant.slug, at + timedelta(hours=3), status=404, credits=rng.randint(4, 6))
        )
    burst = datetime(2026, 5, 13, 9, tzinfo=UTC)
    events += [
        event(
            tenant.slug,
            burst + timedelta(minutes=m),
            api_key="key-dedupe",
            status=200,
            outcome="no_result",
            credits=5,
        )
        for m in range(6)
    ]
    for at in range(0, len(events), 1000):
        assert (await post_events(client, ingest, events[at : at + 1000])).status_code == 200
    start, end = datetime(2026, 4, 27, tzinfo=UTC), datetime(2026, 5, 25, tzinfo=UTC)
    variables = {"range": {"start": start.isoformat(), "end": end.isoformat()}}

    everything = await ask_spikes(client, tenant, variables)
    no_result = await ask_spikes(client, tenant, {**variables, "outcomes": ["NO_RESULT"]})

    assert everything == []
    kept = [e for e in events if oracle.outcome_of(e) == "NO_RESULT"]
    wanted = spike_oracle.spikes(kept, start, end, "UTC", "DAY")
    assert [s["credits"] for s in wanted] == [s["creditsConsumed"] for s in no_result]
    assert [s["start"] for s in no_result] == ["2026-05-13T00:00:00+00:00"]
    keys = [d for d in no_result[0]["drivers"] if d["dimension"] == "API_KEY"]
    assert keys[0]["value"] == "key-dedupe"


async def ask_spikes(client, tenant, variables):
    return (await answer(client, tenant.token, SPIKES, variables))["organization"]["usage"][
        "spikes"
    ]
