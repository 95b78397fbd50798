"""Every error a client may see, with its stable code and HTTP status, in one place.

    CreditLensError          INTERNAL_SERVER_ERROR       500  (a bug: masked, logged)
    ├── Unauthenticated      UNAUTHENTICATED             401
    ├── Forbidden            FORBIDDEN                   403
    ├── PlanRequired         PLAN_REQUIRED               403
    ├── NotFound             NOT_FOUND                   404
    ├── InvalidInput         BAD_USER_INPUT              400
    ├── BadRequest           BAD_REQUEST                 400  (method, media type, body)
    ├── QueryTooComplex      QUERY_TOO_COMPLEX           400  (413 for a body too large)
    ├── RequestTimeout       REQUEST_TIMEOUT             408  (the body did not arrive in time)
    ├── RateLimited          RATE_LIMITED                429
    └── Unavailable          SERVICE_UNAVAILABLE         503  (the database cannot be reached)

GraphQL sends ``code`` as ``extensions.code`` (``graphql_schema.error_codes``); refusals
before execution become HTTP answers of ``http_status`` (``app.graphql_http``). Two codes
describe documents rather than raised errors: ``PARSE_FAILED`` and ``VALIDATION_FAILED``.
"""

from __future__ import annotations

from typing import ClassVar

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


class CreditLensError(Exception):
    """An expected failure whose message is safe to show to the client."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    http_status: ClassVar[int] = 500

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


INTERNAL = CreditLensError.code


class Unauthenticated(CreditLensError):
    code = "UNAUTHENTICATED"
    http_status = 401


class Forbidden(CreditLensError):
    code = "FORBIDDEN"
    http_status = 403


class PlanRequired(CreditLensError):
    code = "PLAN_REQUIRED"
    http_status = 403


class NotFound(CreditLensError):
    code = "NOT_FOUND"
    http_status = 404


class InvalidInput(CreditLensError):
    code = "BAD_USER_INPUT"
    http_status = 400


class BadRequest(CreditLensError):
    code = "BAD_REQUEST"
    http_status = 400


class QueryTooComplex(CreditLensError):
    code = "QUERY_TOO_COMPLEX"
    http_status = 400


class RateLimited(CreditLensError):
    code = "RATE_LIMITED"
    http_status = 429


class RequestTimeout(CreditLensError):
    code = "REQUEST_TIMEOUT"
    http_status = 408


class Unavailable(CreditLensError):
    code = "SERVICE_UNAVAILABLE"
    http_status = 503
