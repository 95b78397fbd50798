"""Cross-origin requests. A refused CORS preflight is answered in the GraphQL error shape
and names the setting that allows an origin, instead of Starlette's plain-text 400.

With no allowed origin (the default) a light middleware refuses preflights and lets every
other request through untouched; with ``CREDITLENS_CORS_ALLOWED_ORIGINS`` set, Starlette's
CORS middleware does the work and only its refusals are reworded.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.graphql_http import HTTPRefusal
from domain.errors import BadRequest

SETTING = "CREDITLENS_CORS_ALLOWED_ORIGINS"
ALLOWED_METHODS = ("GET", "POST")
ALLOWED_HEADERS = ("authorization", "content-type", "accept")


def _is_preflight(headers: Headers) -> bool:
    return "origin" in headers and "access-control-request-method" in headers


def refusal(
    origin: str, failures: Sequence[str], headers: dict[str, str] | None = None
) -> Response:
    """400 (as Starlette answers) in the GraphQL error shape, saying what the preflight asked
    that is not allowed."""
    shown = origin[:200]
    reasons = []
    if "origin" in failures:
        reasons.append(
            f"the origin {shown} is not allowed: add it to {SETTING} "
            f"(a JSON list, e.g. {SETTING}='[\"{shown}\"]')"
        )
    if "method" in failures:
        reasons.append(f"only {' and '.join(ALLOWED_METHODS)} are allowed cross-origin")
    if "headers" in failures:
        reasons.append(f"only the headers {', '.join(ALLOWED_HEADERS)} are allowed cross-origin")
    if not reasons:
        reasons.append(f"the request is not allowed ({', '.join(failures)})")
    message = "CORS preflight refused: " + "; ".join(reasons) + "."
    body = HTTPRefusal(BadRequest(message), extensions={"setting": SETTING}).body()
    return JSONResponse(body, status_code=400, headers=headers)


class RefusePreflights:
    """No origin is allowed: refuse preflights, pass everything else straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if _is_preflight(headers):
                await refusal(headers["origin"], ["origin"])(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Cors(CORSMiddleware):
    """Starlette's CORS middleware, with refused preflights in the GraphQL error shape."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        failures = bytes(response.body).decode().removeprefix("Disallowed CORS ").split(", ")
        kept = {
            name: value
            for name, value in response.headers.items()
            if name.lower().startswith("access-control-") or name.lower() == "vary"
        }
        return refusal(request_headers.get("origin", ""), failures, kept)


def cors_middleware(allowed_origins: list[str]) -> Middleware:
    """The CORS layer for these allowed origins (none: preflights are refused)."""
    if not allowed_origins:
        return Middleware(RefusePreflights)
    return Middleware(
        Cors,
        allow_origins=allowed_origins,
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=["retry-after", "x-request-id"],
        max_age=600,
    )
