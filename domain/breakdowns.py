"""Breakdown rules: each row's share of the total, and the top rows with the rest summed.

A breakdown (per endpoint, source, user or key) has as many rows as distinct values, and
any producer can create values by sending events: a report lists at most ``limit`` rows and
sums the others into one *rest* row, whose share keeps the total at 100 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.records import Share

T = TypeVar("T")


def percent(calls: int, credits: int, *, total_calls: int, total_credits: int) -> float:
    """A row's share of the report's credits, in percent; with no credits at all (every call
    free), its share of the calls, so the column still says where the traffic went."""
    if total_credits:
        return 100.0 * credits / total_credits
    return 100.0 * calls / total_calls if total_calls else 0.0


@dataclass(frozen=True, slots=True)
class Rest:
    """The rows after the limit, summed into one: calls, credits, share, and how many."""

    rows: int
    calls: int
    credits: int
    percent: float


@dataclass(frozen=True, slots=True)
class Limited(Generic[T]):
    """The first ``limit`` rows of a breakdown, in report order, and the rest if any."""

    rows: list[T]
    rest: Rest | None


def rest_of(shares: Sequence[Share], kept: Sequence[Share]) -> Rest | None:
    """What ``shares`` hold beyond ``kept`` (a subset of them), summed; None if nothing."""
    left = len(shares) - len(kept)
    if left <= 0:
        return None
    total_calls = sum(share.calls for share in shares)
    total_credits = sum(share.credits for share in shares)
    calls = total_calls - sum(share.calls for share in kept)
    credits = total_credits - sum(share.credits for share in kept)
    return Rest(
        rows=left,
        calls=calls,
        credits=credits,
        percent=percent(calls, credits, total_calls=total_calls, total_credits=total_credits),
    )


def top(shares: Sequence[Share], limit: int) -> Limited[Share]:
    """The first ``limit`` of ``shares`` (already in report order) and the rest summed."""
    kept = list(shares[:limit])
    return Limited(kept, rest_of(shares, kept))


def contenders(shares: Sequence[Share], limit: int) -> list[Share]:
    """The rows that may be among the first ``limit`` once ties are ordered by a display
    name: the first ``limit`` of ``shares`` (ordered by credits, then calls) and every row
    tied with the last of them. Only these need their names read."""
    if len(shares) <= limit:
        return list(shares)
    last = shares[limit - 1]
    end = limit
    while end < len(shares) and (shares[end].credits, shares[end].calls) == (
        last.credits,
        last.calls,
    ):
        end += 1
    return list(shares[:end])
