"""Bearer tokens: who is calling, checked once per request."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from app.settings import Settings
from db.queries.tokens import Principal, authenticate
from domain.clock import Clock

MISSING = (
    "Authentication required: send 'Authorization: Bearer <token>'. "
    "Create a token with `creditlens token create`."
)
INVALID = "The access token is invalid, expired or revoked."
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="creditlens"'}


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def principal_of(
    request: Request, conn: AsyncConnection, settings: Settings, clock: Clock
) -> tuple[Principal | None, str]:
    """The token's principal, or None with the message that explains why there is none."""
    token = bearer_token(request)
    if token is None:
        return None, MISSING
    principal = await authenticate(
        conn, token=token, pepper=settings.token_pepper.get_secret_value(), now=clock()
    )
    return principal, INVALID
