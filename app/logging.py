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
from typing import TextIO, cast

from app.settings import Settings

# Attributes every LogRecord has; anything else was passed as ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_HANDLER_NAME = "creditlens"


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        exception = self.formatException(record.exc_info) if record.exc_info else None
        return self._entry(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            _extras(record),
            exception,
        )

    def line(
        self, created: float, level: str, name: str, message: str, extras: dict[str, object]
    ) -> str | None:
        """What :meth:`format` gives for a record of these values without an exception."""
        return self._entry(created, level, name, message, extras, None)

    @staticmethod
    def _entry(
        created: float,
        level: str,
        name: str,
        message: str,
        extras: dict[str, object],
        exception: str | None,
    ) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(created, UTC).isoformat(),
            "level": level,
            "logger": name,
            "message": message,
            **extras,
        }
        if exception is not None:
            entry["exception"] = exception
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
        if datefmt is not None or not self._default_time:
            return super().formatTime(record, datefmt)
        return self._time_text(record.created, record.msecs)

    @property
    def _default_time(self) -> bool:
        return self.default_msec_format is not None and self.converter is time.localtime

    def _time_text(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, time.localtime(second))
            self._second = second
        return self.default_msec_format % (self._second_text, msecs)  # type: ignore[operator]

    def format(self, record: logging.LogRecord) -> str:
        line = self._line(
            self.formatTime(record),
            record.levelname,
            record.name,
            record.getMessage(),
            _extras(record),
        )
        if record.exc_info:
            line = f"{line}\n{_indented(self.formatException(record.exc_info))}"
        if record.stack_info:
            line = f"{line}\n{_indented(self.formatStack(record.stack_info))}"
        return line

    def line(
        self, created: float, level: str, name: str, message: str, extras: dict[str, object]
    ) -> str | None:
        """What :meth:`format` gives for a record of these values without an exception, or
        None when this formatter's time is not the default one."""
        if not self._default_time:
            return None
        # As ``logging.LogRecord`` computes ``msecs`` from ``created``.
        msecs = int((created - int(created)) * 1000) + 0.0
        return self._line(self._time_text(created, msecs), level, name, message, extras)

    @staticmethod
    def _line(
        time_text: str, level: str, name: str, message: str, extras: dict[str, object]
    ) -> str:
        line = f"{time_text} {level} {name} {escape(message)}"
        fields = " ".join(f"{key}={_value(value)}" for key, value in extras.items())
        return f"{line} {fields}" if fields else line


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


def log_info(logger: logging.Logger, message: str, fields: dict[str, object]) -> None:
    """``logger.info(message, extra=fields)``: the same line, written without a
    ``LogRecord`` when no one but our own handler would see the record (as
    :func:`configure_logging` leaves things).

    The request line is written once per request. Through ``logging`` (the record, its
    caller lookup, the handler and formatter dispatch) it cost 43-77 us of CPU a request
    inside a report, against 12 us in a loop: 5-8 % of the executed 30-day endpoint
    table's req/s (bench/PROPOSALS.md, R43). Any other handler, a filter, a level or a
    formatter of another kind, and the record goes the usual way.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    route = _only_handler(logger)
    line = None
    if route is not None:
        handler, formatter = route
        line = formatter.line(time.time(), "INFO", logger.name, message, fields)
    if route is None or line is None:
        logger.info(message, extra=fields)
        return
    handler.acquire()
    try:
        stream = handler.stream
        stream.write(line + handler.terminator)
        stream.flush()
    except RecursionError:
        raise
    except Exception:  # as StreamHandler.emit: reported, never raised into the request
        record = logger.makeRecord(
            logger.name, logging.INFO, "(unknown file)", 0, message, (), None, extra=fields
        )
        handler.handleError(record)
    finally:
        handler.release()


def _only_handler(
    logger: logging.Logger,
) -> tuple[_StderrHandler, PlainFormatter | JsonFormatter] | None:
    """Our stderr handler and its formatter (exactly ours, not a subclass that may format
    otherwise) when it is the one handler an INFO record of ``logger`` reaches and nothing
    on the way filters, else None."""
    found: tuple[_StderrHandler, PlainFormatter | JsonFormatter] | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or current.disabled:
            return None
        for handler in current.handlers:
            formatter = handler.formatter
            if (
                found is not None
                or type(handler) is not _StderrHandler
                or handler.filters
                or handler.level > logging.INFO
                or type(formatter) not in (PlainFormatter, JsonFormatter)
            ):
                return None
            found = (handler, cast(PlainFormatter | JsonFormatter, formatter))
        if not current.propagate:
            break
        current = current.parent
    return found


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
