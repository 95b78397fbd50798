"""The floor: a bare ASGI app that sends the database what creditlens sends and nothing else.

    uvicorn --app-dir bench floor_app:app --loop uvloop --http httptools

No framework, no SQLAlchemy, no GraphQL: the ASGI callable reads the bearer token, runs
the token statement (token, user and organization in one join, as ``db.queries.tokens``)
and the report statements of ``db.queries.usage`` (the same UNION ALL of one index range
per rollup piece, the same all-keys rows, the same grouping), written out as SQL text once
per statement shape and run through the same driver (asyncpg's prepared statements, or
aiosqlite), then answers the JSON the GraphQL query answers, bytes for bytes in the same
shape (``orjson``). The range and its pieces come from the same pure functions
(``domain.time_range.resolve_range``, ``db.grains``), and the rows are ranked as
``db.queries.reports.ranked`` ranks them. Permissions are checked (an ADMIN of a paid
plan); revoked and expired tokens are refused.

It is what the read path would cost if creditlens's own layers cost nothing: the
benchmark's third column beside the GraphQL app and the plain Starlette route.

Routes (GET, ``Authorization: Bearer``):

- ``/floor/endpoint-usage?preset=LAST_30_DAYS[&key=ID]``: scenarios a-all and a-key, as
  ``{"data":{"organization":{"endpointUsage":[...]}}}``
- ``/floor/keys-endpoint-usage?preset=LAST_30_DAYS&first=50``: scenario c (the page of
  keys and one grouped breakdown; the page's total count is not asked, so not read)
- ``/floor/report?preset=LAST_90_DAYS``: scenario b
- ``/healthz``
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import hmac
import itertools
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.startup_heap import freeze_startup_heap
from db import grains
from db.queries.usage import MAX_RANGES, to_micros
from db.rollup_keys import ALL_KEYS, ALL_OUTCOMES
from domain.dimensions import Dimension
from domain.periods import Granularity, period_edges
from domain.plans import Plan
from domain.presets import Preset
from domain.records import OrganizationRecord
from domain.time_range import resolve_range

PERCENT_DIGITS = 4
ORG_COLUMNS = [
    "id",
    "slug",
    "name",
    "plan",
    "timezone",
    "credit_allowance",
    "billing_cycle_anchor",
    "created_at",
    "last_event_at",
]


class Database:
    """A fixed set of connections handed out in turn (no reset query on release)."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self.sqlite = url.startswith("sqlite")
        self.free: asyncio.Queue[Any] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            if self.sqlite:
                import aiosqlite

                conn = await aiosqlite.connect(self.url.split(":///", 1)[1])
                await conn.execute("PRAGMA busy_timeout=30000")
            else:
                import asyncpg

                conn = await asyncpg.connect(
                    self.url.replace("postgresql+asyncpg", "postgresql", 1)
                )
            self.free.put_nowait(conn)

    async def close(self) -> None:
        while not self.free.empty():
            await self.free.get_nowait().close()

    def placeholder(self, index: int) -> str:
        return "?" if self.sqlite else f"${index}"

    async def fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        if self.sqlite:
            # One thread crossing (execute, rows, close in aiosqlite's thread), as
            # creditlens's reads since R40 (db/sqlite_driver.py).
            return list(await conn.execute_fetchall(sql, params))
        return list(await conn.fetch(sql, *params))

    def instant(self, at: datetime) -> Any:
        """A bound instant as ``db.types.UTCDateTime`` stores it."""
        if self.sqlite:
            return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return at

    def read_instant(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Statements:
    """SQL text per statement shape, made once (the shapes are few: pieces per range)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.cache: dict[tuple[Any, ...], str] = {}
        p = db.placeholder
        org = ", ".join(f"o.{c}" for c in ORG_COLUMNS)
        self.token = (
            "SELECT t.id, t.token_hash, t.scope, t.user_id, t.expires_at, t.revoked_at, "
            f"u.role, {org} FROM access_tokens t "
            "LEFT OUTER JOIN users u ON u.id = t.user_id "
            "LEFT OUTER JOIN organizations o ON o.id = u.organization_id "
            f"WHERE t.token_hash = {p(1)}"
        )
        self.key = (
            f"SELECT id FROM api_keys WHERE organization_id = {p(1)} AND external_id = {p(2)}"
        )
        self.keys_page = (
            "SELECT id, external_id FROM api_keys WHERE organization_id = "
            f"{p(1)} AND revoked_at IS NULL ORDER BY id LIMIT {p(2)}"
        )

    def rollup(
        self, grains_of: tuple[int, ...], keys: int | None, by_key: bool, by_bucket: bool
    ) -> str:
        shape = ("rollup", grains_of, keys, by_key, by_bucket)
        found = self.cache.get(shape)
        if found is not None:
            return found
        p = self.db.placeholder
        n = 2  # $1 organization, $2 dimension
        branches = []
        for _ in grains_of:  # one branch per piece; the grain is a parameter
            where = (
                f"organization_id = {p(1)} AND dimension = {p(2)} AND grain = {p(n + 1)} "
                f"AND bucket >= {p(n + 2)} AND bucket < {p(n + 3)}"
            )
            n += 3
            if keys is not None:
                where += " AND api_key_id IN (" + ", ".join(p(n + 1 + i) for i in range(keys)) + ")"
                n += keys
            elif not by_key:
                where += f" AND api_key_id = {ALL_KEYS}"
            else:
                where += f" AND api_key_id != {ALL_KEYS}"
            # Every outcome: the all-outcomes rows (db/rollup_keys.py).
            where += f" AND outcome = {ALL_OUTCOMES}"
            branches.append(
                f"SELECT api_key_id, bucket, value, calls, credits FROM usage_rollups WHERE {where}"
            )
        group = ["value"] + (["api_key_id"] if by_key else []) + (["bucket"] if by_bucket else [])
        sql = (
            f"SELECT {'api_key_id' if by_key else 'min(0)'} AS key, "
            f"{'bucket' if by_bucket else 'min(bucket)'} AS bucket, value, "
            "sum(calls) AS calls, sum(credits) AS credits FROM ("
            + " UNION ALL ".join(branches)
            + ") AS pieces GROUP BY "
            + ", ".join(group)
        )
        self.cache[shape] = sql
        return sql


class Floor:
    def __init__(self, url: str, pepper: str, pool: int) -> None:
        self.db = Database(url, pool)
        self.sql = Statements(self.db)
        self.pepper = pepper.encode()

    async def tally(
        self,
        conn: Any,
        organization_id: int,
        dimension: Dimension,
        edges: Sequence[datetime],
        keys: list[int] | None,
        by_key: bool = False,
    ) -> dict[tuple[int, int, str], list[int]]:
        bounds = [to_micros(edge) for edge in edges]
        pieces: list[grains.Piece] = []
        for low, high in itertools.pairwise(edges):
            pieces.extend(grains.split(to_micros(low), to_micros(high)))
        pieces = grains.merge(pieces)
        rollups = [piece for piece in pieces if piece.grain]
        if any(not piece.grain for piece in pieces) or len(rollups) > MAX_RANGES:
            raise NotImplementedError("ragged edges: not a benchmark scenario")
        by_bucket = len(bounds) > 2
        params: list[Any] = []
        for piece in rollups:
            if self.db.sqlite:
                params += [organization_id, int(dimension)]
            params += [
                piece.grain // grains.MICROS,
                piece.low // grains.MICROS,
                piece.high // grains.MICROS,
            ]
            if keys is not None:
                params += keys
        sql = self.sql.rollup(
            tuple(piece.grain // grains.MICROS for piece in rollups),
            None if keys is None else len(keys),
            by_key,
            by_bucket,
        )
        if not self.db.sqlite:  # $1 and $2 are named once, used by every branch
            params = [organization_id, int(dimension), *params]
        result: dict[tuple[int, int, str], list[int]] = {}
        for key, bucket, value, calls, credits in await self.db.fetch(conn, sql, params):
            if not calls:
                continue
            index = bisect.bisect_right(bounds, bucket * grains.MICROS) - 1
            slot = result.setdefault((key if by_key else 0, index, value), [0, 0])
            slot[0] += int(calls)
            slot[1] += int(credits)
        return result

    async def viewer(self, conn: Any, token: str | None) -> OrganizationRecord | int:
        """The organization of an ADMIN token on a paid plan, or the HTTP status to refuse."""
        if token is None or not token.startswith("cl_") or len(token) > 100:
            return 401
        digest = hmac.new(self.pepper, token.encode(), hashlib.sha256).hexdigest()
        rows = await self.db.fetch(conn, self.sql.token, [digest])
        if not rows:
            return 401
        row = tuple(rows[0])
        _, stored, scope, user_id, expires, revoked, role = row[:7]
        if not hmac.compare_digest(stored, digest) or revoked is not None:
            return 401
        expires_at = self.db.read_instant(expires)
        if expires_at is not None and expires_at <= datetime.now(UTC):
            return 401
        if scope != "user" or user_id is None or row[7] is None:
            return 403
        fields = dict(zip(ORG_COLUMNS, row[7:], strict=True))
        fields["plan"] = Plan(fields["plan"])
        for name in ("billing_cycle_anchor", "created_at", "last_event_at"):
            fields[name] = self.db.read_instant(fields[name])
        organization = OrganizationRecord(**fields)
        if role != "ADMIN" or not organization.is_paid:
            return 403
        return organization


def _ranked(groups: dict[Any, list[int]], name: str) -> list[dict[str, Any]]:
    total_credits = sum(group[1] for group in groups.values())
    total_calls = sum(group[0] for group in groups.values())
    rows = sorted(groups.items(), key=lambda item: (-item[1][1], -item[1][0], str(item[0])))
    out = []
    for value, (calls, credits) in rows:
        if total_credits:
            share = 100.0 * credits / total_credits
        else:
            share = 100.0 * calls / total_calls if total_calls else 0.0
        out.append(
            {
                name: str(value),
                "calls": calls,
                "creditsConsumed": credits,
                "percentOfTotal": round(share, PERCENT_DIGITS),
            }
        )
    return out


def _token(scope: dict[str, Any]) -> str | None:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


Handler = Callable[[Floor, Any, OrganizationRecord, dict[str, list[str]]], Awaitable[object]]


async def endpoint_usage(
    floor: Floor, conn: Any, organization: OrganizationRecord, query: dict[str, list[str]]
) -> object:
    span = _span(organization, query)
    keys = None
    if "key" in query:
        found = await floor.db.fetch(conn, floor.sql.key, [organization.id, query["key"][0]])
        if not found:
            return 404
        keys = [found[0][0]]
    sums = await floor.tally(
        conn, organization.id, Dimension.ENDPOINT, [span.start, span.end], keys
    )
    rows = _ranked({value: group for (_, _, value), group in sums.items()}, "endpoint")
    return {"data": {"organization": {"endpointUsage": rows}}}


async def keys_endpoint_usage(
    floor: Floor, conn: Any, organization: OrganizationRecord, query: dict[str, list[str]]
) -> object:
    span = _span(organization, query)
    first = int(query.get("first", ["50"])[0])
    page = await floor.db.fetch(conn, floor.sql.keys_page, [organization.id, first + 1])
    page = page[:first]
    ids = sorted(row[0] for row in page)
    sums = await floor.tally(
        conn, organization.id, Dimension.ENDPOINT, [span.start, span.end], ids, by_key=True
    )
    per_key: dict[int, dict[Any, list[int]]] = {key: {} for key in ids}
    for (key, _, value), group in sums.items():
        per_key[key][value] = group
    nodes = [
        {"id": external, "endpointUsage": _ranked(per_key[key], "endpoint")}
        for key, external in page
    ]
    return {"data": {"organization": {"apiKeys": {"nodes": nodes}}}}


async def report(
    floor: Floor, conn: Any, organization: OrganizationRecord, query: dict[str, list[str]]
) -> object:
    span = _span(organization, query)
    whole = [span.start, span.end]
    totals = await floor.tally(conn, organization.id, Dimension.TOTAL, whole, None)
    calls, credits = totals.get((0, 0, ""), [0, 0])
    by_endpoint = await floor.tally(conn, organization.id, Dimension.ENDPOINT, whole, None)
    by_source = await floor.tally(conn, organization.id, Dimension.SOURCE, whole, None)
    edges = period_edges(span.start, span.end, Granularity.DAY, span.zone)
    series = await floor.tally(conn, organization.id, Dimension.TOTAL, edges, None)
    points = []
    for index, (low, high) in enumerate(itertools.pairwise(edges)):
        figures = series.get((0, index, ""), [0, 0])
        points.append(
            {
                "start": low.isoformat(),
                "end": high.isoformat(),
                "calls": figures[0],
                "creditsConsumed": figures[1],
            }
        )
    usage = {
        "calls": calls,
        "creditsConsumed": credits,
        "byEndpoint": _ranked({v: g for (_, _, v), g in by_endpoint.items()}, "endpoint"),
        "bySource": _ranked({v: g for (_, _, v), g in by_source.items()}, "source"),
        "series": points,
    }
    return {"data": {"organization": {"usage": usage}}}


def _span(organization: OrganizationRecord, query: dict[str, list[str]]) -> Any:
    return resolve_range(
        preset=Preset(query.get("preset", ["LAST_30_DAYS"])[0]),
        start=None,
        end=None,
        timezone=None,
        organization=organization,
        now=datetime.now(UTC),
    )


ROUTES: dict[str, Handler] = {
    "/floor/endpoint-usage": endpoint_usage,
    "/floor/keys-endpoint-usage": keys_endpoint_usage,
    "/floor/report": report,
}
JSON_HEADERS = [(b"content-type", b"application/json")]


def create_floor_app(url: str, pepper: str, pool: int = 10) -> Callable[..., Awaitable[None]]:
    floor = Floor(url, pepper, pool)

    async def answer(send: Any, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await floor.db.open()
                    freeze_startup_heap()  # as the app does
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await floor.db.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/healthz":
            await answer(send, 200, b'{"status":"ok"}')
            return
        handler = ROUTES.get(scope["path"])
        if handler is None:
            await answer(send, 404, b'{"error":"not_found"}')
            return
        query = parse_qs(scope["query_string"].decode("latin-1"))
        conn = await floor.db.free.get()
        try:
            viewer = await floor.viewer(conn, _token(scope))
            payload = (
                viewer if isinstance(viewer, int) else await handler(floor, conn, viewer, query)
            )
        finally:
            floor.db.free.put_nowait(conn)
        if isinstance(payload, int):
            await answer(send, payload, b'{"error":"refused"}')
        else:
            await answer(send, 200, orjson.dumps(payload))

    return app


app = create_floor_app(
    os.environ.get("CREDITLENS_DATABASE_URL", "sqlite+aiosqlite:///creditlens.db"),
    os.environ.get("CREDITLENS_TOKEN_PEPPER", "creditlens-development-pepper"),
    int(os.environ.get("CREDITLENS_POOL_SIZE", "10")),
)
