"""A range cut into rollup pieces (db/grains.py): disjoint, covering it exactly, each piece
on its own grain, raw events only at edges off the quarter-hour grid, and the coarsest
grain that fits used (every whole UTC day inside the range is read as a day)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from db import grains

instants = st.integers(0, 4_102_444_800 * grains.MICROS)  # to 2100, in microseconds
durations = st.integers(0, 120 * 86400 * grains.MICROS)


def covered(pieces: list[grains.Piece]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for piece in sorted(pieces, key=lambda piece: piece.low):
        if spans and spans[-1][1] == piece.low:
            spans[-1] = (spans[-1][0], piece.high)
        else:
            spans.append((piece.low, piece.high))
    return spans


@given(instants, durations)
def test_pieces_cover_the_range_exactly_each_on_its_grain(low: int, length: int) -> None:
    high = low + length
    for pieces in (grains.split(low, high), grains.merge(grains.split(low, high))):
        assert covered(pieces) == ([(low, high)] if length else [])
        ordered = sorted(pieces, key=lambda piece: piece.low)
        assert all(a.high <= b.low for a, b in itertools.pairwise(ordered))
        for piece in pieces:
            assert piece.low < piece.high
            if piece.grain:
                assert piece.low % piece.grain == 0
                assert piece.high % piece.grain == 0
            else:  # raw events only at edges off the quarter-hour grid
                assert piece.low % grains.QUARTER_HOUR or piece.high % grains.QUARTER_HOUR


@given(instants, durations)
def test_every_whole_day_inside_the_range_is_read_as_a_day(low: int, length: int) -> None:
    high = low + length
    first_day = -(-low // grains.DAY) * grains.DAY
    whole_days = (high - first_day) // grains.DAY if high > first_day else 0
    days = [piece for piece in grains.merge(grains.split(low, high)) if piece.grain == grains.DAY]
    assert sum(piece.high - piece.low for piece in days) == whole_days * grains.DAY
    assert len(days) <= 1  # one contiguous run of days, one index range
