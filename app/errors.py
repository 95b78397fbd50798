"""Errors a client may see. Each has a stable ``code`` sent as ``extensions.code``.

    CreditLensError
    ├── Unauthenticated      UNAUTHENTICATED   (HTTP 401)
    ├── Forbidden            FORBIDDEN
    ├── PlanRequired         PLAN_REQUIRED
    ├── NotFound             NOT_FOUND
    ├── InvalidInput         BAD_USER_INPUT
    ├── QueryTooComplex      QUERY_TOO_COMPLEX
    └── RateLimited          RATE_LIMITED      (HTTP 429)

Anything else is a bug: it is logged and the client sees INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

from typing import ClassVar


class CreditLensError(Exception):
    """An expected failure whose message is safe to show to the client."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def extensions(self) -> dict[str, object]:
        extensions: dict[str, object] = {"code": self.code}
        if self.field is not None:
            extensions["field"] = self.field
        return extensions


class Unauthenticated(CreditLensError):
    code = "UNAUTHENTICATED"


class Forbidden(CreditLensError):
    code = "FORBIDDEN"


class PlanRequired(CreditLensError):
    code = "PLAN_REQUIRED"


class NotFound(CreditLensError):
    code = "NOT_FOUND"


class InvalidInput(CreditLensError):
    code = "BAD_USER_INPUT"


class QueryTooComplex(CreditLensError):
    code = "QUERY_TOO_COMPLEX"


class RateLimited(CreditLensError):
    code = "RATE_LIMITED"
