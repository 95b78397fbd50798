"""The plain log line is the same text as the formatter wrote it before R32's shortcuts (the
seconds' text made once per second, common values written without escaping): the old
formatter is kept here, and both format the same records."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.logging import (
    JsonFormatter,
    PlainFormatter,
    _extras,
    _indented,
    _only_handler,
    configure_logging,
    escape,
    log_info,
)
from app.settings import Settings


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


@given(values=st.lists(VALUES, max_size=8), created=st.floats(0, 4e9))
def test_a_direct_line_is_the_records_line(values, created):
    """``line`` (the request line written without a record, ``log_info``) gives what
    ``format`` gives for the record of the same values, in both formats."""
    extras = {f"k{i}": value for i, value in enumerate(values)}
    for formatter in (PlainFormatter(), JsonFormatter()):
        expected = formatter.format(_record(created, **extras))
        assert formatter.line(created, "INFO", "creditlens.http", "request", extras) == expected


FIELDS: dict[str, object] = {
    "request_id": "0f" * 16,
    "method": "POST",
    "path": "/graphql\r\nforged=1",
    "status": 200,
    "viewer": "user:1@organization:1",
    "operation": None,
    "user_agent": 'curl "8" \x1b[2J',
    "duration_ms": 1.25,
}


class _KeepAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return True


@pytest.mark.parametrize("json_format", [False, True], ids=["plain", "json"])
def test_the_request_line_is_written_as_logging_writes_it(capsys, monkeypatch, json_format):
    logger = logging.getLogger("creditlens.http")
    # pytest's own handlers on the root logger would see the record: as served, none.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    configure_logging(Settings(log_json=json_format))
    try:
        assert _only_handler(logger) is not None  # the direct way is taken
        log_info(logger, "request", FIELDS)
        direct = capsys.readouterr().err
        logger.addFilter(_KeepAll())  # a filter: the usual way
        assert _only_handler(logger) is None
        log_info(logger, "request", FIELDS)
        usual = capsys.readouterr().err
    finally:
        logger.filters.clear()
        configure_logging(Settings())
    assert direct.count("\n") == usual.count("\n") == 1
    if json_format:
        direct_entry, usual_entry = json.loads(direct), json.loads(usual)
        direct_entry.pop("time"), usual_entry.pop("time")
        assert direct_entry == usual_entry
    else:
        # The same line but for its time.
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO ", direct)
        assert direct[23:] == usual[23:]
        assert 'path="/graphql\\r\\nforged=1"' in direct


def test_any_other_handler_gets_the_record(caplog):
    """A handler of anyone else's (here pytest's, on the root logger) sees the record, so
    the line goes the usual way, through it."""
    logger = logging.getLogger("creditlens.http")
    configure_logging(Settings())
    with caplog.at_level(logging.INFO, logger="creditlens.http"):
        assert _only_handler(logger) is None
        log_info(logger, "request", FIELDS)
    [record] = caplog.records
    assert record.getMessage() == "request"
    assert record.__dict__["path"] == FIELDS["path"]


def test_nothing_is_written_below_the_level(capsys, monkeypatch):
    logger = logging.getLogger("creditlens.http")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    configure_logging(Settings(log_level="WARNING"))
    try:
        log_info(logger, "request", FIELDS)
    finally:
        configure_logging(Settings())
    assert capsys.readouterr().err == ""
