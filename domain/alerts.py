"""Credit alerts: their windows, thresholds, the crossing rule and the retry schedule.

Pure rules, no I/O (docs/alerts.md explains them to users):

* a window is the calendar day, ISO week or month containing an instant, in the
  organization's time zone, or its billing cycle;
* a threshold is a number of credits, or a percent of the organization's allowance,
  converted to credits (rounded up) when it is checked;
* an alert fires once per window, for the window containing the ingestion instant, once its
  credits (of all keys or of its one key) reach the threshold; events of windows that have
  already closed (backfills) are never judged, so they cannot fire a stale alert;
* a failed delivery is retried with exponential backoff and jitter until it succeeds, or
  until an attempt made after the retry period has failed too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from zoneinfo import ZoneInfo

from domain.errors import InvalidInput
from domain.periods import Granularity, floor_wall, local_start, next_wall
from domain.records import ApiKeyRecord, OrganizationRecord
from domain.time_range import billing_cycle

# An organization's alerts are one short list: reading it is one query and the ingest path
# checks them all, so their number is bounded.
MAX_ALERTS_PER_ORGANIZATION = 100
MAX_NAME_LENGTH = 200
MAX_URL_LENGTH = 2000
MAX_THRESHOLD_CREDITS = 2**63 - 1
MAX_THRESHOLD_PERCENT = 10_000.0  # 100 times the allowance
TRIGGERED_EVENT = "alert.triggered"
TEST_EVENT = "alert.test"


class AlertWindow(Enum):
    """The period an alert's credits are summed over; stored by value in ``alerts.window``."""

    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    BILLING_CYCLE = "BILLING_CYCLE"


class AlertState(Enum):
    """TRIGGERED once the alert has fired in its current window, OK before that."""

    OK = "OK"
    TRIGGERED = "TRIGGERED"


class DeliveryStatus(Enum):
    """Where a webhook delivery stands; stored by value in ``webhook_deliveries.status``."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


_CALENDAR = {
    AlertWindow.DAY: Granularity.DAY,
    AlertWindow.WEEK: Granularity.WEEK,
    AlertWindow.MONTH: Granularity.MONTH,
}


@dataclass(frozen=True, slots=True)
class Threshold:
    """Exactly one of ``credits`` and ``percent_of_allowance`` is set."""

    credits: int | None
    percent_of_allowance: float | None

    def in_credits(self, allowance: int) -> int:
        """The threshold in credits: a percent of ``allowance`` is rounded up, and at least 1
        (a threshold of 0 would fire on no usage at all)."""
        if self.credits is not None:
            return self.credits
        assert self.percent_of_allowance is not None
        # Decimal of the float's shortest repr: 12.5 % of 1000 is exactly 125, not 125.00001.
        exact = Decimal(repr(self.percent_of_allowance)) * allowance / 100
        return max(1, math.ceil(exact))


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as stored, with the key it watches (None: every key of the organization)."""

    id: int
    organization_id: int
    name: str
    api_key: ApiKeyRecord | None
    window: AlertWindow
    threshold: Threshold
    webhook_url: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    last_triggered_at: datetime | None
    # The window the alert last fired in: its kind and first instant.
    triggered_window: AlertWindow | None
    triggered_window_start: datetime | None

    def state(self, organization: OrganizationRecord, now: datetime) -> AlertState:
        """TRIGGERED when the alert has fired in the window containing ``now``."""
        if self.triggered_window is not self.window or self.triggered_window_start is None:
            return AlertState.OK
        start, _ = window_bounds(self.window, organization, now)
        return AlertState.TRIGGERED if self.triggered_window_start == start else AlertState.OK


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One webhook message and how its delivery went."""

    id: int
    public_id: str  # the ``webhook-id`` header, the same on every attempt
    alert_id: int
    event: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    response_status: int | None
    last_error: str | None


def window_bounds(
    window: AlertWindow, organization: OrganizationRecord, at: datetime
) -> tuple[datetime, datetime]:
    """``[start, end)`` of the window containing ``at``, in the organization's time zone."""
    if window is AlertWindow.BILLING_CYCLE:
        return billing_cycle(organization, at)
    granularity = _CALENDAR[window]
    tz = ZoneInfo(organization.timezone)
    first = floor_wall(at.astimezone(tz).replace(tzinfo=None), granularity)
    return local_start(first, tz), local_start(next_wall(first, granularity), tz)


def is_judged(newest_event: datetime, window_start: datetime) -> bool:
    """Whether a batch is judged against a window: only when it added an event at or after
    the window's start. A batch of backfilled events of closed windows never fires."""
    return newest_event >= window_start


def has_crossed(consumed: int, threshold_credits: int) -> bool:
    """The crossing rule: the window's credits have reached the threshold.

    Not "went from below to above in this batch": a window that is already past the
    threshold when an alert is created, or whose crossing a concurrent writer made, fires
    on the next batch, and the outbox's unique (alert, window) keeps it to one message.
    """
    return consumed >= threshold_credits


def check_threshold(credits: int | None, percent: float | None, *, field: str) -> Threshold:
    """A threshold from the two optional inputs; exactly one must be given, and positive."""
    if (credits is None) == (percent is None):
        raise InvalidInput(
            "Give exactly one of thresholdCredits and thresholdPercentOfAllowance.",
            field=f"{field}.thresholdCredits",
        )
    if credits is not None and not 1 <= credits <= MAX_THRESHOLD_CREDITS:
        raise InvalidInput(
            "thresholdCredits must be a positive number of credits.",
            field=f"{field}.thresholdCredits",
        )
    if percent is not None and not (
        math.isfinite(percent) and 0 < percent <= MAX_THRESHOLD_PERCENT
    ):
        raise InvalidInput(
            f"thresholdPercentOfAllowance must be above 0 and at most {MAX_THRESHOLD_PERCENT:g}.",
            field=f"{field}.thresholdPercentOfAllowance",
        )
    return Threshold(credits, percent)


def check_name(name: str, *, field: str) -> str:
    """A display name: trimmed, not empty, at most ``MAX_NAME_LENGTH`` characters."""
    trimmed = name.strip()
    if not trimmed or len(trimmed) > MAX_NAME_LENGTH or any(ch < " " for ch in trimmed):
        raise InvalidInput(
            f"name must be 1 to {MAX_NAME_LENGTH} printable characters.", field=f"{field}.name"
        )
    return trimmed


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a failed delivery again.

    The n-th retry waits ``base * 2**(n-1)`` seconds, capped at ``cap``, times a jitter
    factor in [0.5, 1] (so concurrent failures spread out, and the first retry comes
    within ``base`` seconds). A delivery is given up only when an attempt made ``period``
    or more after its creation fails: retries go on for at least that long.
    """

    base: timedelta
    cap: timedelta
    period: timedelta

    def next_attempt(
        self,
        *,
        attempts: int,
        created_at: datetime,
        now: datetime,
        jitter: float,
        attempted_at: datetime | None = None,
    ) -> datetime | None:
        """When to try again after ``attempts`` failed attempts; None: give up.

        ``jitter`` is a number in [0, 1) from the caller's random source. ``attempted_at``:
        when the failed attempt was made (``now`` when not given); it, not the moment its
        failure is known, decides whether the period has passed, so an attempt begun before
        the period's end that fails after it is retried.
        """
        if (attempted_at or now) - created_at >= self.period:
            return None
        exponent = min(attempts - 1, 62)  # past the cap long before; keeps the float finite
        delay = min(self.cap.total_seconds(), self.base.total_seconds() * 2.0**exponent)
        return now + timedelta(seconds=delay * (0.5 + jitter / 2))

    def schedule(self, jitter: float) -> list[timedelta]:
        """Every retry's delay after the first attempt, for a receiver that always fails
        and a constant ``jitter`` (for documentation and benchmarks)."""
        delays: list[timedelta] = []
        created = datetime(2000, 1, 1, tzinfo=UTC)  # any instant: only differences matter
        now, attempts = created, 1
        while (
            following := self.next_attempt(
                attempts=attempts, created_at=created, now=now, jitter=jitter
            )
        ) is not None:
            delays.append(following - now)
            now, attempts = following, attempts + 1
        return delays


def _instant(at: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as every instant of a webhook body."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def message(
    *,
    event: str,
    public_id: str,
    created_at: datetime,
    alert: AlertRecord,
    organization: OrganizationRecord,
    window: tuple[datetime, datetime],
    consumed: int,
) -> dict[str, object]:
    """The JSON body of a webhook (DESIGN.md "Alerts and webhooks"), as plain data."""
    key = alert.api_key
    return {
        "type": event,
        "id": public_id,
        "createdAt": _instant(created_at),
        "data": {
            "alert": {"id": str(alert.id), "name": alert.name, "window": alert.window.value},
            "organization": {
                "id": str(organization.id),
                "slug": organization.slug,
                "name": organization.name,
            },
            "apiKey": None if key is None else {"id": key.external_id, "name": key.name},
            "window": {
                "start": _instant(window[0]),
                "end": _instant(window[1]),
                "timezone": organization.timezone,
            },
            "creditsConsumed": consumed,
            "threshold": {
                "credits": alert.threshold.in_credits(organization.credit_allowance),
                "percentOfAllowance": alert.threshold.percent_of_allowance,
            },
        },
    }
