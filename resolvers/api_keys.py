"""API keys of the viewer's organization, paged by opaque cursors."""

from __future__ import annotations

import base64
import binascii

from db.queries.directory import count_api_keys, find_api_key, list_api_keys
from domain.errors import InvalidInput
from domain.records import ApiKeyRecord
from resolvers.context import Context

_CURSOR_PREFIX = "apikey:"
MAX_KEY_ID = 2**63 - 1  # a BIGINT: a larger number names no key, and the driver refuses it
# The longest cursor encode_cursor makes: base64 of the prefix and 19 digits, padded.
_MAX_CURSOR_LENGTH = 4 * -(-(len(_CURSOR_PREFIX) + len(str(MAX_KEY_ID))) // 3)


def encode_cursor(key: ApiKeyRecord) -> str:
    return _encode(key.id)


def _encode(key_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{key_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    """The key id in a cursor made by ``encode_cursor``; BAD_USER_INPUT for anything else.

    Only the exact text ``encode_cursor`` makes is accepted: no other spelling of the
    same bytes, no digits other than ASCII ('١٢٣' passes ``str.isdigit`` and ``int``), no
    number past a BIGINT (5,000 digits also make ``int`` raise).
    """
    key_id: int | None = None
    if len(cursor) <= _MAX_CURSOR_LENGTH and cursor.isascii():
        try:
            text = base64.urlsafe_b64decode(cursor).decode("ascii")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            text = ""
        digits = text.removeprefix(_CURSOR_PREFIX)
        if digits != text and digits.isascii() and digits.isdigit():
            key_id = int(digits)  # at most 19 ASCII digits, by the length check
    if key_id is None or key_id > MAX_KEY_ID or _encode(key_id) != cursor:
        raise InvalidInput("Invalid cursor: pass an endCursor from a previous page.", field="after")
    return key_id


async def page(
    context: Context, *, first: int, after: str | None, include_revoked: bool
) -> tuple[list[ApiKeyRecord], bool]:
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


async def count(context: Context, *, include_revoked: bool) -> int:
    """How many keys the pages of ``page`` hold in all."""
    async with context.db.connection() as conn:
        return await count_api_keys(
            conn, organization_id=context.organization.id, include_revoked=include_revoked
        )


async def one(context: Context, key_id: str) -> ApiKeyRecord | None:
    """The key, or None: for a key of another organization exactly as for no key at all."""
    async with context.db.connection() as conn:
        return await find_api_key(conn, organization_id=context.organization.id, external_id=key_id)
