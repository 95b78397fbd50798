"""UsageReport.spikes over the API: planted spikes in noise, steady traffic, DST, sparse
data; every spike and driver against tests/spike_oracle.py over the raw events."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests import spike_oracle
from tests.factories import answer, event, make_tenant, post_events

SPIKES = """
query($range: TimeRangeInput!, $granularity: Granularity!, $key: ID) {
  organization {
    usage(timeRange: $range, keyId: $key) {
      spikes(granularity: $granularity) {
        start end creditsConsumed expectedCredits excessCredits
        drivers {
          dimension value apiKey { id } user { id }
          creditsConsumed expectedCredits excessCredits shareOfExcess
        }
      }
    }
  }
}
"""

WEEKLY = (1.0, 1.05, 1.0, 0.95, 0.9, 0.35, 0.25)
KEYS = ("key-a", "key-b", "key-c")
ENDPOINTS = ("/v2/person", "/v2/company", "/v2/search")
SOURCES = ("api", "crm")
USERS = ("u-1", "u-2", None)


@pytest.fixture
async def tenant(engine, clock):
    clock.now = datetime(2027, 1, 15, tzinfo=UTC)
    return await make_tenant(engine, now=clock(), timezone="UTC")


def local(zone: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def day_of_traffic(
    slug: str, rng: random.Random, day: datetime, credits: int, per_day: int = 6
) -> list[dict[str, Any]]:
    """About ``credits`` credits in ``per_day`` calls spread over the day."""
    events = []
    for _ in range(per_day):
        user = rng.choice(USERS)
        events.append(
            event(
                slug,
                day + timedelta(seconds=rng.randrange(86_400)),
                api_key=rng.choice(KEYS),
                endpoint=rng.choice(ENDPOINTS),
                source=rng.choice(SOURCES),
                user=None if user is None else {"id": user, "name": user.upper()},
                credits=max(0, round(credits / per_day)),
            )
        )
    return events


def steady_days(
    slug: str, seed: int, first: datetime, days: int, base: int = 600
) -> list[dict[str, Any]]:
    """Days with a weekly rhythm and ±20 % noise (from a UTC midnight ``first``)."""
    rng = random.Random(seed)
    events = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        credits = round(base * WEEKLY[day.weekday()] * rng.uniform(0.8, 1.2))
        events += day_of_traffic(slug, rng, day, credits)
    return events


async def load(client, ingest, events) -> None:
    for at in range(0, len(events), 1000):
        response = await post_events(client, ingest, events[at : at + 1000])
        assert response.status_code == 200, response.text


async def spikes_of(client, tenant, start, end, granularity, zone="UTC", key=None):
    variables = {
        "range": {"start": start.isoformat(), "end": end.isoformat(), "timezone": zone},
        "granularity": granularity,
        "key": key,
    }
    return (await answer(client, tenant.token, SPIKES, variables))["organization"]["usage"][
        "spikes"
    ]


def expected_answer(events, start, end, zone, granularity) -> list[dict[str, Any]]:
    """The oracle's spikes in the API's shape."""
    answer = []
    for spike in spike_oracle.spikes(events, start, end, zone, granularity):
        drivers = []
        for dimension, rows in spike["drivers"].items():
            for value, credits, expected, excess, share in rows:
                drivers.append(
                    {
                        "dimension": dimension,
                        "value": value,
                        "apiKey": {"id": value} if dimension == "API_KEY" and value else None,
                        "user": {"id": value} if dimension == "USER" and value else None,
                        "creditsConsumed": credits,
                        "expectedCredits": expected,
                        "excessCredits": excess,
                        "shareOfExcess": share,
                    }
                )
        answer.append(
            {
                "start": spike["start"].isoformat().replace("+00:00", "Z"),
                "end": spike["end"].isoformat().replace("+00:00", "Z"),
                "creditsConsumed": spike["credits"],
                "expectedCredits": spike["expected"],
                "excessCredits": spike["excess"],
                "drivers": drivers,
            }
        )
    return answer


def normalised(spikes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instants as UTC ``…Z`` text, whatever offset notation the server used."""
    for spike in spikes:
        for field in ("start", "end"):
            instant = datetime.fromisoformat(spike[field].replace("Z", "+00:00"))
            spike[field] = instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return spikes


# Eight weeks of history and four weeks of report, Mondays to Mondays.
HISTORY_START = datetime(2026, 3, 2, tzinfo=UTC)
REPORT_START = datetime(2026, 4, 27, tzinfo=UTC)
REPORT_END = datetime(2026, 5, 25, tzinfo=UTC)


async def test_a_planted_spike_is_found_with_its_key_and_endpoint(client, tenant, ingest):
    events = steady_days(tenant.slug, 7, HISTORY_START, 84)
    spike_day = datetime(2026, 5, 13, tzinfo=UTC)  # a Wednesday
    rng = random.Random(1)
    events += [
        event(
            tenant.slug,
            spike_day + timedelta(hours=9, minutes=minute),
            api_key="key-runaway",
            endpoint="/v2/bulk",
            source="api",
            credits=120,
        )
        for minute in range(10)
    ]  # 1,200 credits on a day of about 600: 3x
    events += day_of_traffic(tenant.slug, rng, spike_day, 0, per_day=2)
    await load(client, ingest, events)

    found = normalised(await spikes_of(client, tenant, REPORT_START, REPORT_END, "DAY"))

    assert found == expected_answer(events, REPORT_START, REPORT_END, "UTC", "DAY")
    assert [spike["start"] for spike in found] == ["2026-05-13T00:00:00Z"]
    drivers = {(d["dimension"], d["value"]) for d in found[0]["drivers"]}
    assert ("API_KEY", "key-runaway") in drivers
    assert ("ENDPOINT", "/v2/bulk") in drivers
    first_key = next(d for d in found[0]["drivers"] if d["dimension"] == "API_KEY")
    assert first_key["value"] == "key-runaway"
    assert first_key["expectedCredits"] == 0
    assert first_key["shareOfExcess"] > 0.9


@pytest.mark.parametrize("seed", [11, 12, 13], ids=["seed-11", "seed-12", "seed-13"])
async def test_steady_traffic_with_a_weekly_rhythm_has_no_spike(client, tenant, ingest, seed):
    events = steady_days(tenant.slug, seed, HISTORY_START, 84)
    await load(client, ingest, events)

    found = await spikes_of(client, tenant, REPORT_START, REPORT_END, "DAY")

    assert found == []
    assert expected_answer(events, REPORT_START, REPORT_END, "UTC", "DAY") == []


async def test_too_little_history_judges_nothing(client, tenant, ingest):
    # Three weeks of calls: each weekday has at most three days before it, fewer than the
    # four the method needs, so even a tenfold day is not called a spike.
    first = datetime(2026, 4, 6, tzinfo=UTC)
    events = steady_days(tenant.slug, 3, first, 21)
    events += [event(tenant.slug, datetime(2026, 4, 29, 10, tzinfo=UTC), credits=6_000)]
    await load(client, ingest, events)

    assert (
        await spikes_of(client, tenant, datetime(2026, 4, 27, tzinfo=UTC), REPORT_END, "DAY") == []
    )


async def test_sparse_calls_make_no_spike_until_one_stands_out(client, tenant, ingest):
    # A key used on some days only, a few credits at a time: its zero-median history spreads
    # by the floors (2 credits), so small days stay quiet and a burst of 40 stands out.
    rng = random.Random(5)
    events = [
        event(tenant.slug, HISTORY_START + timedelta(days=day, hours=10), credits=rng.randint(1, 3))
        for day in range(0, 84, 3)
    ]
    burst = datetime(2026, 5, 20, 15, tzinfo=UTC)
    events.append(event(tenant.slug, burst, credits=40))
    await load(client, ingest, events)

    found = normalised(await spikes_of(client, tenant, REPORT_START, REPORT_END, "DAY"))

    assert found == expected_answer(events, REPORT_START, REPORT_END, "UTC", "DAY")
    assert [spike["start"] for spike in found] == ["2026-05-20T00:00:00Z"]


async def test_days_across_both_berlin_dst_changes_are_no_spikes(client, engine, clock, ingest):
    # Steady hourly traffic: the 23- and 25-hour days hold 23/24 and 25/24 of a day and are
    # expected to, by the length scaling; a planted day in between is found.
    clock.now = datetime(2027, 1, 15, tzinfo=UTC)
    tenant = await make_tenant(engine, now=clock(), timezone="Europe/Berlin")
    zone = "Europe/Berlin"
    start, end = local(zone, 2026, 1, 26), local(zone, 2026, 11, 2)
    rng = random.Random(9)
    events = []
    hour = start - timedelta(weeks=8)
    while hour < end:
        events.append(event(tenant.slug, hour + timedelta(minutes=rng.randrange(60)), credits=10))
        hour += timedelta(hours=1)
    planted = local(zone, 2026, 7, 15)
    events += [event(tenant.slug, planted + timedelta(hours=3), credits=600)]
    await load(client, ingest, events)

    found = normalised(await spikes_of(client, tenant, start, end, "DAY", zone=zone))

    assert found == expected_answer(events, start, end, zone, "DAY")
    assert [spike["start"] for spike in found] == ["2026-07-14T22:00:00Z"]


async def test_the_repeated_berlin_hour_is_no_spike(client, engine, clock, ingest):
    # On 2026-10-25 the hour from 02:00 happens twice: one bucket of two hours, holding
    # twice the credits of an hour, which its baseline (scaled by length) expects.
    clock.now = datetime(2027, 1, 15, tzinfo=UTC)
    tenant = await make_tenant(engine, now=clock(), timezone="Europe/Berlin")
    zone = "Europe/Berlin"
    start, end = local(zone, 2026, 10, 25), local(zone, 2026, 10, 26)
    events = []
    point = start - timedelta(weeks=4)
    while point < end:
        events.append(event(tenant.slug, point + timedelta(minutes=30), credits=20))
        point += timedelta(hours=1)
    await load(client, ingest, events)

    found = await spikes_of(client, tenant, start, end, "HOUR", zone=zone)

    assert found == []
    assert expected_answer(events, start, end, zone, "HOUR") == []


async def test_spikes_of_one_key_only_read_that_key(client, tenant, ingest):
    events = steady_days(tenant.slug, 21, HISTORY_START, 84)
    spike_day = datetime(2026, 5, 5, tzinfo=UTC)
    events += [
        event(tenant.slug, spike_day + timedelta(hours=h), api_key="key-c", credits=400)
        for h in range(3)
    ]
    await load(client, ingest, events)
    only_c = [item for item in events if item.get("api_key") == "key-c"]

    found = normalised(
        await spikes_of(client, tenant, REPORT_START, REPORT_END, "DAY", key="key-c")
    )

    assert found == expected_answer(only_c, REPORT_START, REPORT_END, "UTC", "DAY")
    assert "2026-05-05T00:00:00Z" in [spike["start"] for spike in found]


async def test_another_organizations_spike_is_not_seen(client, engine, clock, tenant, ingest):
    other = await make_tenant(engine, now=clock(), timezone="UTC")
    mine = steady_days(tenant.slug, 31, HISTORY_START, 84)
    theirs = steady_days(other.slug, 31, HISTORY_START, 84)
    theirs += [
        event(other.slug, datetime(2026, 5, 13, 9, tzinfo=UTC), api_key="key-a", credits=5_000)
    ]
    await load(client, ingest, mine + theirs)

    assert await spikes_of(client, tenant, REPORT_START, REPORT_END, "DAY") == []
    [spike] = await spikes_of(client, other, REPORT_START, REPORT_END, "DAY")
    assert spike["creditsConsumed"] == sum(
        item["credits"]
        for item in theirs
        if datetime(2026, 5, 13, tzinfo=UTC)
        <= datetime.fromisoformat(item["timestamp"])
        < datetime(2026, 5, 14, tzinfo=UTC)
    )


async def test_a_planted_hour_is_found_across_the_spring_change(client, engine, clock, ingest):
    # Office hours and nights, weekdays and weekends, across 29 March 2026 (a 23-hour day
    # in Berlin); one hour on the Monday after it at five times its usual credits.
    clock.now = datetime(2027, 1, 15, tzinfo=UTC)
    tenant = await make_tenant(engine, now=clock(), timezone="Europe/Berlin")
    zone = "Europe/Berlin"
    start, end = local(zone, 2026, 3, 28), local(zone, 2026, 4, 1)
    rng = random.Random(4)
    events = []
    point = local(zone, 2026, 2, 28)
    while point < end:
        wall = point.astimezone(ZoneInfo(zone))
        level = (40 if 8 <= wall.hour < 19 else 6) * (1 if wall.weekday() < 5 else 0.3)
        credits = round(level * rng.uniform(0.8, 1.2))
        events.append(event(tenant.slug, point + timedelta(minutes=20), credits=credits))
        point += timedelta(hours=1)
    planted = local(zone, 2026, 3, 30, 10)
    events.append(event(tenant.slug, planted + timedelta(minutes=5), credits=160))
    await load(client, ingest, events)

    found = normalised(await spikes_of(client, tenant, start, end, "HOUR", zone=zone))

    assert found == expected_answer(events, start, end, zone, "HOUR")
    assert [spike["start"] for spike in found] == ["2026-03-30T08:00:00Z"]
