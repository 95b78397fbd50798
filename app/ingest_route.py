"""``POST /v1/events``: a JSON array or NDJSON batch of usage events, written atomically."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.auth import WWW_AUTHENTICATE, principal_of
from app.rate_limit import rate_limited
from app.settings import Settings
from db.ingestion import IngestRejected, ingest, validate_events
from db.ingestion.decoding import MalformedJson, decode
from domain.clock import Clock
from domain.scopes import TokenScope

JSON_TYPES = {"application/json"}
NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl"}


class BadBody(Exception):
    def __init__(self, status: int, body: dict[str, object]) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def _error(status: int, code: str, message: str, **extra: object) -> BadBody:
    return BadBody(status, {"error": code, "message": message, **extra})


async def read_capped(request: Request, cap: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``cap`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise _error(413, "body_too_large", f"The body is larger than {cap} bytes.", limit=cap)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _error(413, "body_too_large", f"The body is larger than {cap} bytes.", limit=cap)
        chunks.append(chunk)
    return b"".join(chunks)


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


class IngestRoute:
    def __init__(self, settings: Settings, engine: AsyncEngine, clock: Clock) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock

    async def handle(self, request: Request) -> Response:
        async with self.engine.connect() as conn:
            principal, reason = await principal_of(request, conn, self.settings, self.clock)
        if principal is None:
            return JSONResponse(
                {"error": "unauthenticated", "message": reason},
                status_code=401,
                headers=WWW_AUTHENTICATE,
            )
        if principal.scope != TokenScope.INGEST:
            return JSONResponse(
                {
                    "error": "forbidden",
                    "message": "This token cannot ingest: create one with "
                    "`creditlens token create --ingest`.",
                },
                status_code=403,
            )
        limited = rate_limited(request, principal.token_id)
        if limited is not None:
            return limited
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        settings = self.settings
        try:
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
            body = await read_capped(request, settings.max_ingest_body_bytes)
            lines: list[int] | None = None  # NDJSON: the line of each event, for its errors
            if media_type in JSON_TYPES:
                raws = parse_json_array(body, settings.max_ingest_events)
            else:
                raws, lines = parse_ndjson(body, settings.max_ingest_events, self.clock())
            result = await ingest(self.engine, raws, now=self.clock())
        except BadBody as error:
            return JSONResponse(error.body, status_code=error.status)
        except IngestRejected as rejected:
            return JSONResponse(
                {
                    "error": "invalid_events",
                    "message": f"{len(rejected.errors)} problem(s) found; nothing was written.",
                    "errors": [
                        {**error.as_dict(), **({"line": lines[error.index]} if lines else {})}
                        for error in rejected.errors
                    ],
                },
                status_code=422,
            )
        request.app.state.metrics.events_ingested(result.accepted, result.duplicates)
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates})
