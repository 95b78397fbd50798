"""The independent computation: plain Python over the raw events a test sent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any


def when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


def key_of(event: dict[str, Any]) -> str | None:
    ref = event.get("api_key")
    return ref["id"] if isinstance(ref, dict) else ref


def user_of(event: dict[str, Any]) -> str | None:
    ref = event.get("user")
    return ref["id"] if isinstance(ref, dict) else ref


def unique(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """First occurrence of each (organization, id): what exactly-once ingestion stores."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for item in events:
        seen.setdefault((str(item["organization"]), item["id"]), item)
    return list(seen.values())


def select(
    events: Iterable[dict[str, Any]],
    start: datetime,
    end: datetime,
    key: str | None = None,
) -> list[dict[str, Any]]:
    return [
        item
        for item in unique(events)
        if start <= when(item) < end and (key is None or key_of(item) == key)
    ]


def table(
    events: Iterable[dict[str, Any]], group: Callable[[dict[str, Any]], Any]
) -> list[tuple[Any, int, int]]:
    """(group, calls, credits) ordered by credits, then calls (descending), then name."""
    sums: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for item in events:
        slot = sums[group(item)]
        slot[0] += 1
        slot[1] += item["credits"]
    rows = [(name, calls, credits) for name, (calls, credits) in sums.items()]
    rows.sort(key=lambda row: (-row[2], -row[1], str(row[0])))
    return rows
