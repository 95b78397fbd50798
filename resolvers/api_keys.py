"""API keys of the viewer's organization, paged by opaque cursors."""

from __future__ import annotations

import base64
import binascii

from db.queries.directory import find_api_key, list_api_keys
from domain.errors import InvalidInput
from domain.records import ApiKeyRecord
from resolvers.context import Context

_CURSOR_PREFIX = "apikey:"


def encode_cursor(key: ApiKeyRecord) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{key.id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith(_CURSOR_PREFIX) or not text[len(_CURSOR_PREFIX) :].isdigit():
        raise InvalidInput("Invalid cursor: pass an endCursor from a previous page.", field="after")
    return int(text[len(_CURSOR_PREFIX) :])


async def page(
    context: Context, *, first: int, after: str | None, include_revoked: bool
) -> tuple[list[ApiKeyRecord], bool, int]:
    limit = context.limits.max_page_size
    if not 0 <= first <= limit:
        raise InvalidInput(f"first must be between 0 and {limit}.", field="first")
    after_id = None if after is None else decode_cursor(after)
    async with context.db.connection() as conn:
        return await list_api_keys(
            conn,
            organization_id=context.organization.id,
            first=first,
            after_id=after_id,
            include_revoked=include_revoked,
        )


async def one(context: Context, key_id: str) -> ApiKeyRecord | None:
    """The key, or None: for a key of another organization exactly as for no key at all."""
    async with context.db.connection() as conn:
        return await find_api_key(conn, organization_id=context.organization.id, external_id=key_id)
