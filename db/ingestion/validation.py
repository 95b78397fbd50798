"""Turn producer JSON objects into checked events, collecting every problem at once."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from domain.outcomes import NO_RESULT_FLAG, CallOutcome, outcome_of

MAX_ID_LENGTH = 200
MAX_SOURCE_LENGTH = 100
MAX_ENDPOINT_LENGTH = 300
MAX_CREDITS = 10**12
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Producers' clocks drift; an event more than a day ahead of ours is a bug, not skew.
FUTURE_TOLERANCE = timedelta(days=1)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
KNOWN_FIELDS = {
    "id",
    "organization",
    "api_key",
    "user",
    "source",
    "endpoint",
    "status",
    "credits",
    "timestamp",
    "outcome",
}


@dataclass(frozen=True, slots=True)
class EventError:
    """One reason an event of a batch was refused; ``index`` is its place in the batch."""

    index: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


# Named tuples, not frozen dataclasses: built once per event on the hot path, where a
# frozen dataclass's __init__ (object.__setattr__ per field) costs several microseconds.
class Reference(NamedTuple):
    """An API key or user as the producer names it: its id and an optional display name."""

    id: str
    name: str | None


class ValidEvent(NamedTuple):
    """A usage event whose fields are all well-formed (the organization is not yet resolved)."""

    # Shadows tuple.index on purpose: the event's position in its batch reads best so.
    index: int  # type: ignore[assignment]
    id: str
    organization: str | int
    api_key: Reference | None
    user: Reference | None
    source: str
    endpoint: str
    status: int
    credits: int
    occurred_at: datetime
    # Derived from the status and the optional "outcome" field (domain.outcomes.outcome_of).
    outcome: CallOutcome


MAX_ORGANIZATION_ID = 2**63 - 1  # a BIGINT: larger numbers cannot name a stored row


def _storable(value: str) -> bool:
    """False for text a database refuses: NUL (PostgreSQL) or lone surrogates (not UTF-8)."""
    if value.isascii():
        return "\x00" not in value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > limit or not _storable(value):
        return None
    return value


def _source(value: object) -> str | None:
    """The source as stored (lower case), or None when it is not acceptable.

    The length is checked after lower-casing, which can lengthen a string: 'İ' (one
    character) becomes 'i̇' (two), so 100 of them would not fit the column.
    """
    if not isinstance(value, str):
        return None
    return _text(value.lower(), MAX_SOURCE_LENGTH)


def _required(raw: Mapping[str, object], field: str, wanted: str) -> str:
    """The reason a required field is refused: missing, or present but not ``wanted``."""
    return f"is required: {wanted}" if raw.get(field) is None else f"must be {wanted}"


def _reference(value: object) -> Reference | str | None:
    """A reference, None when absent, or the reason it is malformed."""
    if value is None:
        return None
    if isinstance(value, str):
        ident = _text(value, MAX_ID_LENGTH)
        return Reference(ident, None) if ident else f"must be 1 to {MAX_ID_LENGTH} characters"
    if isinstance(value, Mapping):
        ident = _text(value.get("id"), MAX_ID_LENGTH)
        if ident is None:
            return f"must have an id of 1 to {MAX_ID_LENGTH} characters"
        name = value.get("name")
        if name is not None and _text(name, MAX_ID_LENGTH) is None:
            return f"name must be 1 to {MAX_ID_LENGTH} characters"
        return Reference(ident, _text(name, MAX_ID_LENGTH))
    return "must be a string id or an object with id and optional name"


def parse_timestamp(value: object, now: datetime) -> datetime | str:
    """A UTC instant, or the reason ``value`` is not an acceptable RFC 3339 timestamp."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return "must be an RFC 3339 timestamp with an offset, e.g. 2026-05-01T12:00:00Z"
    text = value.upper().replace("Z", "+00:00")
    if "." in text:
        # Python keeps microseconds: cut longer fractions rather than refuse them.
        head, tail = text.split(".", 1)
        digits = re.match(r"\d+", tail)
        assert digits is not None
        text = f"{head}.{digits.group()[:6].ljust(6, '0')}{tail[digits.end() :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return "is not a valid date and time"
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:
        # Its offset moves it past year 1 or 9999 (0001-01-01T00:00:00+05:00): far outside
        # the accepted window either way, so say which side.
        return _too_early() if parsed.year < EARLIEST.year else _TOO_LATE
    if instant < EARLIEST:
        return _too_early()
    if instant > now + FUTURE_TOLERANCE:
        return _TOO_LATE
    return instant


_TOO_LATE = "is more than a day in the future"


def _too_early() -> str:
    return f"is before {EARLIEST.date().isoformat()}"


def _check(index: int, raw: object, now: datetime) -> ValidEvent | list[EventError]:
    if not isinstance(raw, Mapping):
        return [EventError(index, "", "each event must be a JSON object")]
    errors: list[EventError] = []

    def fail(field: str, reason: str) -> None:
        errors.append(EventError(index, field, reason))

    for field in sorted(set(raw) - KNOWN_FIELDS):
        fail(str(field), "is not a known field")
    ident = _text(raw.get("id"), MAX_ID_LENGTH)
    if ident is None:
        fail("id", _required(raw, "id", f"a string of 1 to {MAX_ID_LENGTH} characters"))
    organization = raw.get("organization")
    if isinstance(organization, int) and not isinstance(organization, bool):
        if not 1 <= organization <= MAX_ORGANIZATION_ID:
            fail("organization", f"must be an id from 1 to {MAX_ORGANIZATION_ID} or a slug")
    else:
        organization = _text(organization, 64)
        if organization is None:
            fail("organization", _required(raw, "organization", "the organization's id or slug"))
    api_key = _reference(raw.get("api_key"))
    if isinstance(api_key, str):
        fail("api_key", api_key)
    user = _reference(raw.get("user"))
    if isinstance(user, str):
        fail("user", user)
    source = _source(raw.get("source"))
    if source is None:
        wanted = f"a string of 1 to {MAX_SOURCE_LENGTH} characters (once lower-cased)"
        fail("source", _required(raw, "source", wanted))
    endpoint = _text(raw.get("endpoint"), MAX_ENDPOINT_LENGTH)
    if endpoint is None:
        wanted = f"a string of 1 to {MAX_ENDPOINT_LENGTH} characters"
        fail("endpoint", _required(raw, "endpoint", wanted))
    status = raw.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        fail("status", _required(raw, "status", "an HTTP status code from 100 to 599"))
    credits = raw.get("credits")
    if not isinstance(credits, int) or isinstance(credits, bool):
        # 1.0 is refused too: credits are counted, and a float hides rounding.
        fail("credits", _required(raw, "credits", "an integer"))
    elif not 0 <= credits <= MAX_CREDITS:
        fail("credits", f"must be between 0 and {MAX_CREDITS}")
    occurred_at = parse_timestamp(raw.get("timestamp"), now)
    if isinstance(occurred_at, str):
        missing = raw.get("timestamp") is None
        fail("timestamp", f"is required: {occurred_at[5:]}" if missing else occurred_at)
    flag = raw.get("outcome")
    if flag is not None and flag != NO_RESULT_FLAG:
        reason = f'must be "{NO_RESULT_FLAG}" when given (other outcomes follow from the status)'
        fail("outcome", reason)
    if errors:
        return errors
    # No errors means every field parsed; these narrow the types for the checker.
    assert ident is not None
    assert organization is not None
    assert source is not None
    assert endpoint is not None
    assert isinstance(occurred_at, datetime)
    assert isinstance(status, int)
    assert isinstance(credits, int)
    assert not isinstance(api_key, str)
    assert not isinstance(user, str)
    return ValidEvent(
        index=index,
        id=ident,
        organization=organization,
        api_key=api_key,
        user=user,
        source=source,
        endpoint=endpoint,
        status=status,
        credits=credits,
        occurred_at=occurred_at,
        outcome=outcome_of(status, no_result=flag is not None),
    )


def _plain(value: object, limit: int) -> str | None:
    """``_text`` for the usual case (no surrounding blanks, ASCII), else None."""
    if (
        type(value) is str
        and 0 < len(value) <= limit
        and value.isascii()
        and "\x00" not in value
        and not value[0].isspace()
        and not value[-1].isspace()
    ):
        return value
    return None


_UNUSUAL = Reference("", None)  # a sentinel: the slow path must decide


def _plain_reference(value: object) -> Reference | None:
    """``_reference`` for the usual shapes; ``_UNUSUAL`` when the slow path must decide."""
    if value is None:
        return None
    if type(value) is str:
        return Reference(value, None) if _plain(value, MAX_ID_LENGTH) else _UNUSUAL
    if type(value) is dict and value.keys() <= {"id", "name"}:
        ident = _plain(value.get("id"), MAX_ID_LENGTH)
        name = value.get("name")
        if ident is not None and (name is None or _plain(name, MAX_ID_LENGTH) is not None):
            return Reference(ident, None if name is None else str(name))
    return _UNUSUAL


def _fast(index: int, raw: object, latest: datetime) -> ValidEvent | None:
    """The event, when it has the usual shape and is valid; None when ``_check`` must look.

    Producers send the same shape millions of times, so this path does the fewest checks
    that give the same verdict as ``_check`` on it; anything unusual (or wrong) falls back
    to ``_check``, which explains every problem.
    """
    if type(raw) is not dict or not raw.keys() <= KNOWN_FIELDS:
        return None
    get = raw.get
    ident = _plain(get("id"), MAX_ID_LENGTH)
    given = get("organization")
    organization: str | int | None
    if type(given) is int:
        organization = given if 1 <= given <= MAX_ORGANIZATION_ID else None
    else:
        organization = _plain(given, 64)
    source = _plain(get("source"), MAX_SOURCE_LENGTH)
    endpoint = _plain(get("endpoint"), MAX_ENDPOINT_LENGTH)
    status = get("status")
    credits = get("credits")
    timestamp = get("timestamp")
    flag = get("outcome")
    if (
        ident is None
        or organization is None
        or source is None
        or endpoint is None
        or type(status) is not int
        or not 100 <= status <= 599
        or type(credits) is not int
        or not 0 <= credits <= MAX_CREDITS
        or type(timestamp) is not str
        or not _RFC3339.match(timestamp)
        or (flag is not None and flag != NO_RESULT_FLAG)
    ):
        return None
    api_key = _plain_reference(get("api_key"))
    user = _plain_reference(get("user"))
    if api_key is _UNUSUAL or user is _UNUSUAL:
        return None
    try:
        # 3.11's fromisoformat reads RFC 3339 with Z and cuts fractions past microseconds.
        occurred_at = datetime.fromisoformat(timestamp).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset past year 1 or 9999
        return None
    if not EARLIEST <= occurred_at <= latest:
        return None
    return ValidEvent(
        index,
        ident,
        organization,
        api_key,
        user,
        source.lower(),  # ASCII (``_plain``): lower-casing keeps its length
        endpoint,
        status,
        credits,
        occurred_at,
        outcome_of(status, no_result=flag is not None),
    )


def validate_events(
    raws: Iterable[object], now: datetime, *, first_index: int = 0
) -> tuple[list[ValidEvent], list[EventError]]:
    """Check every event; return the valid ones and every error found (not just the first)."""
    valid: list[ValidEvent] = []
    errors: list[EventError] = []
    latest = now + FUTURE_TOLERANCE
    for index, raw in enumerate(raws, start=first_index):
        fast = _fast(index, raw, latest)
        if fast is not None:
            valid.append(fast)
            continue
        checked = _check(index, raw, now)
        if isinstance(checked, list):
            errors.extend(checked)
        else:
            valid.append(checked)
    return valid, errors
