"""Validation's fast path gives the same verdict as the careful path on any input."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from db.ingestion.validation import _check, _fast, validate_events

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LATEST = datetime(2026, 6, 16, 12, 0, tzinfo=UTC)

texts = st.one_of(
    st.sampled_from(["a", "/v2/person", " padded ", "", "API", "x" * 200, "x" * 201]),
    st.text(max_size=8),
    st.sampled_from(["nul\x00", "\ud800", "é", "\t"]),
)
anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts, st.just([])
)
timestamps = st.one_of(
    st.sampled_from(
        [
            "2026-06-15T11:00:00Z",
            "2026-06-15t11:00:00z",
            "2026-06-15 11:00:00.123456789+05:45",
            "2026-06-15T11:00:00",
            "2026-02-30T11:00:00Z",
            "1999-12-31T23:59:59Z",
            "2026-06-16T12:00:00Z",
            "2026-06-16T12:00:00.000001Z",
            "2026-06-16T13:00:00+01:00",
            "2026-06-15T11:00:00+24:00",
        ]
    ),
    # hypothesis takes naive bounds and attaches the zone itself.
    st.datetimes(
        min_value=datetime(1999, 1, 1),  # noqa: DTZ001
        max_value=datetime(2027, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ).map(lambda at: at.isoformat()),
    anything,
)
references = st.one_of(
    st.none(),
    texts,
    st.fixed_dictionaries({"id": texts}, optional={"name": st.one_of(texts, anything)}),
    st.dictionaries(st.sampled_from(["id", "name", "other"]), anything, max_size=3),
    anything,
)
events = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(texts, anything),
        "organization": st.one_of(
            st.sampled_from(["acme", 1, 2**63 - 1, 2**63, 0, -1]), texts, anything
        ),
        "api_key": references,
        "user": references,
        "source": st.one_of(texts, anything),
        "endpoint": st.one_of(texts, anything),
        "status": st.one_of(st.sampled_from([99, 100, 200, 599, 600]), anything),
        "credits": st.one_of(st.sampled_from([0, 1, 10**12, 10**12 + 1, -1, 1.0]), anything),
        "timestamp": timestamps,
        "outcome": st.one_of(st.sampled_from(["no_result", "NO_RESULT", " no_result"]), anything),
        "extra": anything,
    },
)


TYPICAL = {
    "id": "evt-1",
    "organization": "acme",
    "api_key": {"id": "key-1", "name": "Production"},
    "user": "ann",
    "source": "CRM_Integration",
    "endpoint": "/v2/person",
    "status": 200,
    "credits": 2,
    "timestamp": "2026-06-15T11:00:00.5Z",
}
# A typical event with one or two fields replaced: mostly valid, so the fast path decides.
near_typical = st.tuples(events, st.lists(st.sampled_from(sorted(TYPICAL)), max_size=2)).map(
    lambda drawn: {**TYPICAL, **{k: v for k, v in drawn[0].items() if k in drawn[1]}}
)


@settings(max_examples=1500, deadline=None)
@given(raw=st.one_of(events, near_typical, anything))
def test_fast_path_agrees_with_the_careful_path(raw):
    fast = _fast(0, raw, LATEST)
    careful = _check(0, raw, NOW)
    if fast is not None:
        assert fast == careful
    valid, errors = validate_events([raw], NOW)
    assert (valid[0] if valid else errors) == careful


def test_a_typical_event_takes_the_fast_path():
    raw = dict(TYPICAL)
    fast = _fast(3, raw, LATEST)
    assert fast is not None
    assert fast == _check(3, raw, NOW)
    assert fast.source == "crm_integration"
    assert fast.occurred_at == datetime(2026, 6, 15, 11, 0, 0, 500000, tzinfo=UTC)
