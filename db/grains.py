"""Split a time range into pieces that the rollup grains can answer exactly.

Rollups hold sums per 15-minute, 1-hour and 1-day bucket of UTC. A range is split into
whole days in the middle, whole hours around them, whole quarter hours around those and,
when an edge is not on the 15-minute grid, a raw-event piece at each ragged end. The
pieces are disjoint and cover the range exactly, so summing them is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

# Grains in microseconds, the resolution of a datetime, so a raw piece can start or end at
# any instant. The rollup table stores bucket starts in seconds.
MICROS = 1_000_000
QUARTER_HOUR = 900 * MICROS
HOUR = 3600 * MICROS
DAY = 86400 * MICROS
GRAINS = (QUARTER_HOUR, HOUR, DAY)
# The same grains in seconds, as usage_rollups.grain stores them, and those that also hold
# rows summed over every key (db.rollup_keys.ALL_KEYS).
GRAIN_SECONDS = tuple(grain // MICROS for grain in GRAINS)
# Every grain: without all-keys rows at the quarter hour, an organization-wide read of a
# range edge at :15, :30 or :45 (a zone such as +05:45, or a TO_DATE comparison cut at "now")
# found no key to search by in the key-first primary key and scanned every quarter-hour row
# the organization ever had (138-170 ms at 1M events against 10.6 ms; docs/rollups.md).
ALL_KEYS_GRAINS = GRAIN_SECONDS


@dataclass(frozen=True, slots=True)
class Piece:
    """``[low, high)`` in epoch microseconds, read from the rollup of ``grain`` (0 = raw)."""

    grain: int
    low: int
    high: int


def split(low: int, high: int) -> list[Piece]:
    """Disjoint pieces covering ``[low, high)`` (epoch microseconds)."""
    if high <= low:
        return []
    return _split(low, high, (DAY, HOUR, QUARTER_HOUR))


def _split(low: int, high: int, grains: tuple[int, ...]) -> list[Piece]:
    if low >= high:
        return []
    if not grains:
        return [Piece(0, low, high)]
    grain, finer = grains[0], grains[1:]
    inner_low = -(-low // grain) * grain
    inner_high = high // grain * grain
    if inner_low >= inner_high:
        return _split(low, high, finer)
    return [
        *_split(low, inner_low, finer),
        Piece(grain, inner_low, inner_high),
        *_split(inner_high, high, finer),
    ]


def merge(pieces: list[Piece]) -> list[Piece]:
    """Join touching pieces of the same grain, so a query has fewer ranges to read."""
    ordered = sorted(pieces, key=lambda piece: (piece.grain, piece.low))
    merged: list[Piece] = []
    for piece in ordered:
        last = merged[-1] if merged else None
        if last is not None and last.grain == piece.grain and last.high == piece.low:
            merged[-1] = Piece(piece.grain, last.low, piece.high)
        else:
            merged.append(piece)
    return merged
