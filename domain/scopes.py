"""What an access token may be used for."""

from __future__ import annotations

from enum import Enum


class TokenScope(Enum):
    """Stored by value in ``access_tokens.scope``."""

    USER = "user"  # GraphQL, as the token's user
    INGEST = "ingest"  # POST /v1/events, as the API platform
