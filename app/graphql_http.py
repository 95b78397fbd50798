"""GraphQL over HTTP: what a request asks for, and how the answer is framed.

Follows the GraphQL-over-HTTP specification (and passes graphql-http's audit):

* ``GET`` carries a query in the URL and may only run queries; a mutation over ``GET`` is
  refused with 405 (``Allow: POST``), so a link or an image tag can never change anything.
* ``POST`` carries ``application/json``; any other or no ``Content-Type`` is 415.
* The answer is ``application/graphql-response+json`` when the client accepts it, else
  ``application/json``; an ``Accept`` that allows neither is 406.
* JSON (the body, ``variables`` and ``extensions`` of a GET) is parsed strictly: nesting
  too deep for the parser or numbers too long to convert are 400 like any other bad JSON.
* A request error (unreadable body, bad parameters, a document that does not parse or
  validate, variables that cannot be coerced, a limit) has no ``data`` entry; in
  ``application/graphql-response+json`` it is answered with 400, in the legacy
  ``application/json`` with 200 when GraphQL itself refused it (as the spec asks).
* A JSON array is a batch: refused unless the ``batching`` setting is on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response

from app.body import CLOSE, BodyRefused, BodyTooLarge
from db.ingestion.decoding import MalformedJson, decode
from domain.errors import BadRequest, CreditLensError, QueryTooComplex, RequestTimeout

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


class HTTPRefusal(Exception):
    """A request refused before (or instead of) execution, with a GraphQL-shaped body.

    Code and status are the error's own unless the HTTP rules need a more precise status
    (405, 406, 413, 415) or the refusal is about the document (``VALIDATION_FAILED``).
    """

    def __init__(
        self,
        error: CreditLensError,
        *,
        status: int | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(error.message)
        self.status = error.http_status if status is None else status
        self.code = error.code if code is None else code
        self.message = error.message
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    def body(self) -> dict[str, object]:
        return {
            "errors": [
                {"message": self.message, "extensions": {"code": self.code, **self.extensions}}
            ]
        }


@dataclass(frozen=True, slots=True)
class Operation:
    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] | None = field(default=None)


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))
    return ranges


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in, or None when the client accepts neither."""
    if not accept or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for media, quality in _media_ranges(accept):
        if quality <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            candidate = (quality, 2, GRAPHQL_RESPONSE)
        elif media == JSON:
            candidate = (quality, 1, JSON)
        elif media in ("*/*", "application/*"):
            # Until the spec's watershed, a wildcard means the legacy JSON type.
            candidate = (quality, 0, JSON)
        else:
            continue
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return None if best is None else best[2]


def body_refusal(error: BodyRefused) -> HTTPRefusal:
    """413 for a body over ``max_body_bytes``, 408 for one that did not arrive in time."""
    if isinstance(error, BodyTooLarge):
        cap = error.limits.max_bytes
        return HTTPRefusal(
            QueryTooComplex(
                f"The request body is larger than {cap} bytes (setting max_body_bytes)."
            ),
            status=413,
            headers=CLOSE,
            extensions={"limit": "max_body_bytes", "maximum": cap},
        )
    return HTTPRefusal(
        RequestTimeout(str(error)),
        headers=CLOSE,
        extensions={"limit": "body_timeout_seconds", "maximum": error.limits.timeout_seconds},
    )


def _parse_json(text: bytes | str, what: str) -> Any:
    """Strict JSON; too deep, too long a number, or not JSON is a 400 that says which."""
    try:
        return decode(text)
    except MalformedJson as error:
        raise _bad_request(
            f"{what} is not valid JSON: {error.reason} (line {error.line}, column {error.column})."
        ) from error


def _bad_request(message: str) -> HTTPRefusal:
    return HTTPRefusal(BadRequest(message))


def _json_parameter(value: str | None, name: str) -> Any:
    if value is None or value == "":
        return None
    return _parse_json(value, f"The {name} parameter")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "an array" if isinstance(value, list) else "an object"


def _operation(data: object) -> Operation:
    if not isinstance(data, dict):
        raise _bad_request("A GraphQL request is a JSON object with a query.")
    query = data.get("query")
    if query is not None and not isinstance(query, str):
        raise _bad_request(
            f"query must be a string (the GraphQL document), not {_json_type(query)}."
        )
    if query is None or not query.strip():
        raise _bad_request('The request has no query: send {"query": "{ viewer { name } }"}.')
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise _bad_request("variables must be a JSON object or null.")
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise _bad_request("operationName must be a string or null.")
    extensions = data.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise _bad_request("extensions must be a JSON object or null.")
    return Operation(query, variables, operation_name or None, extensions)


def operations_of_get(request: Request) -> list[Operation]:
    params = request.query_params
    return [
        _operation(
            {
                "query": params.get("query"),
                "variables": _json_parameter(params.get("variables"), "variables"),
                "operationName": params.get("operationName"),
                "extensions": _json_parameter(params.get("extensions"), "extensions"),
            }
        )
    ]


def check_content_type(request: Request) -> None:
    header = request.headers.get("content-type", "")
    media, *params = (piece.strip().lower() for piece in header.split(";"))
    charsets = [p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")]
    if media != JSON or any(charset not in ("utf-8", "utf8") for charset in charsets):
        raise HTTPRefusal(
            BadRequest("Send the request as Content-Type: application/json (UTF-8)."), status=415
        )


def operations_of_body(
    body: bytes, *, batching: bool, max_operations: int
) -> tuple[list[Operation], bool]:
    """The operations of a POST body, and whether it was a batch (a JSON array)."""
    if not body.strip():
        raise _bad_request("The request body is empty: send a JSON object with a query.")
    data = _parse_json(body, "The request body")
    if not isinstance(data, list):
        return [_operation(data)], False
    if not batching:
        raise HTTPRefusal(
            QueryTooComplex(
                "Batched requests (a JSON array of operations) are turned off "
                "(setting batching): send one operation per request."
            ),
            extensions={"limit": "batching"},
        )
    if not data or len(data) > max_operations:
        raise HTTPRefusal(
            QueryTooComplex(
                f"A batch holds 1 to {max_operations} operations (setting max_batch_operations)."
            ),
            extensions={"limit": "max_batch_operations", "maximum": max_operations},
        )
    return [_operation(item) for item in data], True


def is_request_error(data: object, errors: Sequence[GraphQLError] | None) -> bool:
    """No field ran: the errors are about the request itself (spec: no ``data`` entry)."""
    return data is None and bool(errors) and all(error.path is None for error in errors or ())


def to_json(payload: object) -> bytes:
    """Compact UTF-8 JSON. orjson writes an answer of ~150 fields in a tenth of the time of
    ``json.dumps``; integers beyond 64 bits (a BigInt sum could be one) go through ``json``."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def encode(payload: object, status: int, media_type: str, headers: Mapping[str, str]) -> Response:
    content = to_json(payload)
    return Response(
        content,
        status_code=status,
        headers=dict(headers),
        media_type=f"{media_type}; charset=utf-8",
    )
