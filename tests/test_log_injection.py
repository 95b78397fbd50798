"""Request data cannot forge log lines (issue 10, class 7): CR/LF, ANSI escapes and other
unprintable characters in a path, a header or an operation name are escaped in the plain
format and kept as data in JSON."""

from __future__ import annotations

import json
import logging
import re

import pytest

from app.logging import JsonFormatter, PlainFormatter
from tests.factories import make_tenant

FORGED = "\r\n2026-06-15 12:00:00,000 INFO creditlens.http request status=200 viewer=admin"
ANSI = "\x1b[2J\x1b[31m"
# Characters some terminals or log viewers take for a line break or a reordering.
OTHER = "\x85\u2028\u202e\x00"
CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029\u202e]")
# key=value or key="quoted \" value", as a logfmt reader splits them.
PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def _requests(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [record for record in records if record.name == "creditlens.http"]


async def _logged(client, caplog, **request) -> logging.LogRecord:
    with caplog.at_level(logging.INFO, logger="creditlens.http"):
        await client.request(**request)
    [record] = _requests(caplog.records)
    return record


def _assert_one_clean_line(record: logging.LogRecord) -> str:
    """The plain line: one line, nothing unprintable, and exactly the record's fields."""
    line = PlainFormatter().format(record)
    assert "\n" not in line
    assert "\r" not in line
    assert not CONTROL.search(line), repr(line)
    keys = [key for key, _ in PAIR.findall(line.split(" request ", 1)[1])]
    assert keys == [
        "request_id", "method", "path", "status", "viewer", "operation", "user_agent",
        "duration_ms",
    ]  # fmt: skip
    return line


def _assert_json_keeps(record: logging.LogRecord, **fields: str) -> None:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert not CONTROL.search(line)
    entry = json.loads(line)
    for key, value in fields.items():
        assert entry[key] == value


async def test_a_forged_path_stays_inside_its_line(client, caplog):
    path = "/graphql" + FORGED + ANSI + OTHER
    quoted = "".join(f"%{ord(c):02x}" if ord(c) < 0x80 and not c.isalnum() else c for c in path)
    record = await _logged(client, caplog, method="GET", url=quoted.replace("%2f", "/"))
    assert record.path == path
    line = _assert_one_clean_line(record)
    assert "\\r\\n2026-06-15" in line
    assert "\\x1b[2J" in line
    assert "\\x85\\u2028\\u202e\\x00" in line
    _assert_json_keeps(record, path=path)


@pytest.mark.parametrize(
    "user_agent",
    ["curl\r\nINFO forged", "agent" + ANSI, 'a" status=200 b="'],
    ids=["crlf", "ansi", "quotes"],
)
async def test_a_forged_header_stays_inside_its_line(client, caplog, user_agent):
    record = await _logged(
        client, caplog, method="GET", url="/healthz", headers={"User-Agent": user_agent}
    )
    assert record.user_agent == user_agent
    _assert_one_clean_line(record)
    _assert_json_keeps(record, user_agent=user_agent)


async def test_a_forged_operation_name_stays_inside_its_line(client, engine, clock, caplog):
    tenant = await make_tenant(engine, now=clock())
    record = await _logged(
        client,
        caplog,
        method="POST",
        url="/graphql",
        json={"query": "query Who { viewer { id } }", "operationName": "Who" + FORGED + ANSI},
        headers={"Authorization": f"Bearer {tenant.token}"},
    )
    _assert_one_clean_line(record)


def test_a_forged_exception_message_cannot_start_a_line():
    try:
        raise ValueError("bad value" + FORGED)
    except ValueError:
        record = logging.LogRecord(
            "creditlens.graphql", logging.ERROR, __file__, 1, "failed" + ANSI, None, True
        )
        record.exc_info = __import__("sys").exc_info()
    text = PlainFormatter().format(record)
    first, *rest = text.split("\n")
    assert "\\x1b" in first
    assert rest
    # Every line after the record's own is indented: none can pose as a record.
    assert all(line.startswith("    ") for line in rest)
    assert not CONTROL.search(text.replace("\n", ""))
