"""Bearer tokens: who is calling, checked once per request.

The header is checked first, without I/O: exactly one ``Authorization`` header (two are
400: proxies and frameworks disagree on which one wins), ``Bearer <token>``. Then one
indexed read finds the token's principal.

Failed lookups are rate limited per client address (``auth_failures_per_minute``): once an
address has used up its failures, its unknown tokens are refused with 429 and
``Retry-After`` before any database work, so a flood of guessed tokens costs a hash, not a
lookup. Tokens this process has recently seen valid still reach the database (which is
what makes a revocation take effect at once), so the users behind a shared address keep
working while one of them floods.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager

from starlette.requests import HTTPConnection, Request

from app.rate_limit import Limiter
from app.settings import Settings
from db.queries.tokens import Principal, authenticate, hash_token
from db.session import StatementConnection
from domain.clock import Clock
from domain.errors import BadRequest, CreditLensError, Forbidden, RateLimited, Unauthenticated
from domain.records import OrganizationRecord, UserRecord
from domain.scopes import TokenScope

MISSING = (
    "Authentication required: send 'Authorization: Bearer <token>'. "
    "Create a token with `creditlens token create`."
)
INVALID = "The access token is invalid, expired or revoked."
DUPLICATE = "Send one Authorization header, not several."
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="creditlens"'}

Connect = Callable[[], AbstractAsyncContextManager[StatementConnection]]


class AuthRefused(Exception):
    """No principal: the error to answer with, its headers, and ``retry_after`` for 429."""

    def __init__(
        self,
        error: CreditLensError,
        *,
        headers: Mapping[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = dict(headers or {})
        self.retry_after = retry_after


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def principal_of(
    request: Request, conn: StatementConnection, settings: Settings, clock: Clock
) -> tuple[Principal | None, str]:
    """The token's principal, or None with the message that explains why there is none.

    Without the header checks and the failure limit of ``Authenticator`` (the benchmark's
    plain routes use it to run the same lookup).
    """
    token = bearer_token(request)
    if token is None:
        return None, MISSING
    principal = await authenticate(
        conn, token=token, pepper=settings.token_pepper.get_secret_value(), now=clock()
    )
    return principal, INVALID


def signed_in_user(
    request: Request, principal: Principal, *, not_a_user: str
) -> tuple[UserRecord, OrganizationRecord]:
    """The user and organization a user token speaks for, named in the request's access log
    line; ``Forbidden(not_a_user)`` for an ingest token, ``Unauthenticated`` when its user
    is gone. One rule for every route that reads on a user's behalf."""
    if principal.scope != TokenScope.USER or principal.user_id is None:
        raise Forbidden(not_a_user)
    user, organization = principal.user, principal.organization
    if user is None or organization is None:
        raise Unauthenticated("The token's user is gone.")
    request.state.viewer = f"user:{user.id}@organization:{organization.id}"
    return user, organization


class Authenticator:
    """The token check of both routes, with its per-address failure limit."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        failures: Limiter,
        remembered: int = 10_000,
    ) -> None:
        self._pepper = settings.token_pepper.get_secret_value()
        self._clock = clock
        self._failures = failures
        self._remembered = remembered
        # Digests of tokens recently found valid (never the tokens), least recent first.
        self._valid: OrderedDict[str, None] = OrderedDict()

    def token(self, request: Request) -> str:
        """The bearer token of the request's one Authorization header (no I/O)."""
        if len(request.headers.getlist("authorization")) > 1:
            raise AuthRefused(BadRequest(DUPLICATE))
        token = bearer_token(request)
        if token is None:
            raise AuthRefused(Unauthenticated(MISSING), headers=WWW_AUTHENTICATE)
        return token

    async def principal(self, request: HTTPConnection, token: str, connect: Connect) -> Principal:
        """The token's principal: refused at once when the caller's address has failed too
        often and the token is not one seen valid, else one read on ``connect()``."""
        address = request.client.host if request.client is not None else ""
        digest = hash_token(token, self._pepper)
        if self._failures.enabled and digest not in self._valid:
            decision = await self._failures.peek(address)
            if not decision.allowed:
                raise AuthRefused(
                    RateLimited(
                        f"Too many failed authentications from this address: at most "
                        f"{self._failures.per_minute} per minute (setting "
                        f"auth_failures_per_minute). Retry in {decision.retry_after} s."
                    ),
                    headers={"Retry-After": str(decision.retry_after)},
                    retry_after=decision.retry_after,
                )
        async with connect() as conn:
            principal = await authenticate(
                conn, token=token, pepper=self._pepper, now=self._clock(), digest=digest
            )
        if principal is None:
            self._valid.pop(digest, None)
            await self._failures.take(address)
            raise AuthRefused(Unauthenticated(INVALID), headers=WWW_AUTHENTICATE)
        self._valid[digest] = None
        self._valid.move_to_end(digest)
        if len(self._valid) > self._remembered:
            self._valid.popitem(last=False)
        return principal
