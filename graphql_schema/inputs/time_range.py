"""The time range argument of every report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.arguments import InputContext

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


# Every field of the input is a leaf that graphql-core has already parsed (the enum member,
# the datetimes, the string), so building the instance is a keyword call. Strawberry's own
# conversion resolves each field's annotation and camel-cases its name on every call: for a
# page of 50 keys each with `endpointUsage(timeRange:)` that was 200 name conversions a
# request (bench/PROPOSALS.md, R12). GraphQL name -> Python name, checked against the schema
# by tests/test_time_range_input.py so a new field cannot be missed.
TIME_RANGE_FIELDS = (
    ("preset", "preset"),
    ("start", "start"),
    ("end", "end"),
    ("timezone", "timezone"),
)


def _time_range_from_input(
    cls: type[TimeRangeInput], value: Mapping[str, Any], context: InputContext
) -> TimeRangeInput:
    return cls(**{python: value[name] for name, python in TIME_RANGE_FIELDS if name in value})


TimeRangeInput.__strawberry_definition__.from_input = _time_range_from_input  # type: ignore[attr-defined]
