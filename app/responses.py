"""JSON error bodies shaped like GraphQL responses, for refusals before execution."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

GRAPHQL_RESPONSE = "application/graphql-response+json"


def wants_graphql_response(request: Request) -> bool:
    return GRAPHQL_RESPONSE in request.headers.get("accept", "")


def graphql_error(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    extensions: dict[str, object] | None = None,
) -> JSONResponse:
    """``{"errors": [{"message", "extensions": {"code"}}]}`` with an HTTP status."""
    media_type = GRAPHQL_RESPONSE if wants_graphql_response(request) else "application/json"
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code, **(extensions or {})}}]},
        status_code=status,
        headers=headers,
        media_type=media_type,
    )
