"""Strict JSON text to Python values, shared by ``POST /v1/events`` and ``creditlens ingest``.

The standard library's decoder accepts ``NaN`` and ``Infinity`` (not JSON), and fails with
``ValueError`` or ``RecursionError`` rather than ``JSONDecodeError`` on numbers of more than
4,300 digits or very deep nesting. All of these become one ``MalformedJson`` with the place
of the problem, so no producer input can turn into a server error.
"""

from __future__ import annotations

import json


class MalformedJson(Exception):
    """The text is not strict JSON; ``line`` and ``column`` count from 1."""

    def __init__(self, reason: str, line: int, column: int, position: int) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column
        self.position = position


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


_decoder = json.JSONDecoder(parse_constant=_refuse_constant)


def decode(text: bytes | str, *, line: int = 1) -> object:
    """The value of one JSON text; ``line`` is the line the text starts on (for NDJSON)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return _decoder.decode(text)
    except UnicodeDecodeError as error:
        raise MalformedJson("the text is not UTF-8", line, 1, error.start) from error
    except json.JSONDecodeError as error:
        raise MalformedJson(error.msg, line + error.lineno - 1, error.colno, error.pos) from error
    except RecursionError as error:
        raise MalformedJson("the JSON is nested too deeply", line, 1, 0) from error
    except ValueError as error:
        # NaN/Infinity, or an integer too long to convert: not placed by the decoder.
        reason = str(error).split(";")[0]
        if "digits" in reason:  # Python's own wording names a setting no client has
            reason = "a number too long (more than 4300 digits)"
        raise MalformedJson(reason, line, 1, 0) from error
