"""Turn a ``TimeRangeInput`` into exact UTC instants in a named time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from domain.errors import InvalidInput
from domain.periods import Granularity, add_months, floor_wall, local_start, next_wall
from domain.presets import Preset
from domain.records import OrganizationRecord

MAX_RANGE = timedelta(days=3660)
# Python's calendar (like the rollups' epoch seconds) runs from year 1 to year 9999.
FIRST_DAY = date.min.isoformat()
LAST_DAY = date.max.isoformat()


class ComparisonAlignment(Enum):
    """What part of the previous period a report is compared with."""

    FULL_PERIOD = "FULL_PERIOD"  # the whole previous period
    TO_DATE = "TO_DATE"  # of a running period: as much of the previous one as has elapsed


# The presets whose period contains "now": only these have a "to date" to align on.
RUNNING = frozenset({Preset.TODAY, Preset.THIS_WEEK, Preset.THIS_MONTH, Preset.THIS_BILLING_CYCLE})


@dataclass(frozen=True, slots=True)
class TimeRangeArgs:
    """A time range as a client gave it: a preset, or start and end; maybe a zone."""

    preset: Preset | None
    start: datetime | None
    end: datetime | None
    timezone: str | None


@dataclass(frozen=True, slots=True)
class ResolvedRange:
    """The half-open range ``[start, end)`` a report covers, and the zone of its calendar."""

    start: datetime
    end: datetime
    timezone: str
    preset: Preset | None
    is_cycle: bool = False  # a billing cycle: its previous period is the previous cycle
    # The instant a running preset (``RUNNING``) was resolved at; None for any other range.
    now: datetime | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def previous(
        self,
        organization: OrganizationRecord,
        alignment: ComparisonAlignment = ComparisonAlignment.FULL_PERIOD,
    ) -> ResolvedRange:
        """The period of the same calendar length just before this one, ending at ``start``;
        with ``TO_DATE`` on a running period, only its first part (``_to_date_end``).

        A billing cycle's previous period is the previous cycle; whole calendar months
        move by months (THIS_MONTH gives last month, whatever its length); any other
        range moves by its wall-clock length in the zone, so a week before a DST change
        is still Monday to Monday. Where the wall clock cannot say (an edge in a repeated
        hour), it moves by the same number of seconds.
        """
        try:
            low = self._previous_start(organization)
            _wall(low, self.zone)  # series of the previous period read its wall times
        except (OverflowError, ValueError) as error:
            # Year 1 is the first the calendar has: there is no period before it.
            raise InvalidInput(
                f"This range has no previous period: it would start before {FIRST_DAY} "
                "(in UTC or in the range's time zone), the first day of the calendar.",
                field="timeRange.start",
            ) from error
        if alignment is ComparisonAlignment.TO_DATE and self.now is not None:
            return ResolvedRange(
                low, self._to_date_end(low), self.timezone, None, is_cycle=self.is_cycle
            )
        return ResolvedRange(low, self.start, self.timezone, None, is_cycle=self.is_cycle)

    def _to_date_end(self, low: datetime) -> datetime:
        """Where the previous period, starting at ``low``, has run as long as this one has
        at ``now``, in elapsed local wall time: Monday 09:00 of this week compares with
        Monday 09:00 of last week whether or not a DST change lies between them, and a
        Sunday noon after the spring change (11 real hours into the day) with the previous
        Sunday noon (12 hours). A wall time in a gap maps to the gap's end, a repeated one to
        its first occurrence (``local_start``). The previous period is never exceeded: on
        30 March, 29 days into the month, all of February is compared.
        """
        assert self.now is not None
        tz = self.zone
        elapsed = _wall(self.now, tz) - _wall(self.start, tz)
        try:
            high = local_start(_wall(low, tz) + elapsed, tz)
        except OverflowError:  # past the calendar's end: the whole previous period
            return self.start
        return max(low, min(high, self.start))

    def _previous_start(self, organization: OrganizationRecord) -> datetime:
        tz = self.zone
        if self.is_cycle:
            low, _ = billing_cycle(organization, self.start - timedelta(microseconds=1))
            return low
        low_wall = _wall(self.start, tz)
        high_wall = _wall(self.end, tz)
        low = self.start - (self.end - self.start)
        if local_start(low_wall, tz) == self.start and local_start(high_wall, tz) == self.end:
            if _is_month_start(low_wall) and _is_month_start(high_wall):
                months = (high_wall.year - low_wall.year) * 12 + high_wall.month - low_wall.month
                low = local_start(add_months(low_wall, -months), tz)
            else:
                low = local_start(low_wall - (high_wall - low_wall), tz)
        if low >= self.start:  # a zero-length wall range (inside a gap): fall back to seconds
            low = self.start - (self.end - self.start)
        return low


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _is_month_start(wall: datetime) -> bool:
    return wall == floor_wall(wall, Granularity.MONTH)


_ZONES: frozenset[str] | None = None


def zone(name: str, *, field: str = "timeRange.timezone") -> ZoneInfo:
    """An IANA zone by name; a clear BAD_USER_INPUT for anything else."""
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    if name not in _ZONES:
        raise InvalidInput(
            f"Unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'.",
            field=field,
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput(f"Unknown time zone {name!r}.", field=field) from error


def billing_cycle(organization: OrganizationRecord, now: datetime) -> tuple[datetime, datetime]:
    """The monthly billing cycle containing ``now``, in the organization's zone."""
    tz = ZoneInfo(organization.timezone)
    anchor = organization.billing_cycle_anchor.astimezone(tz).replace(tzinfo=None)
    local_now = now.astimezone(tz).replace(tzinfo=None)
    months = (local_now.year - anchor.year) * 12 + local_now.month - anchor.month
    # Each cycle starts on the anchor's day-of-month (clamped) counted from the anchor.
    while local_start(add_months(anchor, months), tz) > now:
        months -= 1
    while local_start(add_months(anchor, months + 1), tz) <= now:
        months += 1
    return local_start(add_months(anchor, months), tz), local_start(
        add_months(anchor, months + 1), tz
    )


# Each calendar preset as (granularity, first period, periods) counted from the period that
# holds now: LAST_30_DAYS is the 30 days ending with today, LAST_MONTH the month before this.
_PRESET_PERIODS: dict[Preset, tuple[Granularity, int, int]] = {
    Preset.TODAY: (Granularity.DAY, 0, 1),
    Preset.YESTERDAY: (Granularity.DAY, -1, 1),
    Preset.LAST_7_DAYS: (Granularity.DAY, -6, 7),
    Preset.LAST_30_DAYS: (Granularity.DAY, -29, 30),
    Preset.LAST_90_DAYS: (Granularity.DAY, -89, 90),
    Preset.THIS_WEEK: (Granularity.WEEK, 0, 1),
    Preset.LAST_WEEK: (Granularity.WEEK, -1, 1),
    Preset.THIS_MONTH: (Granularity.MONTH, 0, 1),
    Preset.LAST_MONTH: (Granularity.MONTH, -1, 1),
}


def _preset_range(
    preset: Preset, tz: ZoneInfo, now: datetime, organization: OrganizationRecord
) -> tuple[datetime, datetime]:
    if preset is Preset.THIS_BILLING_CYCLE:
        return billing_cycle(organization, now)
    granularity, first, periods = _PRESET_PERIODS[preset]
    current = floor_wall(now.astimezone(tz).replace(tzinfo=None), granularity)
    # Only the asked preset's walls (every request resolves one; R42).
    low = next_wall(current, granularity, first)
    high = next_wall(low, granularity, periods)
    return local_start(low, tz), local_start(high, tz)


def resolution_holds_until(resolved: ResolvedRange, now: datetime) -> datetime | None:
    """Until when resolving the same argument again would give the same range as
    ``resolved`` (resolved at ``now``): forever for explicit instants; for a preset, the
    next local midnight of the range's zone (every preset is a run of whole local days, a
    week, a month or a billing cycle, all of which start at a midnight, so what it covers
    moves only when the date does), None past the calendar's last day. A running preset
    also carries ``now`` for its TO_DATE comparison, which moves with every instant: whoever
    uses it says so (``resolvers.usage.ReportScope.previous``). The answer cache keeps an
    answer no longer than this (app/answer_cache.py)."""
    if resolved.preset is None:
        return datetime.max.replace(tzinfo=UTC)
    tz = resolved.zone
    today = floor_wall(now.astimezone(tz).replace(tzinfo=None), Granularity.DAY)
    try:
        return local_start(next_wall(today, Granularity.DAY), tz)
    except (OverflowError, ValueError):  # the calendar's last day: no midnight after it
        return None


def resolve_range(
    *,
    preset: Preset | None,
    start: datetime | None,
    end: datetime | None,
    timezone: str | None,
    organization: OrganizationRecord,
    now: datetime,
) -> ResolvedRange:
    """Check a time range argument and resolve it; BAD_USER_INPUT names what is wrong."""
    name = timezone or organization.timezone
    tz = zone(name)
    if preset is not None:
        if start is not None or end is not None:
            raise InvalidInput(
                "Give either a preset or start and end, not both.", field="timeRange"
            )
        low, high = _preset_range(preset, tz, now, organization)
        return ResolvedRange(
            low,
            high,
            name,
            preset,
            is_cycle=preset is Preset.THIS_BILLING_CYCLE,
            now=now if preset in RUNNING else None,
        )
    if start is None or end is None:
        raise InvalidInput(
            "Give a preset, or both start and end (a half-open range [start, end)).",
            field="timeRange.start" if start is None else "timeRange.end",
        )
    low = _instant(start, "start", tz, name)
    high = _instant(end, "end", tz, name)
    if high <= low:
        raise InvalidInput("timeRange.end must be after timeRange.start.", field="timeRange.end")
    if high - low > MAX_RANGE:
        raise InvalidInput("A time range may span at most 10 years.", field="timeRange")
    return ResolvedRange(low, high, name, None)


def _instant(value: datetime, label: str, tz: ZoneInfo, name: str) -> datetime:
    """``value`` in UTC, when it and its wall time in ``tz`` are on the calendar."""
    field = f"timeRange.{label}"
    if value.tzinfo is None:
        raise InvalidInput(
            f"{field} needs a UTC offset, e.g. 2026-05-01T00:00:00Z.",
            field=field,
        )
    try:
        instant = value.astimezone(UTC)
    except OverflowError as error:  # e.g. 0001-01-01T00:00:00+05:00 is in year 0 in UTC
        raise InvalidInput(
            f"{field} {value.isoformat()} is outside the calendar in UTC: "
            f"give an instant from {FIRST_DAY} to {LAST_DAY} UTC.",
            field=field,
        ) from error
    try:
        # Periods (days, weeks, months) are read from the wall clock in the zone.
        instant.astimezone(tz)
    except OverflowError as error:
        raise InvalidInput(
            f"{field} {value.isoformat()} is outside the calendar in {name}: its local "
            f"date must be from {FIRST_DAY} to {LAST_DAY}.",
            field=field,
        ) from error
    return instant
