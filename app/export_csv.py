"""The usage export's options and its CSV, shared by ``GET /v1/exports/usage.csv`` and
``creditlens export`` (docs/export.md).

Options are checked before any I/O, each refusal a BAD_USER_INPUT naming the parameter.
The CSV is RFC 4180 (comma, CRLF, quotes doubled), UTF-8 without a byte-order mark, with a
header row; a text cell that a spreadsheet would run as a formula is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from domain.errors import InvalidInput
from domain.outcomes import CallOutcome
from domain.periods import Granularity
from domain.presets import Preset
from domain.time_range import TimeRangeArgs
from graphql_schema.types.usage import PERCENT_DIGITS
from resolvers import export as export_rows
from resolvers import usage as usage_resolvers
from resolvers.context import Context
from resolvers.export import ExportGroup, ExportRow

GROUPS = {
    "endpoint": ExportGroup.ENDPOINT,
    "source": ExportGroup.SOURCE,
    "user": ExportGroup.USER,
    "apiKey": ExportGroup.API_KEY,
    "outcome": ExportGroup.OUTCOME,
}
PARAMETERS = (
    "preset",
    "start",
    "end",
    "timezone",
    "keyId",
    "outcomes",
    "groupBy",
    "granularity",
)
# A cell starting with one of these is a formula (or starts one) in Excel, LibreOffice and
# Google Sheets (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What to export: the same arguments as ``Organization.usage``, a group and buckets."""

    time_range: TimeRangeArgs
    key_id: str | None
    outcomes: frozenset[CallOutcome] | None
    group: ExportGroup
    granularity: Granularity | None


def _one(values: Mapping[str, Sequence[str]], name: str) -> str | None:
    given = values.get(name, [])
    if len(given) > 1:
        raise InvalidInput(f"Give {name} once, not {len(given)} times.", field=name)
    if not given:
        return None
    if given[0] == "":
        raise InvalidInput(f"{name} is empty: give a value or leave it out.", field=name)
    return given[0]


E = TypeVar("E", Preset, Granularity)


def _enum(kind: type[E], name: str, text: str | None) -> E | None:
    if text is None:
        return None
    try:
        return kind[text.upper()]
    except KeyError:
        allowed = ", ".join(member.name for member in kind)
        raise InvalidInput(f"{name} must be one of {allowed}; got {text!r}.", field=name) from None


def _instant(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{name} must be an ISO 8601 instant with a UTC offset, e.g. "
            f"2026-05-01T00:00:00Z; got {text!r}.",
            field=name,
        ) from None


def _outcomes(texts: Sequence[str]) -> frozenset[CallOutcome] | None:
    """``outcomes=NO_RESULT,CLIENT_ERROR`` or the parameter repeated; absent: all."""
    if not texts:
        return None
    names = [name.strip() for text in texts for name in text.split(",")]
    found: set[CallOutcome] = set()
    for name in names:
        try:
            found.add(CallOutcome[name.upper()])
        except KeyError:
            allowed = ", ".join(member.name for member in CallOutcome)
            raise InvalidInput(
                f"outcomes must be a comma-separated list of {allowed}; got {name!r}.",
                field="outcomes",
            ) from None
    return frozenset(found)


def parse_options(values: Mapping[str, Sequence[str]]) -> ExportOptions:
    """The options of a query string (each name with its values), or BAD_USER_INPUT naming
    the first parameter that is wrong. Unknown parameters are refused, not ignored: a typo
    (``groupby``) would otherwise export something else without a word."""
    for name in values:
        if name not in PARAMETERS:
            raise InvalidInput(
                f"Unknown parameter {name!r}; the export takes {', '.join(PARAMETERS)}.",
                field=name,
            )
    group_text = _one(values, "groupBy") or "endpoint"
    group = GROUPS.get(group_text)
    if group is None:
        raise InvalidInput(
            f"groupBy must be one of {', '.join(GROUPS)}; got {group_text!r}.", field="groupBy"
        )
    return ExportOptions(
        time_range=TimeRangeArgs(
            preset=_enum(Preset, "preset", _one(values, "preset")),
            start=_instant("start", _one(values, "start")),
            end=_instant("end", _one(values, "end")),
            timezone=_one(values, "timezone"),
        ),
        key_id=_one(values, "keyId"),
        outcomes=_outcomes(values.get("outcomes", [])),
        group=group,
        granularity=_enum(Granularity, "granularity", _one(values, "granularity")),
    )


# The time-range rules name GraphQL's argument paths; the export's parameters are flat.
_FIELDS = {
    "timeRange": "preset",
    "timeRange.start": "start",
    "timeRange.end": "end",
    "timeRange.timezone": "timezone",
}


def parameter_of(field: str | None) -> str | None:
    """The export parameter a resolver's error field stands for."""
    return None if field is None else _FIELDS.get(field, field)


def guard(cell: str) -> str:
    """A text cell a spreadsheet will show as text: a formula start gets a ``'`` before it."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def header(options: ExportOptions) -> list[str]:
    buckets = ["bucket_start", "bucket_end"] if options.granularity is not None else []
    return [*buckets, options.group.value, "calls", "credits_consumed", "percent_of_total"]


def _record(row: ExportRow) -> list[str]:
    buckets = (
        [] if row.start is None or row.end is None else [row.start.isoformat(), row.end.isoformat()]
    )
    return [
        *buckets,
        guard(row.label),
        str(row.calls),
        str(row.credits),
        repr(round(row.percent, PERCENT_DIGITS)),
    ]


def _encode(records: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(records)
    return text.getvalue().encode()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def filename(context: Context, report: usage_resolvers.ReportScope, options: ExportOptions) -> str:
    """``usage-<org>-<first day>-to-<last day>-by-<group>[-<granularity>].csv``, the days in
    the report's zone (the range is half-open: the last day is the one before its end)."""
    zone = report.range.zone
    first = report.range.start.astimezone(zone).date()
    last = (report.range.end - timedelta(microseconds=1)).astimezone(zone).date()
    parts = [
        "usage",
        _UNSAFE.sub("-", context.organization.slug),
        f"{first}-to-{last}",
        f"by-{options.group.value.replace('_', '-')}",
    ]
    if options.granularity is not None:
        parts.append(options.granularity.value.lower())
    return "-".join(parts) + ".csv"


@dataclass
class Export:
    """A checked export, its first chunk already read (so errors come before any byte)."""

    filename: str
    _first: list[ExportRow]
    _rest: AsyncIterator[list[ExportRow]]
    _header: list[str]

    async def chunks(self) -> AsyncIterator[bytes]:
        """The CSV: the header and the first rows, then one piece per chunk of rows."""
        yield _encode([self._header, *map(_record, self._first)])
        async for rows in self._rest:
            yield _encode([_record(row) for row in rows])


async def prepare(context: Context, options: ExportOptions) -> Export:
    """Resolve the range and key (the GraphQL rules, the GraphQL errors) and read the first
    chunk of rows."""
    report = await usage_resolvers.scope(
        context,
        context.organization,
        options.time_range,
        key_id=options.key_id,
        outcomes=options.outcomes,
    )
    rows = export_rows.rows(context, report, options.group, options.granularity)
    first: list[ExportRow] = await anext(rows, [])
    return Export(filename(context, report, options), first, rows, header(options))
