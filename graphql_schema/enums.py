"""Enumerations of the schema."""

from __future__ import annotations

from enum import Enum

import strawberry

from db.periods import Granularity as _Granularity
from resolvers.time_range import Preset


@strawberry.enum(description="An organization's plan. Every plan but FREE is paid.")
class Plan(Enum):
    FREE = "FREE"
    STARTER = "STARTER"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"


@strawberry.enum(description="What a user may do in their organization.")
class Role(Enum):
    ADMIN = strawberry.enum_value("ADMIN", description="Sees usage, keys and the credit pool.")
    MEMBER = strawberry.enum_value("MEMBER", description="Sees the organization's name and plan.")


Granularity = strawberry.enum(
    _Granularity,
    description=(
        "Size of a series bucket: calendar hours, days, ISO weeks (Monday start) or months "
        "in the report's time zone."
    ),
)

TimeRangePreset = strawberry.enum(
    Preset,
    name="TimeRangePreset",
    description=(
        "A named range in the report's time zone. Day-based presets end with today, "
        "inclusive (LAST_7_DAYS is today and the six days before). THIS_BILLING_CYCLE "
        "follows the organization's billing anchor."
    ),
)
