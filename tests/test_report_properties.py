"""Every field of a usage report equals a plain-Python computation over the raw events.

Hypothesis draws events around the DST changes of several zones (with and without key,
user, in several sources and endpoints) and ranges whose edges are on the grain or ragged
to the microsecond, then compares totals, each breakdown (rows, order, percents) and the
HOUR, DAY, WEEK and MONTH series with ``tests.oracle``, which finds the calendar periods by
reading wall clocks with zoneinfo, not through ``domain.periods``.

A second property does the same in zones whose historical offsets were off the 15-minute
grid (Africa/Monrovia -00:44:30, Pacific/Kiritimati -10:40, Europe/Amsterdam +00:19:32,
local mean time), where every period edge is ragged.

Each example creates its own organization (unique slug), so examples need no cleanup and
the function-scoped fixtures (app, client, clock) can be shared by all of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from db.ingestion.validation import Reference, ValidEvent
from db.ingestion.writer import write
from domain.outcomes import outcome_of
from tests import oracle
from tests.factories import answer, event, make_ingest_token, make_tenant, post_events

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


def _events(slug: str, drawn: list[dict]) -> list[dict]:
    """The drawn calls as events of the organization ``slug``."""
    return [
        event(
            slug,
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
    events = _events(tenant.slug, drawn)
    if events:
        assert (await post_events(client, ingest, events)).status_code == 200
    start, end = time_range
    used_keys = {oracle.key_of(item) for item in events} - {None}
    key = sorted(used_keys)[0] if filter_key and used_keys else None
    # The organization's zone is the default: the range names none.
    variables = {"range": {"start": start.isoformat(), "end": end.isoformat()}, "key": key}
    # Read as ingested and again from the rollups (``answer``): both must be the oracle's.
    data = await answer(client, tenant.token, QUERY, variables)
    assert_report_matches(data["organization"]["usage"], events, start, end, zone, key)


def assert_report_matches(
    report: dict[str, Any],
    events: list[dict[str, Any]],
    start: datetime,
    end: datetime,
    zone: str,
    key: str | None,
) -> None:
    """Totals, every breakdown and every series of ``report`` equal the oracle's."""
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


def _offset_changes(zone: str, first: datetime, last: datetime) -> list[datetime]:
    """Every UTC-offset change of ``zone`` in ``[first, last)``, to the second."""
    tz = ZoneInfo(zone)
    found = []
    point = first
    while point < last:
        after = point + timedelta(hours=6)
        if point.astimezone(tz).utcoffset() != after.astimezone(tz).utcoffset():
            low, high = point, after
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) // 2
                if middle.astimezone(tz).utcoffset() == point.astimezone(tz).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high)
        point = after
    return found


# Where ranges and events are drawn: three days (the drawing margin) into each window, its
# middle, and every offset change in it.
OFF_GRID_BASES = {
    zone: [
        first + timedelta(days=3),
        first + (last - first) / 2,
        *_offset_changes(zone, first + timedelta(days=3), last - timedelta(days=15)),
    ]
    for zone, first, last, _ in oracle.OFF_GRID_WINDOWS
}


@st.composite
def off_grid_cases(
    draw: st.DrawFn,
) -> tuple[str, tuple[datetime, datetime], list[dict[str, Any]]]:
    zone, _, _, storable = draw(st.sampled_from(oracle.OFF_GRID_WINDOWS))
    base = draw(st.sampled_from(OFF_GRID_BASES[zone]))
    near_base = st.builds(
        lambda seconds, micros: base + timedelta(seconds=seconds, microseconds=micros),
        st.integers(-3 * 86400, 3 * 86400),
        st.integers(0, 999_999),
    )
    start = draw(near_base)
    end = start + timedelta(
        seconds=draw(st.integers(60, 12 * 86400)), microseconds=draw(st.integers(0, 999_999))
    )
    grid = draw(st.sampled_from([None, 900, 3600]))
    if grid is not None:
        start = _floor(start, grid)
        end = max(_floor(end, grid), start + timedelta(seconds=grid))
    if not storable:
        return zone, (start, end), []
    drawn = draw(st.lists(raw_event, max_size=40))
    ats = draw(st.lists(near_base, min_size=len(drawn), max_size=len(drawn)))
    return zone, (start, end), [item | {"at": at} for item, at in zip(drawn, ats, strict=True)]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=off_grid_cases(), filter_key=st.booleans())
async def test_every_report_field_equals_the_raw_events_in_zones_off_the_grid(
    client, engine, clock, case, filter_key
):
    zone, (start, end), drawn = case
    clock.now = NOW
    tenant = await make_tenant(engine, now=NOW, timezone=zone)
    events = _events(tenant.slug, drawn)
    # Ingestion refuses events before 2000, and every offset since then is on the grid: the
    # writer (the same one ingestion uses) stores these years' events directly.
    await write(engine, [_valid(index, item) for index, item in enumerate(events)], now=NOW)
    used_keys = {oracle.key_of(item) for item in events} - {None}
    key = sorted(used_keys)[0] if filter_key and used_keys else None
    variables = {"range": {"start": start.isoformat(), "end": end.isoformat()}, "key": key}
    data = await answer(client, tenant.token, QUERY, variables)
    assert_report_matches(data["organization"]["usage"], events, start, end, zone, key)


def _valid(index: int, item: dict[str, Any]) -> ValidEvent:
    """The checked event that validation would make of ``item``, whatever its date."""
    user = item.get("user")
    return ValidEvent(
        index=index,
        id=item["id"],
        organization=item["organization"],
        api_key=None if item.get("api_key") is None else Reference(item["api_key"], None),
        user=None if user is None else Reference(user["id"], user["name"]),
        source=item["source"].lower(),
        endpoint=item["endpoint"],
        status=item["status"],
        credits=item["credits"],
        occurred_at=oracle.when(item).astimezone(UTC),
        outcome=outcome_of(item["status"]),
    )
