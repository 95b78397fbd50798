"""The spike rule (domain/spikes.py) on its own: the promises of DESIGN.md as properties,
the baseline's choice of buckets, drivers, and what the cost estimate assumes of them."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime

import pytest
from graphql import parse
from hypothesis import given
from hypothesis import strategies as st

from app.settings import Settings
from domain.periods import Granularity
from domain.spikes import (
    METHODS,
    Point,
    Spike,
    baseline_indexes,
    find_drivers,
    find_spikes,
)
from graphql_schema.limits.cost import CostLimits, estimate_cost
from graphql_schema.schema import build_schema
from resolvers.spikes import SpikeRow, _runs, explained

START = datetime(2026, 6, 1, tzinfo=UTC)

DAY = METHODS[Granularity.DAY]


def days(credits: list[int]) -> list[Point]:
    """One point per day, Monday first (phase = weekday), all 24 hours long."""
    return [Point(at % 7, 86_400.0, value) for at, value in enumerate(credits)]


@st.composite
def steady(draw, *, low_floor: int = 0):
    """A level, and eight weeks plus one day of credits within ±20 % of it."""
    level = draw(st.integers(min_value=max(low_floor, 1), max_value=10**9))
    low, high = -(-8 * level // 10), 12 * level // 10  # ceil(0.8 level), floor(1.2 level)
    values = draw(st.lists(st.integers(low, high), min_size=57, max_size=57))
    return level, values


@given(steady())
def test_steady_traffic_within_twenty_percent_is_never_a_spike(case):
    _, values = case
    assert find_spikes(days(values), 56, DAY) == []


@given(
    st.integers(min_value=20, max_value=10**9),
    st.randoms(use_true_random=False),
    st.floats(min_value=3.0, max_value=1000.0),
)
def test_three_times_the_baseline_of_noisy_traffic_is_a_spike(level, rng, factor):
    # Noise within ±20 %, drawn at random (an adversary placing every value on a bound can
    # make the series' pooled dispersion hide a 3x bucket of a small level; docs/spikes.md).
    values = [round(level * rng.uniform(0.8, 1.2)) for _ in range(57)]
    # The last day is a Monday; its baseline is the eight Mondays before it.
    expected = statistics.median(values[at] for at in range(49, -1, -7))
    values[56] = int(factor * expected) + 1
    [spike] = find_spikes(days(values), 56, DAY)
    assert spike.index == 56
    assert spike.expected == round(expected)
    assert spike.excess == values[56] - round(expected)


def test_the_baseline_is_the_same_weekday_nearest_first_and_skips_quiet_time_before():
    baselines = baseline_indexes(days([0] * 10 + [5] * 60), DAY)
    assert baselines[69] == [62, 55, 48, 41, 34, 27, 20, 13]
    # Before the first bucket with credits (index 10) nothing counts as history.
    assert baselines[24] == [17, 10]
    assert baselines[10] == []


def test_a_one_off_outage_or_spike_in_the_history_does_not_move_the_baseline():
    values = [100] * 57
    values[7], values[14] = 0, 5_000  # two Mondays of the history
    values[56] = 180  # the Monday judged: 1.8x
    [spike] = find_spikes(days(values), 56, DAY)
    assert (spike.expected, spike.excess) == (100, 80)


def test_a_longer_bucket_is_expected_to_hold_more():
    # A 25-hour day of steady hourly traffic holds 25/24 of a day; a two-hour bucket (the
    # repeated hour) twice an hour. Neither is a spike.
    hours = [Point(at % 7, 3_600.0, 100) for at in range(35)] + [Point(0, 7_200.0, 200)]
    assert find_spikes(hours, 35, METHODS[Granularity.HOUR]) == []
    assert find_spikes([*hours[:-1], Point(0, 3_600.0, 200)], 35, METHODS[Granularity.HOUR])


def test_drivers_are_the_values_that_grew_most_against_their_own_baseline():
    points = days([100] * 56 + [400])
    spike = Spike(56, 400, 100, 300, (49, 42, 35, 28, 21, 14, 7, 0))
    per_value = {
        "steady": dict.fromkeys(range(57), 60),
        "grew": {**dict.fromkeys(range(56), 40), 56: 300},
        "new": {56: 40},
        "fell": dict.fromkeys(range(57), 0),
    }
    drivers = find_drivers(spike, points, per_value)
    assert [(d.value, d.credits, d.expected, d.excess) for d in drivers] == [
        ("grew", 300, 40, 260),
        ("new", 40, 0, 40),
    ]
    assert drivers[0].share_of_excess == pytest.approx(260 / 300)


def test_at_most_three_drivers_per_dimension():
    points = days([10] * 57)
    spike = Spike(56, 100, 10, 90, (49, 42, 35, 28))
    per_value = {f"v{n}": {56: 10 + n} for n in range(10)}
    assert [d.value for d in find_drivers(spike, points, per_value)] == ["v9", "v8", "v7"]


def test_drivers_are_read_for_the_largest_spikes_within_the_bucket_budget():
    rows = [
        SpikeRow(START, START, Spike(100 + 7 * n, 10, 1, excess, tuple(range(n * 9, n * 9 + 8))))
        for n, excess in enumerate([5, 50, 500, 40, 30, 20, 10])
    ]
    # Nine buckets each (the spike and eight baseline buckets), 45 at most: five spikes.
    assert [row.spike.excess for row in explained(rows)] == [500, 50, 40, 30, 20]
    assert _runs({1, 2, 3, 7, 9, 10}) == [range(1, 4), range(7, 8), range(9, 11)]


def _cost(query: str) -> int:
    schema = build_schema(Settings())._schema
    limits = CostLimits(max_page_size=100, max_series_points=10_000)
    return estimate_cost(schema, parse(query), operation_name=None, variables=None, limits=limits)


def test_spikes_cost_a_series_and_drivers_their_real_bound():
    # LAST_7_DAYS: at most 7 days of 23 hours ... 9 points priced; each spike holds at most
    # 4 dimensions x 3 drivers, not a page of 100.
    spikes = (
        "{ organization { usage(timeRange: {preset: LAST_7_DAYS}) { spikes(granularity: DAY) "
        "{ start drivers { value } } } } }"
    )
    series = (
        "{ organization { usage(timeRange: {preset: LAST_7_DAYS}) { series(granularity: DAY) "
        "{ start } } } }"
    )
    points = (_cost(series) - 2) // 2
    assert _cost(spikes) == 1 + 1 + points * (1 + 1 + 12 * 2)
