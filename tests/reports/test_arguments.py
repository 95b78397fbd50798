"""Bad report arguments are refused naming the argument."""

from __future__ import annotations

import pytest

from tests.reports.queries import (
    REPORT,
    error_of,
)

BAD_INPUT = [
    ({"preset": "TODAY", "timezone": "Mars/Olympus"}, "DAY", "timeRange.timezone", "Mars/Olympus"),
    (
        {"start": "2026-06-02T00:00:00Z", "end": "2026-06-02T00:00:00Z"},
        "DAY",
        "timeRange.end",
        "after",
    ),
    (
        {"start": "2026-06-03T00:00:00Z", "end": "2026-06-02T00:00:00Z"},
        "DAY",
        "timeRange.end",
        "after",
    ),
    (
        {"preset": "TODAY", "start": "2026-06-02T00:00:00Z", "end": "2026-06-03T00:00:00Z"},
        "DAY",
        "timeRange",
        "not both",
    ),
    (
        {"start": "2026-06-02T00:00:00", "end": "2026-06-03T00:00:00Z"},
        "DAY",
        "timeRange.start",
        "UTC offset",
    ),
    ({"start": "2026-06-02T00:00:00Z"}, "DAY", "timeRange.end", "both start and end"),
]


@pytest.mark.parametrize(
    ("time_range", "granularity", "field", "says"),
    BAD_INPUT,
    ids=[
        "unknown-zone",
        "empty-range",
        "end-before-start",
        "preset-and-start",
        "naive-start",
        "missing-end",
    ],
)
async def test_bad_input_is_refused_naming_the_argument(
    client, tenant, time_range, granularity, field, says
):
    # Without a series: the cost limit would otherwise assume the longest one for a range
    # it cannot read, and refuse first.
    error = await error_of(client, tenant.token, REPORT, {"range": time_range})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert says in error["message"]
