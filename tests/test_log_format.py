"""The plain log line is the same text as the formatter wrote it before R32's shortcuts (the
seconds' text made once per second, common values written without escaping): the old
formatter is kept here, and both format the same records."""

from __future__ import annotations

import logging
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.logging import PlainFormatter, _extras, _indented, escape


def _old_value(value: object) -> str:
    text = escape(str(value))
    if not text or " " in text or '"' in text or "=" in text:
        return f'"{text}"'
    return text


class OldPlainFormatter(logging.Formatter):
    """PlainFormatter as it was, on logging.Formatter's own formatTime."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self.formatTime(record)} {record.levelname} {record.name} "
            f"{escape(record.getMessage())}"
        )
        extras = " ".join(f"{key}={_old_value(value)}" for key, value in _extras(record).items())
        if extras:
            line = f"{line} {extras}"
        if record.exc_info:
            line = f"{line}\n{_indented(self.formatException(record.exc_info))}"
        return line


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.getLogger("creditlens.http").makeRecord(
        "creditlens.http", logging.INFO, __file__, 1, "request", (), None, extra=extra
    )
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(),
    st.text(alphabet='ab =\\"\n\x1b\u202e-_/:@', max_size=12),
)


@given(values=st.lists(VALUES, max_size=8), created=st.floats(0, 4e9))
def test_a_line_is_written_as_before(values, created):
    new, old = PlainFormatter(), OldPlainFormatter()
    record = _record(created, **{f"k{i}": value for i, value in enumerate(values)})
    assert new.format(record) == old.format(record)


@pytest.mark.parametrize(
    "times",
    [
        [1_764_590_000.0, 1_764_590_000.5, 1_764_590_000.999, 1_764_590_001.0],
        [1_764_590_001.2, 1_764_590_000.9, 1_764_590_001.2],  # a clock stepping back
        [1_700_000_000.001, 1_800_000_000.75, 1_700_000_000.002],
    ],
    ids=["within-and-across-a-second", "backwards", "far-apart"],
)
def test_the_seconds_text_follows_each_record(times):
    formatter = PlainFormatter()
    for created in times:
        record = _record(created)
        assert formatter.formatTime(record) == logging.Formatter().formatTime(record)
        assert formatter.formatTime(record).startswith(
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
        )
