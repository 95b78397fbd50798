"""The time range argument of every report."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.time_range import TimeRangeArgs
from graphql_schema.enums import TimeRangePreset


@strawberry.input(
    description=(
        "Either a preset or an explicit half-open range [start, end). Days, weeks and months "
        "are calendar periods in `timezone` (an IANA name; default: the organization's)."
    )
)
class TimeRangeInput:
    preset: TimeRangePreset | None = strawberry.field(
        default=None, description="A named range such as LAST_30_DAYS. Excludes start/end."
    )
    start: datetime | None = strawberry.field(
        default=None, description="First instant included (RFC 3339 with an offset)."
    )
    end: datetime | None = strawberry.field(
        default=None, description="First instant after the range (RFC 3339 with an offset)."
    )
    timezone: str | None = strawberry.field(
        default=None,
        description=(
            "IANA time zone of the calendar, e.g. Europe/Berlin; default: the organization's."
        ),
    )

    def to_args(self) -> TimeRangeArgs:
        return TimeRangeArgs(self.preset, self.start, self.end, self.timezone)
