"""The bench generator's planted spike (bench/generate.py): it replaces calls of its window
and nothing else, so the event count per size and every other event stay as they were, and
it is large enough that a day baseline of the same weekdays sees it."""

from __future__ import annotations

import random
import statistics
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import generate

END = datetime(2026, 11, 30, 19, 3, tzinfo=UTC)


def test_the_spike_replaces_calls_in_its_window_only() -> None:
    orgs, _ = generate.build_world(random.Random(generate.SEED))
    spike = generate.plan_spike(orgs, END)
    with_spike = list(generate.events(60_000, END))
    without = list(generate.events(60_000, END, spike=False))
    assert len(with_spike) == len(without) == 60_000
    changed = [(a, b) for a, b in zip(with_spike, without, strict=True) if a != b]
    assert changed
    for planted, ordinary in changed:
        assert (planted["id"], planted["timestamp"]) == (ordinary["id"], ordinary["timestamp"])
        assert ordinary["organization"] != spike.organization
        assert spike.start <= datetime.fromisoformat(str(planted["timestamp"])) < spike.end
        assert planted["organization"] == spike.organization
        assert (planted["api_key"], planted["endpoint"]) == (spike.key, spike.endpoint)
    # A weekday, a few days before the end, in the organization's zone.
    assert spike.day.weekday() < 5
    zone = ZoneInfo("Europe/Berlin")
    assert timedelta(days=4) <= END.astimezone(zone).date() - spike.day <= timedelta(days=6)


def test_the_spike_day_stands_out_from_the_same_weekdays() -> None:
    orgs, _ = generate.build_world(random.Random(generate.SEED))
    spike = generate.plan_spike(orgs, END)
    zone = ZoneInfo(orgs[0].timezone)
    credits: Counter[object] = Counter()
    for event in generate.events(200_000, END):
        if event["organization"] == spike.organization:
            day = datetime.fromisoformat(str(event["timestamp"])).astimezone(zone).date()
            credits[day] += int(str(event["credits"]))
    before = [credits[spike.day - timedelta(weeks=w)] for w in range(1, 9)]
    assert credits[spike.day] > 3 * statistics.median(before)
