"""``previous(alignment: TO_DATE)``: the previous period up to the same elapsed local wall
time, computed by hand for DST weeks and days in Berlin and at +05:45 (Kathmandu)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.periods import local_start
from domain.plans import Plan
from domain.presets import Preset
from domain.records import OrganizationRecord
from domain.time_range import RUNNING, ComparisonAlignment, resolve_range

TO_DATE = ComparisonAlignment.TO_DATE
FULL = ComparisonAlignment.FULL_PERIOD


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


ANCHOR = utc(2026, 1, 15)


def organization(zone: str, anchor: datetime = ANCHOR) -> OrganizationRecord:
    return OrganizationRecord(
        id=1,
        slug="o",
        name="O",
        plan=Plan.PRO,
        timezone=zone,
        credit_allowance=1000,
        billing_cycle_anchor=anchor,
        created_at=utc(2025, 1, 1),
        last_event_at=None,
    )


def resolve(preset: Preset, zone: str, now: datetime, anchor: datetime = ANCHOR):
    return resolve_range(
        preset=preset,
        start=None,
        end=None,
        timezone=None,
        organization=organization(zone, anchor),
        now=now,
    )


# (preset, zone, now, expected previous TO_DATE [start, end)), each worked out by hand.
CASES = {
    # Berlin springs forward on Sunday 2026-03-29 at 02:00 (CET +1 -> CEST +2).
    "monday-0900-after-spring-week": (
        Preset.THIS_WEEK,
        "Europe/Berlin",
        utc(2026, 3, 30, 7),  # Monday 09:00 CEST
        (utc(2026, 3, 22, 23), utc(2026, 3, 23, 8)),  # Monday 00:00 to 09:00 CET
    ),
    "sunday-noon-in-the-spring-week": (
        Preset.THIS_WEEK,
        "Europe/Berlin",
        utc(2026, 3, 29, 10),  # Sunday 12:00 CEST: 6 days 11 real hours into the week
        (utc(2026, 3, 15, 23), utc(2026, 3, 22, 11)),  # to Sunday 12:00 CET: 6 days 12 h
    ),
    "noon-on-the-spring-day": (
        Preset.TODAY,
        "Europe/Berlin",
        utc(2026, 3, 29, 10),  # 12:00 CEST, 11 real hours into a 23-hour day
        (utc(2026, 3, 27, 23), utc(2026, 3, 28, 11)),  # Saturday 00:00 to 12:00 CET
    ),
    "a-wall-time-in-yesterdays-gap": (
        Preset.TODAY,
        "Europe/Berlin",
        utc(2026, 3, 30, 0, 30),  # Monday 02:30 CEST; Sunday 02:30 did not exist
        (utc(2026, 3, 28, 23), utc(2026, 3, 29, 1)),  # to the gap's end, 03:00 CEST
    ),
    # Berlin falls back on Sunday 2026-10-25 at 03:00 (CEST +2 -> CET +1).
    "monday-0900-after-autumn-week": (
        Preset.THIS_WEEK,
        "Europe/Berlin",
        utc(2026, 10, 26, 8),  # Monday 09:00 CET
        (utc(2026, 10, 18, 22), utc(2026, 10, 19, 7)),  # Monday 00:00 to 09:00 CEST
    ),
    "noon-on-the-autumn-day": (
        Preset.TODAY,
        "Europe/Berlin",
        utc(2026, 10, 25, 11),  # 12:00 CET, 13 real hours into a 25-hour day
        (utc(2026, 10, 23, 22), utc(2026, 10, 24, 10)),  # Saturday 00:00 to 12:00 CEST
    ),
    # Kathmandu is +05:45 all year.
    "kathmandu-today": (
        Preset.TODAY,
        "Asia/Kathmandu",
        utc(2026, 6, 10, 3),  # 08:45
        (utc(2026, 6, 8, 18, 15), utc(2026, 6, 9, 3)),
    ),
    "kathmandu-this-month": (
        Preset.THIS_MONTH,
        "Asia/Kathmandu",
        utc(2026, 11, 30, 15, 5),  # 30 November 20:50: 29 days 20:50 into the month
        (utc(2026, 9, 30, 18, 15), utc(2026, 10, 30, 15, 5)),  # to 30 October 20:50
    ),
    "kathmandu-this-week": (
        Preset.THIS_WEEK,
        "Asia/Kathmandu",
        utc(2026, 6, 10, 3),  # Wednesday 08:45
        (utc(2026, 5, 31, 18, 15), utc(2026, 6, 3, 3)),  # Monday 00:00 to Wednesday 08:45
    ),
    # 29 days into March is longer than February: all of February is compared.
    "march-30-against-all-of-february": (
        Preset.THIS_MONTH,
        "UTC",
        utc(2026, 3, 30, 12),
        (utc(2026, 2, 1), utc(2026, 3, 1)),
    ),
    # Cycles from the 15th: 15 November 00:00 UTC, now 30 November 15:05.
    "billing-cycle": (
        Preset.THIS_BILLING_CYCLE,
        "UTC",
        utc(2026, 11, 30, 15, 5),
        (utc(2026, 10, 15), utc(2026, 10, 30, 15, 5)),
    ),
}


@pytest.mark.parametrize(("preset", "zone", "now", "expected"), CASES.values(), ids=list(CASES))
def test_to_date_compares_the_same_elapsed_wall_time(preset, zone, now, expected):
    current = resolve(preset, zone, now)
    previous = current.previous(organization(zone), TO_DATE)
    assert (previous.start, previous.end) == expected
    # It starts where the whole previous period starts.
    assert previous.start == current.previous(organization(zone), FULL).start


@pytest.mark.parametrize(
    "preset", [Preset.YESTERDAY, Preset.LAST_7_DAYS, Preset.LAST_WEEK, Preset.LAST_MONTH]
)
def test_to_date_on_a_period_that_is_not_running_is_the_full_period(preset):
    current = resolve(preset, "Europe/Berlin", utc(2026, 3, 30, 7))
    org = organization("Europe/Berlin")
    assert current.previous(org, TO_DATE) == current.previous(org, FULL)


def test_to_date_on_an_explicit_range_is_the_full_period():
    org = organization("Asia/Kathmandu")
    current = resolve_range(
        preset=None,
        start=utc(2026, 6, 1),
        end=utc(2026, 6, 10, 3),
        timezone=None,
        organization=org,
        now=utc(2026, 6, 10, 3),
    )
    assert current.previous(org, TO_DATE) == current.previous(org, FULL)


def test_the_previous_of_a_to_date_period_moves_by_its_own_length():
    org = organization("UTC")
    current = resolve(Preset.TODAY, "UTC", utc(2026, 6, 10, 9))
    before = current.previous(org, TO_DATE)
    assert (before.start, before.end) == (utc(2026, 6, 9), utc(2026, 6, 9, 9))
    assert before.previous(org, TO_DATE) == before.previous(org, FULL)
    assert (before.previous(org).start, before.previous(org).end) == (
        utc(2026, 6, 8, 15),
        utc(2026, 6, 9),
    )


ZONES = ["Europe/Berlin", "Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe", "UTC"]


def instants(first_year: int, last_year: int) -> st.SearchStrategy[datetime]:
    """UTC instants from January 1 of ``first_year`` to December 31 of ``last_year``."""
    return st.datetimes(
        min_value=datetime(first_year, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(last_year, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    )


@given(
    preset=st.sampled_from(sorted(RUNNING, key=lambda p: p.value)),
    zone=st.sampled_from(ZONES),
    now=instants(2025, 2027),
)
def test_to_date_never_leaves_the_previous_period_and_matches_the_wall_clock(preset, zone, now):
    org = organization(zone, anchor=utc(2025, 1, 31, 14))
    current = resolve(preset, zone, now, anchor=utc(2025, 1, 31, 14))
    full = current.previous(org, FULL)
    aligned = current.previous(org, TO_DATE)
    assert full.start == aligned.start <= aligned.end <= full.end
    tz = ZoneInfo(zone)

    def wall(instant: datetime) -> datetime:
        return instant.astimezone(tz).replace(tzinfo=None)

    elapsed = wall(now) - wall(current.start)
    reached = wall(aligned.end) - wall(aligned.start)
    if aligned.end < full.end:
        # The same wall time, or a little after it when that wall time fell in a gap.
        assert reached >= elapsed
        assert reached - elapsed <= timedelta(hours=1)
        if reached != elapsed:
            just_before = aligned.end - timedelta(microseconds=1)
            assert wall(just_before) - wall(aligned.start) < elapsed
    else:
        assert elapsed >= wall(full.end) - wall(full.start) - timedelta(hours=1)


def _calendar_days(preset: Preset, today: date) -> tuple[date, date]:
    """A calendar preset's first day and the day after its last, by date arithmetic alone."""
    monday = today - timedelta(days=today.weekday())
    first_of_month = today.replace(day=1)
    before_month = (first_of_month - timedelta(days=1)).replace(day=1)
    after_month = (first_of_month + timedelta(days=31)).replace(day=1)
    tomorrow = today + timedelta(days=1)
    return {
        Preset.TODAY: (today, tomorrow),
        Preset.YESTERDAY: (today - timedelta(days=1), today),
        Preset.LAST_7_DAYS: (today - timedelta(days=6), tomorrow),
        Preset.LAST_30_DAYS: (today - timedelta(days=29), tomorrow),
        Preset.LAST_90_DAYS: (today - timedelta(days=89), tomorrow),
        Preset.THIS_WEEK: (monday, monday + timedelta(days=7)),
        Preset.LAST_WEEK: (monday - timedelta(days=7), monday),
        Preset.THIS_MONTH: (first_of_month, after_month),
        Preset.LAST_MONTH: (before_month, first_of_month),
    }[preset]


@given(
    preset=st.sampled_from([p for p in Preset if p is not Preset.THIS_BILLING_CYCLE]),
    zone=st.sampled_from(ZONES),
    now=instants(2001, 2039),
)
def test_a_calendar_preset_is_its_local_days_whatever_the_instant(preset, zone, now):
    """Each preset runs from the local midnight of its first day to the one after its
    last, the days counted from today's local date (across DST changes and odd offsets)."""
    tz = ZoneInfo(zone)
    resolved = resolve(preset, zone, now)
    first, after = _calendar_days(preset, now.astimezone(tz).date())
    assert (resolved.start, resolved.end) == (
        local_start(datetime.combine(first, time()), tz),
        local_start(datetime.combine(after, time()), tz),
    )
