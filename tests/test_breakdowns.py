"""domain.breakdowns: the top rows and the rest, against plain Python sums."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.breakdowns import contenders, percent, top
from domain.records import Share

tallies = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=0, max_size=40)


def ranked(pairs):
    """Shares as db.queries.reports.ranked orders them (credits, then calls, then value)."""
    total_calls = sum(calls for calls, _ in pairs)
    total_credits = sum(credits for _, credits in pairs)
    shares = [
        Share(
            f"v{index:02d}",
            calls,
            credits,
            percent(calls, credits, total_calls=total_calls, total_credits=total_credits),
        )
        for index, (calls, credits) in enumerate(pairs)
    ]
    return sorted(shares, key=lambda s: (-s.credits, -s.calls, str(s.value)))


@given(tallies, st.integers(1, 45))
def test_listed_rows_and_the_rest_add_up_to_the_whole(pairs, limit):
    shares = ranked(pairs)
    limited = top(shares, limit)
    assert limited.rows == shares[:limit]
    rest = shares[limit:]
    if not rest:
        assert limited.rest is None
        return
    assert limited.rest is not None
    assert limited.rest.rows == len(rest)
    assert limited.rest.calls == sum(share.calls for share in rest)
    assert limited.rest.credits == sum(share.credits for share in rest)
    listed = sum(share.percent for share in limited.rows)
    if any(calls for calls, _ in pairs):
        assert abs(listed + limited.rest.percent - 100.0) < 1e-9


@given(tallies, st.integers(1, 45))
def test_contenders_hold_every_row_that_a_name_could_bring_into_the_top(pairs, limit):
    shares = ranked(pairs)
    found = contenders(shares, limit)
    assert found == shares[: len(found)]
    assert len(found) >= min(limit, len(shares))
    if len(found) < len(shares):
        last, first_out = found[limit - 1], shares[len(found)]
        assert (first_out.credits, first_out.calls) < (last.credits, last.calls)
    for share in found[limit:]:
        assert (share.credits, share.calls) == (found[limit - 1].credits, found[limit - 1].calls)
