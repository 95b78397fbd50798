"""Every field of a usage report equals a plain-Python computation over the raw events.

Hypothesis draws events around the DST changes of several zones (with and without key,
user, in several sources and endpoints) and ranges whose edges are on the grain or ragged
to the microsecond, then compares totals, each breakdown (rows, order, percents) and the
HOUR, DAY, WEEK and MONTH series with ``tests.oracle``, which finds the calendar periods by
reading wall clocks with zoneinfo, not through ``domain.periods``.

Each example creates its own organization (unique slug), so examples need no cleanup and
the function-scoped fixtures (app, client, clock) can be shared by all of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests import oracle
from tests.factories import event, graphql, make_ingest_token, make_tenant, post_events

ZONES = oracle.TRICKY_ZONES
USERS = {"u-1": "Zoe", "u-2": "Adam", "u-3": "Mia"}  # name order differs from id order
KEYS = ["k-1", "k-2", "k-3"]
SOURCES = ["api", "crm_integration", "Extension"]  # stored lower-case
ENDPOINTS = ["/v2/person", "/v2/company", "prospecting/contact/enrich"]
NOW = datetime(2027, 1, 15, tzinfo=UTC)


def _transitions() -> list[datetime]:
    """Every UTC-offset change of ZONES in 2026, found by scanning hourly with zoneinfo."""
    found: set[datetime] = set()
    for name in ZONES:
        tz = ZoneInfo(name)
        point = datetime(2026, 1, 1, tzinfo=UTC)
        while point.year == 2026:
            after = point + timedelta(hours=1)
            if point.astimezone(tz).utcoffset() != after.astimezone(tz).utcoffset():
                low, high = point, after
                while high - low > timedelta(minutes=15):
                    middle = low + (high - low) / 2
                    if middle.astimezone(tz).utcoffset() == point.astimezone(tz).utcoffset():
                        low = middle
                    else:
                        high = middle
                found.add(high)
            point = after
    return sorted(found)


TRANSITIONS = _transitions()

near_change = st.builds(
    lambda base, seconds, micros: base + timedelta(seconds=seconds, microseconds=micros),
    st.sampled_from(TRANSITIONS),
    st.integers(-3 * 86400, 3 * 86400),
    st.integers(0, 999_999),
)

raw_event = st.fixed_dictionaries(
    {
        "at": near_change,
        "api_key": st.sampled_from([None, *KEYS]),
        "user": st.sampled_from([None, *USERS]),
        "source": st.sampled_from(SOURCES),
        "endpoint": st.sampled_from(ENDPOINTS),
        "credits": st.integers(0, 5),
    }
)


@st.composite
def time_ranges(draw: st.DrawFn) -> tuple[datetime, datetime]:
    start = draw(near_change)
    length = draw(st.integers(60, 12 * 86400))
    end = start + timedelta(seconds=length, microseconds=draw(st.integers(0, 999_999)))
    grid = draw(st.sampled_from([None, 900, 3600]))  # ragged, on the 15-minute or hour grid
    if grid is not None:
        start = _floor(start, grid)
        end = max(_floor(end, grid), start + timedelta(seconds=grid))
    return start, end


def _floor(instant: datetime, seconds: int) -> datetime:
    return datetime.fromtimestamp(int(instant.timestamp()) // seconds * seconds, tz=UTC)


QUERY = """
query($range: TimeRangeInput!, $key: ID) {
  organization {
    usage(timeRange: $range, keyId: $key) {
      calls creditsConsumed
      byEndpoint { endpoint calls creditsConsumed percentOfTotal }
      bySource { source calls creditsConsumed percentOfTotal }
      byUser { user { id name } calls creditsConsumed percentOfTotal }
      byApiKey { apiKey { id name } calls creditsConsumed percentOfTotal }
      hour: series(granularity: HOUR) { start end calls creditsConsumed }
      day: series(granularity: DAY) { start end calls creditsConsumed }
      week: series(granularity: WEEK) { start end calls creditsConsumed }
      month: series(granularity: MONTH) { start end calls creditsConsumed }
    }
  }
}
"""


def expected_rows(
    events: list[dict[str, Any]], group: Any, name: Any
) -> list[tuple[Any, int, int, float]]:
    """(group, calls, credits, percent), ordered by credits, calls, then display name with
    the unnamed row (no user, no key) after the named ones."""
    rows = oracle.table(events, group)
    rows.sort(key=lambda row: (-row[2], -row[1], name(row[0]) is None, name(row[0]) or ""))
    return [(*row, percent) for row, percent in zip(rows, oracle.percents(rows), strict=True)]


def check_rows(got: list[dict[str, Any]], label: Any, wanted: list[tuple]) -> None:
    assert [(label(row), row["calls"], row["creditsConsumed"]) for row in got] == [
        row[:3] for row in wanted
    ]
    for row, want in zip(got, wanted, strict=True):
        assert abs(row["percentOfTotal"] - want[3]) <= 1e-3


def buckets(rows: list[dict[str, Any]]) -> list[tuple[datetime, datetime, int, int]]:
    return [
        (
            datetime.fromisoformat(row["start"]),
            datetime.fromisoformat(row["end"]),
            row["calls"],
            row["creditsConsumed"],
        )
        for row in rows
    ]


@settings(
    max_examples=30,
    deadline=None,
    # One organization per example: sharing the function-scoped app and client is safe.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# Found by hypothesis: an HOUR series starting inside Chatham's repeated 45 minutes.
@example(
    zone="Pacific/Chatham",
    drawn=[],
    time_range=(
        datetime(2026, 4, 4, 14, 0, tzinfo=UTC),
        datetime(2026, 4, 4, 14, 15, 0, 1, tzinfo=UTC),
    ),
    filter_key=False,
)
@given(
    zone=st.sampled_from(ZONES),
    drawn=st.lists(raw_event, max_size=40),
    time_range=time_ranges(),
    filter_key=st.booleans(),
)
async def test_every_report_field_equals_the_raw_events(
    client, engine, clock, zone, drawn, time_range, filter_key
):
    clock.now = NOW
    tenant = await make_tenant(engine, now=NOW, timezone=zone)
    ingest = await make_ingest_token(engine, now=NOW)
    events = [
        event(
            tenant.slug,
            item["at"],
            api_key=item["api_key"],
            user=None
            if item["user"] is None
            else {"id": item["user"], "name": USERS[item["user"]]},
            source=item["source"],
            endpoint=item["endpoint"],
            credits=item["credits"],
        )
        for item in drawn
    ]
    if events:
        assert (await post_events(client, ingest, events)).status_code == 200
    start, end = time_range
    used_keys = {oracle.key_of(item) for item in events} - {None}
    key = sorted(used_keys)[0] if filter_key and used_keys else None
    # The organization's zone is the default: the range names none.
    variables = {"range": {"start": start.isoformat(), "end": end.isoformat()}, "key": key}
    body = (await graphql(client, tenant.token, QUERY, variables)).json()
    assert "errors" not in body, body
    report = body["data"]["organization"]["usage"]

    chosen = oracle.select(events, start, end, key)
    assert (report["calls"], report["creditsConsumed"]) == oracle.totals(chosen)
    check_rows(
        report["byEndpoint"],
        lambda row: row["endpoint"],
        expected_rows(chosen, lambda item: item["endpoint"], lambda value: value),
    )
    check_rows(
        report["bySource"],
        lambda row: row["source"],
        expected_rows(chosen, lambda item: item["source"].lower(), lambda value: value),
    )
    check_rows(
        report["byUser"],
        lambda row: None if row["user"] is None else row["user"]["id"],
        expected_rows(chosen, oracle.user_of, lambda value: USERS.get(value)),
    )
    check_rows(
        report["byApiKey"],
        lambda row: None if row["apiKey"] is None else row["apiKey"]["id"],
        expected_rows(chosen, oracle.key_of, lambda value: value),
    )
    for alias, granularity in (
        ("hour", "HOUR"),
        ("day", "DAY"),
        ("week", "WEEK"),
        ("month", "MONTH"),
    ):
        assert buckets(report[alias]) == oracle.series(events, start, end, zone, granularity, key)
