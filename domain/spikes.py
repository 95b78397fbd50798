"""Spikes: buckets of a series whose credits stand out from a robust baseline (docs/spikes.md).

Pure arithmetic over bucket sums. A bucket is compared with the buckets of the same *phase*
before it (the same local weekday for days, the same local hour of the same weekday for
hours, every bucket for weeks and months), so a weekly or daily rhythm is not mistaken for
a spike. The baseline is their median; the spread is their MAD (scaled to a standard
deviation), which one earlier spike or outage does not move.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.periods import Granularity, add_months

# MAD x 1.4826 estimates the standard deviation of normally distributed values. When half
# the samples or more are equal the MAD is 0 and the floors below decide; a mean deviation
# instead would let one past spike in a flat history hide the next one.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class SpikeMethod:
    """The parameters of one granularity (their reasons: docs/spikes.md)."""

    samples: int  # same-phase buckets before a bucket that form its baseline
    min_samples: int = 4  # fewer (since the first call) and the bucket is not judged
    # Iglewicz and Hoaglin's cut for a modified z-score: 3.5 robust sigmas.
    sigmas: float = 3.5  # credits must pass the baseline by this many robust sigmas ...
    min_ratio: float = 1.5  # ... and be more than this multiple of the baseline
    floor_fraction: float = 0.1  # the sigma is at least this fraction of the baseline ...
    floor_credits: float = 2.0  # ... and at least this many credits


METHODS: Mapping[Granularity, SpikeMethod] = {
    # The same local hour of the same weekday, 4 weeks back: office hours and weekends
    # differ too much for one hour to be judged against the hours of other weekdays.
    Granularity.HOUR: SpikeMethod(samples=4, min_samples=3),
    Granularity.DAY: SpikeMethod(samples=8),  # the same weekday of the 8 weeks before
    Granularity.WEEK: SpikeMethod(samples=8),
    Granularity.MONTH: SpikeMethod(samples=6),
}

# Drivers listed per dimension of a spike: the few that explain it, not a breakdown.
DRIVERS_PER_DIMENSION = 3


def phase(wall_start: datetime, granularity: Granularity) -> int:
    """Which buckets a bucket starting at local wall time ``wall_start`` is compared with."""
    if granularity is Granularity.HOUR:
        return wall_start.weekday() * 24 + wall_start.hour
    if granularity is Granularity.DAY:
        return wall_start.weekday()
    return 0


def history_wall_start(wall_floor: datetime, granularity: Granularity) -> datetime:
    """The first local wall time of the history a series starting at ``wall_floor`` (the
    start of its first period) needs: ``samples`` buckets of each phase before it."""
    samples = METHODS[granularity].samples
    if granularity in (Granularity.HOUR, Granularity.DAY, Granularity.WEEK):
        return wall_floor - timedelta(weeks=samples)
    return add_months(wall_floor, -samples)


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket of the series the method reads: its phase, its length in seconds as a full
    calendar period (a DST day is 23 or 25 hours) and its credits."""

    phase: int
    length: float
    credits: int


@dataclass(frozen=True, slots=True)
class Baseline:
    expected: float
    sigma: float
    samples: int


@dataclass(frozen=True, slots=True)
class Spike:
    index: int  # of the point
    credits: int
    expected: int
    excess: int
    baseline: tuple[int, ...]  # indexes of the points the baseline came from


@dataclass(frozen=True, slots=True)
class Driver:
    value: str | int
    credits: int
    expected: int
    excess: int
    share_of_excess: float


def robust_baseline(values: Sequence[float], method: SpikeMethod) -> Baseline:
    """Median of ``values`` and a robust sigma (scaled MAD, floored)."""
    expected = statistics.median(values)
    deviations = [abs(value - expected) for value in values]
    sigma = MAD_TO_SIGMA * statistics.median(deviations)
    # Floors: a perfectly flat history must not make every small bump a spike, and small
    # counts vary by about their square root (Poisson) whatever the history showed.
    sigma = max(sigma, method.floor_fraction * expected, math.sqrt(expected), method.floor_credits)
    return Baseline(expected, sigma, len(values))


def baseline_indexes(points: Sequence[Point], method: SpikeMethod) -> list[list[int]]:
    """For each point, the up to ``samples`` points before it with its phase, nearest first,
    none before the first point with credits (an organization's or key's quiet time before
    its first call is no history). Linear in the number of points."""
    first_active = next((at for at, point in enumerate(points) if point.credits), len(points))
    seen: dict[int, list[int]] = {}
    found: list[list[int]] = []
    for index, point in enumerate(points):
        same = seen.setdefault(point.phase, [])
        found.append(same[: -method.samples - 1 : -1] if same else [])
        if index >= first_active:
            same.append(index)
    return found


def _scaled(points: Sequence[Point], indexes: Sequence[int], length: float) -> list[float]:
    """Credits of the baseline points, per the length of the bucket judged (a 25-hour day
    is expected to hold 25/24 of a 24-hour one)."""
    return [points[at].credits * length / points[at].length for at in indexes]


def dispersion(points: Sequence[Point], baselines: Sequence[Baseline | None]) -> float:
    """How much more than counts (Poisson) the credits of this series vary: the square of
    the robust spread of ``(credits - expected) / sqrt(expected)`` over every bucket with a
    baseline, at least 1. Calls that cost 1 credit give about 1; a mix of 1-, 5- and
    10-credit calls about 5. Pooled over hundreds of buckets, where one bucket's own
    baseline has only 4 to 8."""
    residuals = [
        abs(point.credits - baseline.expected) / math.sqrt(max(baseline.expected, 1.0))
        for point, baseline in zip(points, baselines, strict=True)
        if baseline is not None
    ]
    if not residuals:
        return 1.0
    return max(1.0, (MAD_TO_SIGMA * statistics.median(residuals)) ** 2)


def find_spikes(points: Sequence[Point], first: int, method: SpikeMethod) -> list[Spike]:
    """The points from ``first`` on (the report's buckets; those before are history) whose
    credits stand out: above ``expected + sigmas * sigma`` and above ``min_ratio`` times
    ``expected``, with at least ``min_samples`` baseline points."""
    indexes = baseline_indexes(points, method)
    baselines = [
        robust_baseline(_scaled(points, found, point.length), method)
        if len(found) >= method.min_samples
        else None
        for point, found in zip(points, indexes, strict=True)
    ]
    factor = dispersion(points, baselines)
    found: list[Spike] = []
    for index in range(first, len(points)):
        point, baseline = points[index], baselines[index]
        if baseline is None:
            continue
        # The count noise of this series (sqrt(factor * expected)) as one more floor.
        sigma = max(baseline.sigma, math.sqrt(factor * baseline.expected))
        if point.credits <= baseline.expected + method.sigmas * sigma:
            continue
        # Strictly more: every bucket of steady traffic within ±20 % of a level is at most
        # 1.2 / 0.8 = 1.5 times any median of it, so it is never a spike.
        if point.credits <= method.min_ratio * baseline.expected:
            continue
        expected = round(baseline.expected)
        found.append(
            Spike(index, point.credits, expected, point.credits - expected, tuple(indexes[index]))
        )
    return found


def find_drivers(
    spike: Spike,
    points: Sequence[Point],
    per_value: Mapping[str | int, Mapping[int, int]],
    *,
    limit: int = DRIVERS_PER_DIMENSION,
) -> list[Driver]:
    """The values of one dimension whose own credits in the spike's bucket grew most against
    their own baseline (the median over the spike's baseline buckets), by excess credits,
    then name. ``per_value`` maps a value to its credits per point index (absent: 0)."""
    length = points[spike.index].length
    drivers: list[Driver] = []
    for value, credits_at in per_value.items():
        credits = credits_at.get(spike.index, 0)
        if not credits:
            continue
        history = [credits_at.get(at, 0) * length / points[at].length for at in spike.baseline]
        expected = round(statistics.median(history)) if history else 0
        excess = credits - expected
        if excess <= 0:
            continue
        share = excess / spike.excess if spike.excess > 0 else 0.0
        drivers.append(Driver(value, credits, expected, excess, share))
    drivers.sort(key=lambda driver: (-driver.excess, -driver.credits, str(driver.value)))
    return drivers[:limit]
