"""Named time ranges, and the longest each can be (for cost estimates before resolving)."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum


class Preset(Enum):
    TODAY = "TODAY"
    YESTERDAY = "YESTERDAY"
    LAST_7_DAYS = "LAST_7_DAYS"
    LAST_30_DAYS = "LAST_30_DAYS"
    LAST_90_DAYS = "LAST_90_DAYS"
    THIS_WEEK = "THIS_WEEK"
    LAST_WEEK = "LAST_WEEK"
    THIS_MONTH = "THIS_MONTH"
    LAST_MONTH = "LAST_MONTH"
    THIS_BILLING_CYCLE = "THIS_BILLING_CYCLE"


# The longest each preset can be in any zone (a month has at most 31 days; DST adds an hour).
LONGEST = {
    Preset.TODAY: timedelta(days=1, hours=1),
    Preset.YESTERDAY: timedelta(days=1, hours=1),
    Preset.LAST_7_DAYS: timedelta(days=7, hours=1),
    Preset.LAST_30_DAYS: timedelta(days=30, hours=1),
    Preset.LAST_90_DAYS: timedelta(days=90, hours=1),
    Preset.THIS_WEEK: timedelta(days=7, hours=1),
    Preset.LAST_WEEK: timedelta(days=7, hours=1),
    Preset.THIS_MONTH: timedelta(days=31, hours=1),
    Preset.LAST_MONTH: timedelta(days=31, hours=1),
    Preset.THIS_BILLING_CYCLE: timedelta(days=31, hours=1),
}
