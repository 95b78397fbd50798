"""Enumerations of the schema: each wraps the one vocabulary of ``domain``."""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from typing import TypeVar

import strawberry

from domain.outcomes import CallOutcome as _CallOutcome
from domain.periods import Granularity as _Granularity
from domain.plans import Plan as _Plan
from domain.presets import Preset
from domain.roles import Role as _Role
from domain.time_range import ComparisonAlignment as _ComparisonAlignment

E = TypeVar("E", bound=type[Enum])


def _describe_values(enum: E, descriptions: dict[str, str]) -> E:
    """Give the values of a wrapped domain enum their descriptions: the domain spells the
    members once, without strawberry, and the schema adds what clients read about them."""
    definition = enum.__strawberry_definition__  # type: ignore[attr-defined]
    definition.values = [
        replace(value, description=descriptions.get(value.name)) for value in definition.values
    ]
    return enum


# strawberry.enum registers the domain class itself (it returns the same class), so the
# names below are plain aliases that mypy accepts in annotations.
strawberry.enum(_Plan, description="An organization's plan. Every plan but FREE is paid.")
Plan = _Plan

_describe_values(
    strawberry.enum(_Role, description="What a user may do in their organization."),
    {
        "ADMIN": "Sees usage, keys and the credit pool.",
        "MEMBER": "Sees the organization's name and plan.",
    },
)
Role = _Role

strawberry.enum(
    _Granularity,
    description=(
        "Size of a series bucket: calendar hours, days, ISO weeks (Monday start) or months "
        "in the report's time zone."
    ),
)
Granularity = _Granularity

strawberry.enum(
    Preset,
    name="TimeRangePreset",
    description=(
        "A named range in the report's time zone. Day-based presets end with today, "
        "inclusive (LAST_7_DAYS is today and the six days before). THIS_BILLING_CYCLE "
        "follows the organization's billing anchor."
    ),
)
TimeRangePreset = Preset

_describe_values(
    strawberry.enum(
        _CallOutcome,
        description=(
            "What a call achieved, from its HTTP status. Credits spent on anything but "
            "SUCCESS bought nothing the caller could use."
        ),
    ),
    {
        "SUCCESS": "Status 1xx to 3xx, unless the event was sent with outcome no_result.",
        "NO_RESULT": (
            'Status 404, or an answered call sent with "outcome": "no_result" (e.g. a 200 '
            "that found nothing)."
        ),
        "RATE_LIMITED": "Status 429.",
        "CLIENT_ERROR": "Any other status 4xx.",
        "SERVER_ERROR": "Status 5xx.",
    },
)
CallOutcome = _CallOutcome

_describe_values(
    strawberry.enum(
        _ComparisonAlignment,
        description="What part of the previous period a report is compared with.",
    ),
    {
        "FULL_PERIOD": "The whole previous period.",
        "TO_DATE": (
            "On a running period (TODAY, THIS_WEEK, THIS_MONTH, THIS_BILLING_CYCLE): the "
            "previous period up to the same elapsed local wall time, e.g. Monday 09:00 of "
            "last week for Monday 09:00 of this week, and never past its end. On any other "
            "range the same as FULL_PERIOD."
        ),
    },
)
ComparisonAlignment = _ComparisonAlignment
