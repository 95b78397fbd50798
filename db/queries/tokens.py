"""Access tokens: random, shown once, stored as a keyed hash, revocable, optionally expiring."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from db.driver import DriverConnection, DriverStatement, pooled_connection
from db.loop_reads import LoopConnection
from db.queries.directory import organization_record, user_record
from db.session import StatementConnection
from db.tables import access_tokens, organizations, users
from db.types import instant_columns, with_utc_instants
from domain.records import OrganizationRecord, UserRecord
from domain.scopes import TokenScope

PREFIX = "cl_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid token speaks for: a user of an organization, or the ingesting platform."""

    token_id: int
    scope: TokenScope
    user_id: int | None
    organization_id: int | None
    user: UserRecord | None = None
    organization: OrganizationRecord | None = None


def hash_token(token: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()


def new_token() -> str:
    """256 random bits, URL-safe, with a prefix that secret scanners can spot."""
    return PREFIX + secrets.token_urlsafe(32)


async def create_token(
    conn: AsyncConnection,
    *,
    pepper: str,
    scope: TokenScope,
    user_id: int | None,
    now: datetime,
    expires_at: datetime | None = None,
) -> tuple[int, str]:
    """Store a new token's hash; return its id and the token itself (shown only now)."""
    token = new_token()
    result = await conn.execute(
        access_tokens.insert()
        .values(
            token_hash=hash_token(token, pepper),
            prefix=token[:10],
            scope=scope.value,
            user_id=user_id,
            created_at=now,
            expires_at=expires_at,
        )
        .returning(access_tokens.c.id)
    )
    return result.scalar_one(), token


async def revoke_token(conn: AsyncConnection, *, token_id: int, now: datetime) -> bool:
    """Revoke a token at once; False when no such token is active."""
    t = access_tokens.c
    result = await conn.execute(
        update(access_tokens).where(t.id == token_id, t.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)


_USER_LABELS = [(column.name, f"u_{column.name}") for column in users.c]
_ORGANIZATION_LABELS = [(column.name, f"o_{column.name}") for column in organizations.c]


def _principal_statement() -> Select[Any]:
    t = access_tokens.c
    return (
        select(
            t.id,
            t.token_hash,
            t.scope,
            t.user_id,
            t.expires_at,
            t.revoked_at,
            *(users.c[name].label(label) for name, label in _USER_LABELS),
            *(organizations.c[name].label(label) for name, label in _ORGANIZATION_LABELS),
        )
        .select_from(
            access_tokens.outerjoin(users, users.c.id == t.user_id).outerjoin(
                organizations, organizations.c.id == users.c.organization_id
            )
        )
        .where(t.token_hash == bindparam("digest"))
    )


# Built once: every request runs it, and building it (30 labelled columns, two joins) and
# computing its cache key cost more than running it (bench/PROPOSALS.md, R3). The statement
# is immutable; only the digest is bound per call.
_PRINCIPAL = _principal_statement()


def _driver_statement(dialect: Dialect | None = None) -> DriverStatement:
    """The same statement as a driver takes it: PostgreSQL's (asyncpg), or ``dialect``'s."""
    statement = DriverStatement.of(_PRINCIPAL, dialect)
    if statement.names != ("digest",):
        raise RuntimeError("the token statement must bind only the digest, as its one parameter")
    return statement


_PRINCIPAL_SQL = _driver_statement()
_PRINCIPAL_SQLITE = _driver_statement(SQLiteDialect_pysqlite())
# The statement's instants, the only columns whose values the driver paths process.
_INSTANTS = instant_columns(_PRINCIPAL)


async def _principal_row(conn: StatementConnection, digest: str) -> Mapping[str, Any] | None:
    """The token's row with its user's and organization's columns, by digest.

    On PostgreSQL through the driver's own connection, on SQLite through the loop's reader
    (``db.loop_reads``): every request runs this statement, and SQLAlchemy's execution
    layer around it (events, result processing, greenlet hops; on SQLite the thread hops
    too) was about a quarter (PostgreSQL, bench/PROPOSALS.md R26) and half (SQLite, R29)
    of the CPU of a request whose answer is reused. The statement is the same one,
    compiled once per database; its instants get the processing their ``UTCDateTime``
    columns give them, its other columns (integers and text) need none.
    """
    record: Mapping[str, Any] | None
    if isinstance(conn, LoopConnection):
        record = await conn.fetchrow(_PRINCIPAL_SQLITE.sql, digest)
    elif isinstance(conn, AsyncConnection) and conn.dialect.name != "postgresql":
        row = (await conn.execute(_PRINCIPAL, {"digest": digest})).first()
        return None if row is None else row._mapping
    else:
        driver = (
            DriverConnection(await pooled_connection(conn))
            if isinstance(conn, AsyncConnection)
            else conn
        )
        record = await driver.fetchrow(_PRINCIPAL_SQL.sql, digest)
    if record is None:
        return None
    return with_utc_instants(record, _INSTANTS)


async def authenticate(
    conn: StatementConnection,
    *,
    token: str,
    pepper: str,
    now: datetime,
    digest: str | None = None,
) -> Principal | None:
    """The principal of an active token, or None (unknown, revoked or expired).

    One statement reads the token with its user and organization: every request pays for
    it, so it is one round trip, not three. ``digest``: ``hash_token(token, pepper)`` when
    the caller has it already.
    """
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    if digest is None:
        digest = hash_token(token, pepper)
    fields = await _principal_row(conn, digest)
    if fields is None or not hmac.compare_digest(fields["token_hash"], digest):
        return None
    expires_at = fields["expires_at"]
    if fields["revoked_at"] is not None or (expires_at is not None and expires_at <= now):
        return None
    user = None
    organization = None
    if fields["u_id"] is not None and fields["o_id"] is not None:
        user = user_record({name: fields[label] for name, label in _USER_LABELS})
        organization = organization_record(
            {name: fields[label] for name, label in _ORGANIZATION_LABELS}
        )
    return Principal(
        fields["id"],
        TokenScope(fields["scope"]),
        fields["user_id"],
        None if user is None else user.organization_id,
        user,
        organization,
    )


__all__ = ["Principal", "authenticate", "create_token", "revoke_token"]
