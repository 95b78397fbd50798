"""The pure alert rules: windows in the organization's zone, thresholds, crossing, backfill,
the retry schedule and the webhook body."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.alerts import (
    AlertRecord,
    AlertState,
    AlertWindow,
    RetryPolicy,
    Threshold,
    check_name,
    check_threshold,
    has_crossed,
    is_judged,
    message,
    window_bounds,
)
from domain.errors import InvalidInput
from domain.plans import Plan
from domain.records import ApiKeyRecord, OrganizationRecord


def organization(timezone: str = "UTC", anchor: datetime | None = None, allowance: int = 1000):
    return OrganizationRecord(
        id=7,
        slug="acme",
        name="Acme",
        plan=Plan.PRO,
        timezone=timezone,
        credit_allowance=allowance,
        billing_cycle_anchor=anchor or datetime(2026, 1, 15, 9, tzinfo=UTC),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        last_event_at=None,
    )


HUNDRED = Threshold(100, None)


def alert(window=AlertWindow.DAY, threshold=HUNDRED, **fields) -> AlertRecord:
    values = {
        "id": 3,
        "organization_id": 7,
        "name": "Daily budget",
        "api_key": None,
        "window": window,
        "threshold": threshold,
        "webhook_url": "https://hooks.example/x",
        "enabled": True,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
        "last_triggered_at": None,
        "triggered_window": None,
        "triggered_window_start": None,
    }
    values.update(fields)
    return AlertRecord(**values)


def local(zone: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    ("window", "zone", "at", "start", "end"),
    [
        (AlertWindow.DAY, "UTC", (2026, 6, 15, 12), (2026, 6, 15), (2026, 6, 16)),
        # The 23-hour day of Berlin's spring change and the 25-hour day of its autumn one.
        (AlertWindow.DAY, "Europe/Berlin", (2026, 3, 29, 12), (2026, 3, 29), (2026, 3, 30)),
        (AlertWindow.DAY, "Europe/Berlin", (2026, 10, 25, 12), (2026, 10, 25), (2026, 10, 26)),
        (AlertWindow.DAY, "Asia/Kathmandu", (2026, 6, 15, 0, 10), (2026, 6, 15), (2026, 6, 16)),
        (AlertWindow.WEEK, "America/New_York", (2026, 6, 17, 9), (2026, 6, 15), (2026, 6, 22)),
        (AlertWindow.MONTH, "Pacific/Chatham", (2026, 2, 28, 23), (2026, 2, 1), (2026, 3, 1)),
    ],
    ids=["utc-day", "berlin-23h", "berlin-25h", "kathmandu", "ny-week", "chatham-month"],
)
def test_calendar_windows_are_local_periods(window, zone, at, start, end):
    instant = local(zone, *at)
    low, high = window_bounds(window, organization(zone), instant)
    assert (low, high) == (local(zone, *start), local(zone, *end))
    assert low <= instant < high


def test_a_day_window_is_23_and_25_hours_long_on_dst_changes():
    berlin = organization("Europe/Berlin")
    spring = window_bounds(AlertWindow.DAY, berlin, local("Europe/Berlin", 2026, 3, 29, 12))
    autumn = window_bounds(AlertWindow.DAY, berlin, local("Europe/Berlin", 2026, 10, 25, 12))
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_the_billing_cycle_window_follows_the_anchor():
    org = organization("UTC", anchor=datetime(2026, 1, 31, 9, tzinfo=UTC))
    low, high = window_bounds(AlertWindow.BILLING_CYCLE, org, datetime(2026, 3, 5, tzinfo=UTC))
    # The anchor day is clamped to February's length.
    assert low == datetime(2026, 2, 28, 9, tzinfo=UTC)
    assert high == datetime(2026, 3, 31, 9, tzinfo=UTC)


# hypothesis takes naive bounds and attaches the zone itself.
NAIVE_2020 = datetime(2020, 1, 1)  # noqa: DTZ001
NAIVE_2030 = datetime(2030, 1, 1)  # noqa: DTZ001


@given(
    at=st.datetimes(min_value=NAIVE_2020, max_value=NAIVE_2030, timezones=st.just(UTC)),
    window=st.sampled_from(list(AlertWindow)),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"]),
)
def test_every_instant_is_inside_its_window_and_the_next_window_starts_at_its_end(at, window, zone):
    org = organization(zone)
    low, high = window_bounds(window, org, at)
    assert low <= at < high
    assert window_bounds(window, org, high)[0] == high


@pytest.mark.parametrize(
    ("percent", "allowance", "credits"),
    [(80.0, 1000, 800), (12.5, 1000, 125), (33.3, 100, 34), (0.01, 10, 1), (150.0, 1000, 1500)],
)
def test_a_percent_threshold_is_rounded_up_to_whole_credits(percent, allowance, credits):
    assert Threshold(None, percent).in_credits(allowance) == credits


def test_a_credit_threshold_ignores_the_allowance():
    assert Threshold(500, None).in_credits(10) == 500


@pytest.mark.parametrize(
    ("credits", "percent", "field"),
    [
        (None, None, "input.thresholdCredits"),
        (10, 50.0, "input.thresholdCredits"),
        (0, None, "input.thresholdCredits"),
        (-5, None, "input.thresholdCredits"),
        (None, 0.0, "input.thresholdPercentOfAllowance"),
        (None, float("nan"), "input.thresholdPercentOfAllowance"),
        (None, float("inf"), "input.thresholdPercentOfAllowance"),
        (None, 10_001.0, "input.thresholdPercentOfAllowance"),
    ],
    ids=["none", "both", "zero", "negative", "zero-percent", "nan", "inf", "too-many-percent"],
)
def test_bad_thresholds_are_refused_naming_the_field(credits, percent, field):
    with pytest.raises(InvalidInput) as refused:
        check_threshold(credits, percent, field="input")
    assert refused.value.field == field


@pytest.mark.parametrize(
    "name", ["", "   ", "x" * 201, "tab\there"], ids=["empty", "blank", "long", "control"]
)
def test_bad_names_are_refused(name):
    with pytest.raises(InvalidInput) as refused:
        check_name(name, field="input")
    assert refused.value.field == "input.name"


def test_the_crossing_rule_is_reaching_the_threshold():
    assert not has_crossed(99, 100)
    assert has_crossed(100, 100)
    assert has_crossed(250, 100)


def test_only_batches_reaching_into_the_current_window_are_judged():
    start = datetime(2026, 6, 15, tzinfo=UTC)
    assert is_judged(start, start)
    assert is_judged(start + timedelta(hours=3), start)
    # A backfill of yesterday's events, however large, fires nothing today.
    assert not is_judged(start - timedelta(microseconds=1), start)


def test_the_state_is_triggered_only_in_the_window_it_fired_in():
    org = organization()
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    fired_today = alert(
        triggered_window=AlertWindow.DAY, triggered_window_start=datetime(2026, 6, 15, tzinfo=UTC)
    )
    assert fired_today.state(org, now) is AlertState.TRIGGERED
    assert fired_today.state(org, now + timedelta(days=1)) is AlertState.OK
    # The window changed since it fired: the new window has not fired yet.
    moved = alert(
        window=AlertWindow.MONTH,
        triggered_window=AlertWindow.DAY,
        triggered_window_start=datetime(2026, 6, 1, tzinfo=UTC),
    )
    assert moved.state(org, now) is AlertState.OK
    assert alert().state(org, now) is AlertState.OK


POLICY = RetryPolicy(base=timedelta(seconds=4), cap=timedelta(hours=2), period=timedelta(hours=24))


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999999])
def test_the_first_retry_comes_within_five_seconds(jitter):
    created = datetime(2026, 6, 15, tzinfo=UTC)
    following = POLICY.next_attempt(attempts=1, created_at=created, now=created, jitter=jitter)
    assert following is not None
    assert timedelta(seconds=2) <= following - created <= timedelta(seconds=4)


@pytest.mark.parametrize("jitter", [0.0, 0.999999])
def test_retries_go_on_for_at_least_a_day_then_stop(jitter):
    delays = POLICY.schedule(jitter)
    assert sum(delays, timedelta()) >= timedelta(hours=24)
    # Exponential, then capped.
    assert delays[1] == 2 * delays[0]
    assert max(delays) <= timedelta(hours=2)
    # It ends: the last retry starts at most one capped delay after the period.
    assert sum(delays, timedelta()) <= timedelta(hours=26)


def test_an_attempt_made_before_the_period_ends_is_retried_even_if_it_fails_after():
    created = datetime(2027, 1, 1, tzinfo=UTC)
    made, failed = (
        created + timedelta(hours=23, minutes=59),
        created + timedelta(hours=24, seconds=5),
    )
    following = POLICY.next_attempt(
        attempts=9, created_at=created, now=failed, jitter=0.5, attempted_at=made
    )
    assert following is not None
    assert following > failed
    last = created + timedelta(hours=24)
    assert (
        POLICY.next_attempt(
            attempts=10, created_at=created, now=failed, jitter=0.5, attempted_at=last
        )
        is None
    )


def test_the_webhook_body_has_the_designed_fields():
    key = ApiKeyRecord(7, 7, "key-a", "Production", datetime(2026, 1, 1, tzinfo=UTC), None, None)
    org = organization("Europe/Berlin", allowance=2000)
    body = message(
        event="alert.triggered",
        public_id="msg_1",
        created_at=datetime(2026, 6, 15, 10, 30, tzinfo=UTC),
        alert=alert(api_key=key, threshold=Threshold(None, 50.0)),
        organization=org,
        window=(datetime(2026, 6, 14, 22, tzinfo=UTC), datetime(2026, 6, 15, 22, tzinfo=UTC)),
        consumed=1042,
    )
    assert body == {
        "type": "alert.triggered",
        "id": "msg_1",
        "createdAt": "2026-06-15T10:30:00Z",
        "data": {
            "alert": {"id": "3", "name": "Daily budget", "window": "DAY"},
            "organization": {"id": "7", "slug": "acme", "name": "Acme"},
            "apiKey": {"id": "key-a", "name": "Production"},
            "window": {
                "start": "2026-06-14T22:00:00Z",
                "end": "2026-06-15T22:00:00Z",
                "timezone": "Europe/Berlin",
            },
            "creditsConsumed": 1042,
            "threshold": {"credits": 1000, "percentOfAllowance": 50.0},
        },
    }
