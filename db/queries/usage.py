"""Usage aggregates: calls and credits by dimension, key and time bucket.

Every figure is read from ``usage_rollups`` (see ``db.grains`` for how a range is cut into
pieces the rollups answer exactly) plus, in the same statement, the rollup tail
``usage_pending`` of those pieces (events not folded yet, docs/rollups.md), plus raw events
for range edges that are not on the 15-minute grid. Every statement has a bounded number
of branches: at most ``MAX_RANGES`` rollup ranges (and as many tail ranges) and
``MAX_RAW_RANGES`` raw ranges; on PostgreSQL many rollup ranges are bound as arrays
instead (at most ``MAX_ARRAY_RANGES``), one branch per grain. A series with more edges
off the grid (a zone's historical offset such as +00:19:32) is read in one raw range scan
instead, when its range holds at most ``MAX_RAW_SCAN_EVENTS`` events (docs/hardening.md,
class 4).
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    BindParameter,
    Integer,
    Select,
    SmallInteger,
    String,
    Text,
    all_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, Subquery

from db import grains
from db.driver import DriverConnection, DriverStatement, pooled_connection
from db.rollup_keys import ALL_KEYS, ALL_OUTCOMES, IMPLIED_OUTCOME, NO_KEY
from db.sqlite_driver import SQLiteStatement
from db.tables import usage_events, usage_pending, usage_rollups
from domain.dimensions import Dimension
from domain.errors import InvalidInput
from domain.outcomes import OUTCOME_CODES, OUTCOME_OF_CODE, CallOutcome
from domain.records import Tally

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Beyond this many rollup ranges in one statement, read the finest grain over the whole
# span instead: a long series in an odd zone would otherwise build a huge OR.
MAX_RANGES = 200
# PostgreSQL binds many ranges as arrays (``_ranges``), so its statement does not grow
# with them: it reads a longer series of hour runs before falling back to quarter hours
# (each range one index search; a year of +05:30 days is 730 ranges).
MAX_ARRAY_RANGES = 2_000
# PostgreSQL: up to this many rollup ranges, one branch each (the 30-day tables have one
# to three; binding arrays cost 1 % more instructions there); beyond, the ranges of each
# grain are bound as arrays (``_ranges``).
MAX_BRANCH_RANGES = 8
# Raw ranges are only needed around edges off the 15-minute grid: a ragged start and end,
# a few tzdata transitions (Antarctica/Casey). More than this many means a zone whose
# offset was off the grid (every edge of a series is then off it), and one branch per edge
# made statements of thousands of branches (SQLite refuses more than 500; PostgreSQL ran out
# of stack). Those series read their whole span in one raw range scan instead ...
MAX_RAW_RANGES = 64
# ... of at most this many events (counted first, from the rollups), else they are refused.
# Events are accepted from 2000 on and every offset since 1980 is on the grid, so real
# series of this kind find no events and cost two index probes.
MAX_RAW_SCAN_EVENTS = 10_000


class RawScanTooLarge(InvalidInput):
    """A series that must be read event by event (edges off the grid), over too many events."""

    def __init__(self, ragged_edges: int, events: int) -> None:
        super().__init__(
            f"This series has {ragged_edges} period edges off the 15-minute grid that usage is "
            f"summed on (a historical UTC offset of the time zone), so it must be read event "
            f"by event, and its range holds {events} events, more than {MAX_RAW_SCAN_EVENTS}: "
            "choose a shorter range, a coarser granularity or another time zone.",
            field="granularity",
        )
        self.ragged_edges = ragged_edges
        self.events = events
        self.limit = MAX_RAW_SCAN_EVENTS


def to_micros(instant: datetime) -> int:
    delta = instant - EPOCH
    return (delta.days * 86400 + delta.seconds) * grains.MICROS + delta.microseconds


def from_micros(micros: int) -> datetime:
    seconds, rest = divmod(micros, grains.MICROS)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest)


def _raw_value(dimension: Dimension, by_outcome: bool) -> ColumnElement[object]:
    if by_outcome:
        return usage_events.c.outcome
    if dimension is Dimension.ENDPOINT:
        return usage_events.c.endpoint
    if dimension is Dimension.SOURCE:
        return usage_events.c.source
    if dimension is Dimension.USER:
        return usage_events.c.user_id
    return literal("", String)


def _normalise(dimension: Dimension, value: object) -> str:
    if dimension is Dimension.USER:
        return "" if value is None else str(value)
    if dimension is Dimension.TOTAL:
        return ""
    return str(value)


def _ragged_cells(bounds: Sequence[int]) -> int:
    """How many quarter hours hold an edge off the 15-minute grid (epoch microseconds)."""
    grain = grains.QUARTER_HOUR
    return len({bound // grain for bound in bounds if bound % grain})


def _pieces_for(edges: Sequence[datetime], max_ranges: int = MAX_RANGES) -> list[grains.Piece]:
    pieces: list[grains.Piece] = []
    for low, high in itertools.pairwise(edges):
        pieces.extend(grains.split(to_micros(low), to_micros(high)))
    merged = grains.merge(pieces)
    if sum(1 for piece in merged if piece.grain) <= max_ranges:
        return merged
    # Too many ranges (a long series of local days in a zone off the UTC day): read the
    # rollup pieces at the quarter-hour grain, which joins them into a few contiguous
    # spans. Raw pieces keep their place, so a span never covers one (no double count),
    # and every quarter-hour row still falls inside one bucket, because each piece did.
    coarse = [
        grains.Piece(grains.QUARTER_HOUR if piece.grain else 0, piece.low, piece.high)
        for piece in merged
    ]
    return grains.merge(coarse)


async def tally(
    conn: AsyncConnection,
    *,
    organization_id: int,
    dimension: Dimension,
    edges: Sequence[datetime],
    api_key_ids: Iterable[int] | None = None,
    by_key: bool = False,
    outcomes: Collection[CallOutcome] | None = None,
    by_outcome: bool = False,
) -> dict[tuple[int, int, str], Tally]:
    """Sum calls and credits over ``[edges[0], edges[-1])``.

    Groups by (API key or 0 when ``by_key`` is false, bucket index, dimension value). The
    bucket index says which ``[edges[i], edges[i+1])`` a sum belongs to; pass two edges for
    one total. ``api_key_ids`` filters to those keys (``NO_KEY`` selects keyless calls);
    ``outcomes`` restricts every figure to calls of those outcomes. ``by_outcome`` (only
    with ``Dimension.TOTAL``) groups by outcome instead of a dimension value: the value is
    then the outcome's name (``CallOutcome.value``, e.g. ``"NO_RESULT"``).
    """
    if by_outcome and dimension is not Dimension.TOTAL:
        raise ValueError("by_outcome groups the TOTAL dimension only")
    codes = None if outcomes is None else sorted({OUTCOME_CODES[o] for o in outcomes})
    keys = None if api_key_ids is None else sorted(set(api_key_ids))
    bounds = [to_micros(edge) for edge in edges]
    ragged = _ragged_cells(bounds)
    # Within the limit, the pieces have at most ``ragged`` raw ranges (each one quarter
    # hour holding an edge, or several touching ones) and so at most ``ragged + 1``
    # rollup spans after ``_pieces_for`` joins them; checked again below all the same.
    scan = ragged > MAX_RAW_RANGES
    max_ranges = MAX_ARRAY_RANGES if conn.dialect.name == "postgresql" else MAX_RANGES
    if not scan:
        pieces = _pieces_for(edges, max_ranges)
        raw_count = sum(1 for piece in pieces if not piece.grain)
        scan = raw_count > MAX_RAW_RANGES or len(pieces) - raw_count > max_ranges
    if scan:
        # Two edges make at most two raw pieces, so this count takes the rollup path.
        events = await tally(
            conn,
            organization_id=organization_id,
            dimension=Dimension.TOTAL,
            edges=[edges[0], edges[-1]],
            api_key_ids=keys,
            outcomes=outcomes,
        )
        found = sum(figures.calls for figures in events.values())
        if found > MAX_RAW_SCAN_EVENTS:
            raise RawScanTooLarge(ragged, found)
        pieces = [grains.Piece(0, bounds[0], bounds[-1])]
    result: dict[tuple[int, int, str], list[int]] = {}

    def add(key: int, at_micros: int, value: str, calls: int, credits: int) -> None:
        if not calls:
            return  # an aggregate over no rows
        index = bisect.bisect_right(bounds, at_micros) - 1
        slot = result.setdefault((key if by_key else 0, index, value), [0, 0])
        slot[0] += calls
        slot[1] += credits

    query = _Query(organization_id, dimension, keys, codes, by_key, len(bounds) > 2, by_outcome)

    def label(value: object) -> str:
        if by_outcome:
            return OUTCOME_OF_CODE[int(str(value))].value
        return _normalise(dimension, value)

    rollup_pieces = [piece for piece in pieces if piece.grain]
    if rollup_pieces:
        for key, bucket, value, calls, credits in await _rollup_rows(conn, query, rollup_pieces):
            at, calls, credits = bucket * grains.MICROS, int(calls), int(credits)
            if by_outcome:
                for code, sign in _outcome_shares(int(value)):
                    add(key, at, label(code), sign * calls, sign * credits)
            else:
                add(key, at, label(value), calls, credits)
    raw_pieces = [piece for piece in pieces if not piece.grain]
    if raw_pieces:
        for row in await conn.execute(_raw_statement(query, raw_pieces)):
            at = to_micros(row.at) if row.at is not None else bounds[0]
            add(row.key, at, label(row.value), int(row.calls), int(row.credits))
    wanted = None if codes is None or not by_outcome else {label(code) for code in codes}
    return {
        key: Tally(calls, credits)
        for key, (calls, credits) in result.items()
        # A difference of rows can be nothing: no call of the implied outcome in that group.
        if calls and (wanted is None or key[2] in wanted)
    }


def _outcome_shares(value: int) -> tuple[tuple[int, int], ...]:
    """(outcome code, sign) of what a ``by_outcome`` row adds to: the rollups' rows come
    negated (``_Outcomes.SPLIT``): the all-outcomes row is the implied outcome's until the
    other outcomes' rows are taken from it; the tail's and raw rows are their own outcome's."""
    if value == -ALL_OUTCOMES:
        return ((IMPLIED_OUTCOME, 1),)
    if value < 0:
        return ((-value, 1), (IMPLIED_OUTCOME, -1))
    return ((value, 1),)


@dataclass(frozen=True, slots=True)
class _Query:
    """What a tally asks, whichever pieces answer it."""

    organization_id: int
    dimension: Dimension
    keys: list[int] | None  # None: every key
    outcomes: list[int] | None  # outcome codes; None: every outcome
    by_key: bool
    by_bucket: bool
    by_outcome: bool


class _Outcomes(Enum):
    """Which rollup rows a statement reads, by outcome (db/rollup_keys.py: each cell has
    an all-outcomes row and a row per outcome present but the implied one)."""

    EVERY = "every"  # no filter: the all-outcomes rows
    ONLY = "only"  # a filter without the implied outcome: the rows of those outcomes
    # A filter with it: the all-outcomes rows less the rows of the outcomes not asked for.
    ALL_BUT = "all but"
    # By outcome: every row, its code negated so that the caller can tell the rollups' rows
    # (whose implied outcome is a difference) from the tail's (``_outcome_shares``).
    SPLIT = "split"

    @classmethod
    def of(cls, query: _Query) -> _Outcomes:
        if query.by_outcome:
            return cls.SPLIT
        if query.outcomes is None:
            return cls.EVERY
        return cls.ALL_BUT if IMPLIED_OUTCOME in query.outcomes else cls.ONLY


async def _rollup_rows(
    conn: AsyncConnection, query: _Query, pieces: list[grains.Piece]
) -> Sequence[tuple[Any, ...]]:
    """(key, bucket, value, calls, credits) of the rollup statement of ``pieces``.

    On PostgreSQL on the driver's connection, the statement compiled once per shape: nearly
    every report runs this statement, and SQLAlchemy's execution of it (cache key, bind and
    result processing, greenlet hops) cost as much CPU again as the driver's (about 0.3 ms
    of 0.6 for the 30-day endpoint table; bench/PROPOSALS.md, R28), the way the token
    statement's did (R26). On SQLite on aiosqlite's connection, in one thread crossing
    instead of four (``db.sqlite_driver``, R40). Its columns need no processing: integers
    and text.
    """
    postgres = conn.dialect.name == "postgresql"
    shape, parameters = _rollup_call(query, pieces, arrays=postgres)
    if not postgres:
        return await _sqlite_statement(shape).rows(conn, parameters)
    compiled = _driver_sql(shape)
    driver = DriverConnection(await pooled_connection(conn))
    records = await driver.fetch(compiled.sql, *compiled.values(parameters))
    return [tuple(record) for record in records]


@functools.lru_cache(maxsize=256)
def _driver_sql(shape: _Shape) -> DriverStatement:
    """PostgreSQL: the statement of a shape as the driver takes it."""
    return DriverStatement.of(_rollup_shape(shape))


@functools.lru_cache(maxsize=256)
def _sqlite_statement(shape: _Shape) -> SQLiteStatement:
    """SQLite: the statement of a shape on the driver, one thread crossing (R40)."""
    return SQLiteStatement(_rollup_shape(shape))


def _rollup_call(
    query: _Query, pieces: list[grains.Piece], *, arrays: bool = False
) -> tuple[_Shape, dict[str, Any]]:
    """The shape of the statement that reads the rollup rows and the tail of ``pieces``
    (``_rollup_shape``), and the values of its parameters.

    The statement is built once per shape (dimension, the pieces' grains, the number of tail
    spans, whether keys and outcomes are filtered, the grouping) with every value of a
    request a bound parameter: building the UNION and computing SQLAlchemy's cache key of a
    new statement object on every call was most of the plain route's per-request work
    (bench/PROPOSALS.md, P-A: 9.3 M instructions per request to 4.6 M). Shapes are few; the
    cache is bounded.
    """
    spans = grains.merge([grains.Piece(1, piece.low, piece.high) for piece in pieces])
    seconds = [piece.grain // grains.MICROS for piece in pieces]
    ranges = arrays and len(pieces) > MAX_BRANCH_RANGES
    shape = _Shape(
        query.dimension,
        tuple(sorted(set(seconds))) if ranges else tuple(seconds),
        len(spans),
        query.keys is not None,
        query.keys is not None and len(query.keys) == 1,
        _Outcomes.of(query),
        query.outcomes is not None,
        query.by_key,
        query.by_bucket,
        arrays,
        ranges,
    )
    parameters: dict[str, Any] = {"organization": query.organization_id}
    if ranges:
        for grain in shape.grains:
            of_grain = [
                piece for piece, second in zip(pieces, seconds, strict=True) if second == grain
            ]
            parameters[f"lows_{grain}"] = [piece.low // grains.MICROS for piece in of_grain]
            parameters[f"highs_{grain}"] = [piece.high // grains.MICROS for piece in of_grain]
    else:
        for index, piece in enumerate(pieces):
            parameters[f"low_{index}"] = piece.low // grains.MICROS
            parameters[f"high_{index}"] = piece.high // grains.MICROS
    for index, span in enumerate(spans):
        parameters[f"tail_low_{index}"] = span.low // grains.MICROS
        parameters[f"tail_high_{index}"] = span.high // grains.MICROS
    if query.keys is not None:
        if shape.one_key:
            parameters["key"] = query.keys[0]
        else:
            parameters["keys"] = query.keys
    if query.outcomes is not None:
        parameters["outcomes"] = query.outcomes
    return shape, parameters


@dataclass(frozen=True, slots=True)
class _Shape:
    """What makes two rollup statements differ in more than their parameter values."""

    dimension: Dimension
    # In seconds: the grain of each piece; with ``ranges``, each grain once.
    grains: tuple[int, ...]
    tail_spans: int
    keys: bool
    # One key, bound as a value (``= :key``), not as a list of one. PostgreSQL estimates
    # ``= ANY(:keys)`` for an array of any length, so the generic plan of a key's report
    # looked dearer than a custom one and it planned the statement again at every run:
    # 0.18 ms of server time a report where the generic plan takes 0.11
    # (bench/PROPOSALS.md, R44).
    one_key: bool
    outcomes: _Outcomes
    outcome_filter: bool  # an ``outcomes`` parameter (tail rows are filtered by it)
    by_key: bool
    by_bucket: bool
    # Keys and outcomes bound as one array each (``= ANY``, PostgreSQL) rather than as a
    # list expanded into the SQL at each execution: the driver's SQL is then fixed per shape.
    arrays: bool
    # PostgreSQL, more than ``MAX_BRANCH_RANGES`` pieces: the ranges of each grain bound as
    # two arrays (``_ranges``), so the SQL does not grow with their number.
    ranges: bool

    @property
    def by_outcome(self) -> bool:
        return self.outcomes is _Outcomes.SPLIT


@functools.lru_cache(maxsize=256)
def _rollup_shape(shape: _Shape) -> Select[Any]:
    """One branch per piece, joined by UNION ALL with the tail's, then grouped.

    A single WHERE with an OR of ranges makes SQLite search only the (organization,
    dimension) prefix of the primary key, i.e. every rollup row ever written for that
    dimension: a read that grows with stored events. Each branch here is a range search
    on (organization, dimension, grain, key, bucket), so a read touches only the rows of its
    range (EXPLAIN: SEARCH ... USING INDEX on both databases).

    What the shape fixes (dimension, grains, ``ALL_KEYS``) is written as SQL literals, the
    rest bound. PostgreSQL plans a prepared statement once for any parameter values (asyncpg
    prepares every statement; after five runs PostgreSQL keeps the generic plan), and
    estimates bound values blind: with the grain and ``ALL_KEYS`` as parameters it expected
    one row per branch and sorted the rows to group them; with them as literals its
    statistics give the real order of magnitude and it hashes them instead, 2.1 -> 1.3 ms of
    server time for the 30-day endpoint table at 1M events (bench/PROPOSALS.md, R18).
    """
    r = usage_rollups.c
    organization: BindParameter[Any] = bindparam("organization")
    if shape.arrays:
        keys: BindParameter[Any] = bindparam("keys", type_=ARRAY(BigInteger))
        outcomes: BindParameter[Any] = bindparam("outcomes", type_=ARRAY(SmallInteger))
    else:
        keys = bindparam("keys", expanding=True)
        outcomes = bindparam("outcomes", expanding=True)
    value = (-r.outcome).label("value") if shape.by_outcome else r.value
    every = r.outcome == _constant(ALL_OUTCOMES, SmallInteger)
    calls: ColumnElement[Any] = r.calls
    credits: ColumnElement[Any] = r.credits
    if shape.outcomes is _Outcomes.ALL_BUT:
        calls = case((every, r.calls), else_=-r.calls)
        credits = case((every, r.credits), else_=-r.credits)
    dimension = _constant(int(shape.dimension), SmallInteger)
    branches = []
    for index, grain in enumerate(shape.grains):
        if shape.ranges:
            ranges = _ranges(grain)
            low, high = ranges.c.low, ranges.c.high
        else:
            low, high = bindparam(f"low_{index}"), bindparam(f"high_{index}")
        branch = select(
            r.api_key_id, r.bucket, value, calls.label("calls"), credits.label("credits")
        ).where(
            r.organization_id == organization,
            r.dimension == dimension,
            r.grain == _constant(grain, Integer),
            r.bucket >= low,
            r.bucket < high,
        )
        if shape.keys:
            branch = branch.where(_of_keys(shape, r.api_key_id, keys))
        elif not shape.by_key:
            # one row per bucket and value
            branch = branch.where(r.api_key_id == _constant(ALL_KEYS, BigInteger))
        else:
            # the per-key rows only
            branch = branch.where(r.api_key_id != _constant(ALL_KEYS, BigInteger))
        if shape.outcomes is _Outcomes.EVERY:
            branch = branch.where(every)
        elif shape.outcomes is _Outcomes.ONLY:
            branch = branch.where(_among(shape, r.outcome, outcomes))
        elif shape.outcomes is _Outcomes.ALL_BUT:
            # The filter holds the implied outcome: the all-outcomes row (never in it) and
            # the rows of the outcomes left out, negated above.
            branch = branch.where(
                r.outcome != all_(outcomes) if shape.arrays else r.outcome.not_in(outcomes)
            )
        if shape.ranges:
            # Each range of the array is its own index range search, as a branch of its
            # own would be (LATERAL: a join could not scan the grain's rows once instead).
            found = branch.lateral(f"rows_{grain}")
            branch = select(*found.c).select_from(ranges).join(found, true())
        branches.append(branch)
    branches.extend(_pending_branches(shape, organization, keys, outcomes))
    rows = _union(branches)
    c = rows.c
    group: list[ColumnElement[Any]] = [c.value]
    if shape.by_key:
        group.append(c.api_key_id)
    if shape.by_bucket:
        group.append(c.bucket)  # pieces are disjoint, so a bucket start names one bucket
    return select(
        (c.api_key_id if shape.by_key else func.min(_constant(0, BigInteger))).label("key"),
        (c.bucket if shape.by_bucket else func.min(c.bucket)).label("bucket"),
        c.value.label("value"),
        func.sum(c.calls).label("calls"),
        func.sum(c.credits).label("credits"),
    ).group_by(*group)


def _ranges(grain: int) -> Any:
    """PostgreSQL: the ranges of a grain's pieces, from the arrays ``lows_<grain>`` and
    ``highs_<grain>``, as rows (low, high).

    One branch per piece made the 90-day daily series of a +05:30 zone (181 pieces) a
    statement that PostgreSQL planned again at every run (custom plans: ~15 ms of 18 at 1M
    events, its execution 3 ms; bench/PROPOSALS.md R30); with the ranges bound as arrays
    the statement is the same for any number of pieces of those grains.
    """
    return (
        func.unnest(
            bindparam(f"lows_{grain}", type_=ARRAY(BigInteger)),
            bindparam(f"highs_{grain}", type_=ARRAY(BigInteger)),
        )
        .table_valued("low", "high")
        .render_derived(name=f"ranges_{grain}")
    )


def _among(
    shape: _Shape, column: ColumnElement[Any], values: BindParameter[Any]
) -> ColumnElement[bool]:
    """``column`` is one of ``values``: ``= ANY(array)`` or ``IN (expanded list)``."""
    return column == any_(values) if shape.arrays else column.in_(values)


def _of_keys(
    shape: _Shape, column: ColumnElement[Any], keys: BindParameter[Any]
) -> ColumnElement[bool]:
    """``column`` is the one key filtered on (``_Shape.one_key``), or one of the keys."""
    if shape.one_key:
        return column == bindparam("key", type_=BigInteger)
    return _among(shape, column, keys)


def _constant(value: int, type_: type[Integer] | type[BigInteger]) -> ColumnElement[Any]:
    """An integer of the statement's shape, written into its SQL (see ``_rollup_shape``)."""
    return literal_column(str(int(value)), type_)


def _pending_value(shape: _Shape) -> ColumnElement[Any]:
    p = usage_pending.c
    if shape.by_outcome:
        return p.outcome
    if shape.dimension is Dimension.ENDPOINT:
        return cast(p.endpoint, Text)
    if shape.dimension is Dimension.SOURCE:
        return cast(p.source, Text)
    if shape.dimension is Dimension.USER:
        return func.coalesce(cast(p.user_id, Text), "")
    return literal("", Text)


def _pending_branches(
    shape: _Shape,
    organization: BindParameter[Any],
    keys: BindParameter[Any],
    outcomes: BindParameter[Any],
) -> list[Select[Any]]:
    """The rollup tail of the rollup pieces' ranges (events not folded yet), shaped like
    rollup rows of the quarter hour they fall in.

    In the same statement as the rollup rows, hence one snapshot: a fold moves events from
    the tail to the rollups atomically, so each is counted once whenever the fold commits.
    (Raw pieces read ``usage_events``, which a fold does not change.) Touching pieces are
    read as one range (a span) whatever their grain: the tail has none.
    """
    p = usage_pending.c
    branches = []
    for index in range(shape.tail_spans):
        branch = select(
            p.api_key_id.label("api_key_id"),
            (p.epoch - p.epoch % _constant(grains.QUARTER_HOUR // grains.MICROS, BigInteger)).label(
                "bucket"
            ),
            _pending_value(shape).label("value"),
            _constant(1, BigInteger).label("calls"),
            p.credits.label("credits"),
        ).where(
            p.organization_id == organization,
            p.epoch >= bindparam(f"tail_low_{index}"),
            p.epoch < bindparam(f"tail_high_{index}"),
        )
        if shape.keys:
            branch = branch.where(_of_keys(shape, p.api_key_id, keys))
        if shape.outcome_filter:
            branch = branch.where(_among(shape, p.outcome, outcomes))
        branches.append(branch)
    return branches


def _raw_statement(query: _Query, pieces: list[grains.Piece]) -> Select[Any]:
    """Raw events of the ragged pieces, one index range search per piece (see above)."""
    organization_id, dimension, keys, by_key, by_bucket = (
        query.organization_id,
        query.dimension,
        query.keys,
        query.by_key,
        query.by_bucket,
    )
    grouped = dimension is not Dimension.TOTAL or query.by_outcome
    e = usage_events.c
    key_column = func.coalesce(e.api_key_id, NO_KEY)
    branches = []
    for piece in pieces:
        branch = select(
            key_column.label("key"),
            e.occurred_at.label("at"),
            _raw_value(dimension, query.by_outcome).label("value"),
            e.credits.label("credits"),
        ).where(
            e.organization_id == organization_id,
            e.occurred_at >= from_micros(piece.low),
            e.occurred_at < from_micros(piece.high),
        )
        if keys is not None:
            branch = branch.where(key_column.in_(keys))
        if query.outcomes is not None:
            branch = branch.where(e.outcome.in_(query.outcomes))
        branches.append(branch)
    rows = _union(branches)
    c = rows.c
    group: list[ColumnElement[Any]] = []
    if grouped:
        group.append(c.value)
    if by_key:
        group.append(c.key)
    if by_bucket:
        group.append(c.at)
    statement = select(
        (c.key if by_key else func.min(0)).label("key"),
        (c.at if by_bucket else func.min(c.at)).label("at"),
        (c.value if grouped else func.min(c.value)).label("value"),
        func.count().label("calls"),
        func.coalesce(func.sum(c.credits), 0).label("credits"),
    )
    if group:
        statement = statement.group_by(*group)
    return statement


def _union(branches: list[Select[Any]]) -> Subquery:
    if len(branches) == 1:
        return branches[0].subquery("pieces")
    return union_all(*branches).subquery("pieces")
