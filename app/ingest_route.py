"""``POST /v1/events``: a JSON array or NDJSON batch of usage events, written atomically."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.auth import Authenticator, AuthRefused
from app.availability import RETRY_AFTER_SECONDS, DatabaseFile, is_outage, unavailable
from app.body import CLOSE, BodyLimits, BodyRefused, BodyTooLarge, check_declared_length, read_body
from app.live_usage import LiveUsageHub
from app.metrics import Metrics
from app.rate_limit import Limiter
from app.settings import Settings
from db.folding import wait_for_tail
from db.ingestion import IngestRejected, IngestResult, ingest, validate_events
from db.ingestion.decoding import MalformedJson, decode
from db.session import RequestDatabase
from domain.clock import Clock
from domain.errors import CreditLensError, RequestTimeout, Unavailable
from domain.scopes import TokenScope

JSON_TYPES = {"application/json"}
NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl"}


class BadBody(Exception):
    """A refused request, in this route's JSON error shape (``error``, ``message``)."""

    def __init__(
        self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body
        self.headers = headers


def _error(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: object
) -> BadBody:
    return BadBody(status, {"error": code, "message": message, **extra}, headers)


def _malformed(error: MalformedJson) -> BadBody:
    return _error(
        400,
        "malformed_json",
        f"Malformed JSON at line {error.line}, column {error.column}: {error.reason}.",
        line=error.line,
        column=error.column,
        position=error.position,
    )


def _too_many(max_events: int) -> BadBody:
    return _error(
        413,
        "too_many_events",
        f"A batch holds at most {max_events} events; split it.",
        limit=max_events,
    )


def parse_json_array(body: bytes, max_events: int) -> list[object]:
    """A JSON array of events. The body cap already bounds the parse; the count is checked
    before any event is validated."""
    try:
        parsed = decode(body)
    except MalformedJson as error:
        raise _malformed(error) from error
    if not isinstance(parsed, list):
        raise _error(400, "not_an_array", "The body must be a JSON array of events.")
    if len(parsed) > max_events:
        raise _too_many(max_events)
    return parsed


def parse_ndjson(body: bytes, max_events: int, now: datetime) -> tuple[list[object], list[int]]:
    """One JSON value per line; blank lines are skipped. Lines are counted before parsing.

    Returns the events and the line each came from, so errors can name lines. Malformed
    lines are refused together with the other lines' validation errors: one bad line does
    not hide the rest of what is wrong with the batch.
    """
    lines = body.split(b"\n")
    if len(lines) > max_events and sum(1 for line in lines if line.strip()) > max_events:
        raise _too_many(max_events)
    events: list[object] = []
    numbers: list[int] = []
    malformed: list[MalformedJson] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(decode(line, line=number))
            numbers.append(number)
        except MalformedJson as error:
            malformed.append(error)
    if malformed:
        refusal = _malformed(malformed[0])
        _, invalid = validate_events(events, now)
        problems: list[tuple[int, dict[str, object]]] = [
            (e.line, {"line": e.line, "column": e.column, "field": "", "reason": e.reason})
            for e in malformed
        ] + [
            (numbers[error.index], {**error.as_dict(), "line": numbers[error.index]})
            for error in invalid
        ]
        refusal.body["errors"] = [problem for _, problem in sorted(problems, key=lambda p: p[0])]
        if len(problems) > 1:
            refusal.body["message"] = f"{refusal.body['message']} {len(problems)} problems in all."
        raise refusal
    return events, numbers


def _refused(
    error: CreditLensError, *, headers: dict[str, str] | None = None, **extra: object
) -> BadBody:
    """A refusal in this route's shape, its code named after the domain error's."""
    return _error(error.http_status, error.code.lower(), error.message, headers=headers, **extra)


def _body_refusal(error: BodyRefused) -> BadBody:
    limits = error.limits
    if isinstance(error, BodyTooLarge):
        return _error(
            413,
            "body_too_large",
            f"The body is larger than {limits.max_bytes} bytes.",
            headers=CLOSE,
            limit=limits.max_bytes,
        )
    return _refused(RequestTimeout(str(error)), headers=CLOSE, limit=limits.timeout_seconds)


class IngestRoute:
    """Reads the batch (before any connection), checks the token, then writes atomically."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        clock: Clock,
        *,
        metrics: Metrics,
        limiter: Limiter,
        authenticator: Authenticator,
        database_file: DatabaseFile,
        live: LiveUsageHub | None = None,
    ) -> None:
        self.live = live
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.metrics = metrics
        self.limiter = limiter
        self.authenticator = authenticator
        self.database_file = database_file
        self.body_limits = BodyLimits(
            settings.max_ingest_body_bytes, "max_ingest_body_bytes", settings.body_timeout_seconds
        )

    async def handle(self, request: Request) -> Response:
        """Answer one ``POST /v1/events``: ``{"accepted", "duplicates"}`` only once stored."""
        try:
            return await self._handle(request)
        except BadBody as error:
            return JSONResponse(error.body, status_code=error.status, headers=error.headers)

    async def _handle(self, request: Request) -> Response:
        token, body = await self._receive(request)
        started = time.perf_counter()
        try:
            self.database_file.check()
            result = await self._store(request, token, body)
            # Committed, but to the file this server opened: if that file is gone, the
            # events are gone with it, and must not be acknowledged.
            self.database_file.check()
        except Unavailable as error:
            raise _unavailable(error) from error
        except BadBody:
            raise
        except Exception as error:
            if not is_outage(error):
                raise
            raise _unavailable(unavailable()) from error
        self.metrics.events_ingested(
            result.accepted, result.duplicates, time.perf_counter() - started
        )
        if self.live is not None:  # after the commit: subscribers read what is stored
            await self.live.published(result.organization_ids)
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates})

    async def _receive(self, request: Request) -> tuple[str, bytes]:
        """The token and the whole body, before any connection is taken: a slow producer
        holds only its socket."""
        try:
            check_declared_length(request, self.body_limits)
            token = self.authenticator.token(request)
            return token, await read_body(request, self.body_limits)
        except BodyRefused as error:
            raise _body_refusal(error) from error
        except AuthRefused as refused:
            raise self._auth_refusal(refused) from refused

    async def _store(self, request: Request, token: str, body: bytes) -> IngestResult:
        # The token statement on the cheapest connection for one statement, as /graphql's:
        # the worker's statement line (PostgreSQL) or the loop's reader (SQLite), not a
        # pooled connection in a read transaction (on SQLite six crossings to aiosqlite's
        # thread of a batch's ~47; bench/PROPOSALS.md R40).
        db = RequestDatabase(self.engine)
        try:
            principal = await self.authenticator.principal(request, token, db.statement_connection)
        except AuthRefused as refused:
            raise self._auth_refusal(refused) from refused
        finally:
            await db.close()
        if principal.scope != TokenScope.INGEST:
            raise _error(
                403,
                "forbidden",
                "This token cannot ingest: create one with `creditlens token create --ingest`.",
            )
        decision = await self.limiter.take(("ingest", principal.token_id))
        if not decision.allowed:
            self.metrics.rate_limited("ingest")
            raise _error(
                429,
                "rate_limited",
                f"Too many ingestion requests for this token: at most "
                f"{self.limiter.per_minute} per minute (setting "
                f"ingest_rate_limit_per_minute). Retry in {decision.retry_after} s.",
                headers={"Retry-After": str(decision.retry_after)},
                retry_after=decision.retry_after,
            )
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in JSON_TYPES | NDJSON_TYPES:
            raise _error(
                415,
                "unsupported_media_type",
                "Send application/json (an array) or application/x-ndjson.",
            )
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise _error(
                415,
                "unsupported_media_type",
                f"Content-Encoding {encoding!r} is not supported; send the body as is.",
            )
        max_events = self.settings.max_ingest_events
        lines: list[int] | None = None  # NDJSON: the line of each event, for its errors
        if media_type in JSON_TYPES:
            raws = parse_json_array(body, max_events)
        else:
            raws, lines = parse_ndjson(body, max_events, self.clock())
        # Slowed to the folder's pace when the rollup tail is too long (db/folding.py).
        await wait_for_tail(self.engine)
        try:
            return await ingest(self.engine, raws, now=self.clock())
        except IngestRejected as rejected:
            raise _rejected(rejected, lines) from rejected

    def _auth_refusal(self, refused: AuthRefused) -> BadBody:
        if refused.retry_after is None:
            return _refused(refused.error, headers=refused.headers)
        self.metrics.rate_limited("authentication")
        return _refused(refused.error, headers=refused.headers, retry_after=refused.retry_after)


def _rejected(rejected: IngestRejected, lines: list[int] | None) -> BadBody:
    """The 422 listing every bad event (with its NDJSON line); nothing was written."""
    return _error(
        422,
        "invalid_events",
        f"{len(rejected.errors)} problem(s) found; nothing was written.",
        errors=[
            {**error.as_dict(), **({"line": lines[error.index]} if lines else {})}
            for error in rejected.errors
        ],
    )


def _unavailable(error: Unavailable) -> BadBody:
    return _refused(
        error,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        retry_after=RETRY_AFTER_SECONDS,
    )
