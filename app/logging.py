"""Log output: one line per record, plain or JSON (``CREDITLENS_LOG_JSON``).

The request log line (``creditlens.http``) carries the request id, the viewer, the GraphQL
operation name, status and duration as record attributes; the JSON formatter writes them as
keys, the plain one appends them as ``key=value``.

Request data (a path, an operation name, a header) must never forge a line (issue 10,
class 7). JSON escapes every control character by itself. The plain format escapes them
too (``\\n``, ``\\x1b``, ``\\u202e``...), quotes a value with a space, a quote or an
``=`` so it cannot pose as another ``key=value``, and indents every line of a traceback,
so any line that starts at the margin is a record this formatter wrote.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from app.settings import Settings

# Attributes every LogRecord has; anything else was passed as ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_HANDLER_NAME = "creditlens"


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def escape(text: str) -> str:
    """``text`` with backslashes, quotes and every unprintable character escaped."""
    if text.isprintable() and "\\" not in text and '"' not in text:
        return text
    out = []
    for char in text:
        if char in '\\"':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)


def _value(value: object) -> str:
    text = str(value)
    # The common value (an id, a number, a path) needs neither escaping nor quotes: one
    # pass of checks instead of escape()'s and then the quoting's (R32).
    if (
        text.isprintable()
        and text
        and " " not in text
        and '"' not in text
        and "=" not in text
        and "\\" not in text
    ):
        return text
    text = escape(text)
    if not text or " " in text or '"' in text or "=" in text:
        return f'"{text}"'
    return text


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...``, one line, then an indented traceback."""

    # The last second written and its text: a busy server logs many lines a second, and
    # ``time.strftime`` of the same second gives the same text (R32).
    _second: int | None = None
    _second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """``logging.Formatter.formatTime``, the seconds' text made once per second."""
        msec_format = self.default_msec_format
        if datefmt is not None or msec_format is None or self.converter is not time.localtime:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, time.localtime(second))
            self._second = second
        return msec_format % (self._second_text, record.msecs)

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self.formatTime(record)} {record.levelname} {record.name} "
            f"{escape(record.getMessage())}"
        )
        extras = " ".join(f"{key}={_value(value)}" for key, value in _extras(record).items())
        if extras:
            line = f"{line} {extras}"
        if record.exc_info:
            line = f"{line}\n{_indented(self.formatException(record.exc_info))}"
        if record.stack_info:
            line = f"{line}\n{_indented(self.formatStack(record.stack_info))}"
        return line


def _indented(text: str) -> str:
    return "\n".join("    " + escape(line) for line in text.splitlines())


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is now (test runners swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def configure_logging(settings: Settings) -> None:
    """Give the ``creditlens`` loggers one stream handler (replaced on each call, so building
    several apps in one process does not duplicate lines)."""
    logger = logging.getLogger("creditlens")
    logger.setLevel(settings.log_level.upper())
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if settings.log_json else PlainFormatter())
    logger.addHandler(handler)
