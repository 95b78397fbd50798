"""``TimeRangeInput`` is built by its own ``from_input`` hook (bench/PROPOSALS.md, R12): the
hook must know every field the schema publishes and build what strawberry's own conversion
built, for presets, explicit ranges, explicit nulls and omitted fields."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from graphql import GraphQLInputObjectType
from strawberry.types.arguments import convert_argument

from graphql_schema.enums import TimeRangePreset
from graphql_schema.inputs.time_range import TIME_RANGE_FIELDS, TimeRangeInput
from tests.schema_walk import GRAPHQL_SCHEMA, SCHEMA


def test_the_hook_names_every_field_of_the_published_input():
    published = GRAPHQL_SCHEMA.get_type("TimeRangeInput")
    assert isinstance(published, GraphQLInputObjectType)
    assert {name for name, _ in TIME_RANGE_FIELDS} == set(published.fields)
    python_names = {field.name for field in dataclasses.fields(TimeRangeInput)}
    assert {python for _, python in TIME_RANGE_FIELDS} == python_names


START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"preset": TimeRangePreset.LAST_30_DAYS},
            TimeRangeInput(preset=TimeRangePreset.LAST_30_DAYS),
        ),
        ({}, TimeRangeInput()),
        (
            {"preset": None, "start": START, "end": END, "timezone": "Europe/Berlin"},
            TimeRangeInput(preset=None, start=START, end=END, timezone="Europe/Berlin"),
        ),
        ({"start": START, "end": None}, TimeRangeInput(start=START)),
    ],
)
def test_the_hook_builds_what_the_argument_holds(value, expected):
    registry = SCHEMA.schema_converter.scalar_registry
    built = convert_argument(dict(value), TimeRangeInput, registry, SCHEMA.config)
    assert type(built) is TimeRangeInput
    assert built == expected
    assert built.to_args() == expected.to_args()
