"""False-positive and detection rates of the spike method (domain/spikes.py) on synthetic
traffic: steady series with a weekly (and, hourly, a daily) rhythm and noise, with and
without planted spikes. Pure Python, deterministic per seed; results in docs/spikes.md.

    .venv/bin/python bench/spike_rates.py [--seeds 1000]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import replace

from domain.periods import Granularity
from domain.spikes import METHODS, Point, SpikeMethod, find_spikes

WEEKLY = (1.0, 1.05, 1.0, 0.95, 0.9, 0.35, 0.25)  # Monday .. Sunday
HOURLY = tuple(1.0 if 8 <= hour < 19 else 0.15 for hour in range(24))
REPORT_DAYS = 30

Noise = Callable[[random.Random, float], int]


def uniform20(rng: random.Random, mean: float) -> int:
    """Bounded noise: every bucket within ±20 % of its rhythm."""
    return round(mean * rng.uniform(0.8, 1.2))


def gauss10(rng: random.Random, mean: float) -> int:
    """Unbounded noise: sigma 10 %, so ±20 % is two sigmas and 5 % of buckets pass it."""
    return max(0, round(rng.gauss(mean, 0.1 * mean)))


def poisson(rng: random.Random, mean: float) -> int:
    """Small counts: a Poisson number of calls of 1 credit (Knuth's method; means < 50)."""
    limit, product, count = pow(2.718281828459045, -mean), rng.random(), 0
    while product > limit:
        count += 1
        product *= rng.random()
    return count


# Credits per call of the demo's endpoint mix (app/demo.py): mostly 1, sometimes 5 or 10.
CALL_CREDITS = (1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 5, 5, 5, 5, 5, 10, 0, 0)


def compound(rng: random.Random, mean: float) -> int:
    """Heavy-tailed: a Poisson number of calls (``mean`` / 2.45 of them, the mix's mean
    cost), each costing a draw from the demo's mix."""
    calls = poisson(rng, mean / 2.45)
    return sum(rng.choice(CALL_CREDITS) for _ in range(calls))


def day_series(
    rng: random.Random, base: float, noise: Noise, days: int
) -> tuple[list[int], list[int]]:
    phases = [day % 7 for day in range(days)]
    return phases, [noise(rng, base * WEEKLY[day]) for day in phases]


def hour_series(
    rng: random.Random, base: float, noise: Noise, days: int
) -> tuple[list[int], list[int]]:
    phases, credits = [], []
    for day in range(days):
        for hour in range(24):
            phases.append((day % 7) * 24 + hour)
            credits.append(noise(rng, base * WEEKLY[day % 7] * HOURLY[hour]))
    return phases, credits


def run(
    granularity: Granularity,
    method: SpikeMethod,
    noise: Noise,
    base: float,
    seeds: int,
    plant: float | None,
    phase_of: Callable[[int], int] | None = None,
) -> tuple[int, int, int]:
    """(buckets judged, buckets flagged, planted buckets found) over ``seeds`` series."""
    history = 7 * method.samples  # days: weeks of the same weekday, or of its hour
    judged = flagged = found = 0
    for seed in range(seeds):
        rng = random.Random(seed)
        if granularity is Granularity.DAY:
            phases, credits = day_series(rng, base, noise, history + REPORT_DAYS)
            first = history
        else:
            phases, credits = hour_series(rng, base, noise, history + 7)
            first = history * 24
        if phase_of is not None:
            phases = [phase_of(at) for at in range(len(phases))]
        target = None
        if plant is not None:
            target = rng.randrange(first, len(credits))
            credits[target] = round(credits[target] * plant)
        points = [Point(p, 1.0, c) for p, c in zip(phases, credits, strict=True)]
        spikes = find_spikes(points, first, method)
        judged += len(points) - first
        hits = {spike.index for spike in spikes}
        if target is not None:
            found += target in hits
            hits.discard(target)
        flagged += len(hits)
    return judged, flagged, found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--only", default="", help="run the series whose label has this")
    arguments = parser.parse_args()
    seeds = arguments.seeds
    day, hour = METHODS[Granularity.DAY], METHODS[Granularity.HOUR]
    flat28 = replace(day, samples=28)
    hour14 = replace(hour, samples=14, min_samples=4)
    cases: list[tuple[str, Granularity, SpikeMethod, float, Callable[[int], int] | None]] = [
        ("DAY, same weekday x8 (chosen)", Granularity.DAY, day, 1000, None),
        ("DAY, 28 days before, no weekday", Granularity.DAY, flat28, 1000, lambda at: 0),
        ("HOUR, same hour x14 any weekday", Granularity.HOUR, hour14, 100, lambda at: at % 24),
        ("HOUR, same weekday and hour x4 (chosen)", Granularity.HOUR, hour, 100, None),
        ("HOUR, same weekday and hour x4 (chosen)", Granularity.HOUR, hour, 1000, None),
    ]
    noises: list[tuple[str, Noise, float]] = [
        ("uniform ±20 %", uniform20, 1.0),
        ("gauss sigma 10 %", gauss10, 1.0),
        ("poisson, small counts", poisson, 0.02),
        ("compound: poisson calls x demo credit mix", compound, 0.1),
        ("compound: poisson calls x demo credit mix", compound, 1.0),
    ]
    print("| series | noise | false positives / buckets | detected 1.5x | 2x | 3x |")
    print("|---|---|---|---|---|---|")
    for label, granularity, method, base, phase_of in cases:
        if arguments.only not in f"{label} {base}":
            continue
        for noise_label, noise, scale in noises:
            mean = base * scale
            judged, flagged, _ = run(granularity, method, noise, mean, seeds, None, phase_of)
            rates = []
            for factor in (1.5, 2.0, 3.0):
                _, _, found = run(granularity, method, noise, mean, seeds, factor, phase_of)
                rates.append(f"{100 * found / seeds:.1f} %")
            print(
                f"| {label} | {noise_label} (mean {mean:g}) | {flagged}/{judged} = "
                f"{100 * flagged / judged:.3f} % | " + " | ".join(rates) + " |"
            )


if __name__ == "__main__":
    main()
