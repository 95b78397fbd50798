"""Organizations, users and API keys: who is who, and what they are called."""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Row, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.elements import BindParameter

from db.data_version import bump
from db.engine import engine_itself
from db.prebuilt import Prebuilt
from db.tables import api_keys, organizations, users
from domain.plans import Plan
from domain.recent import Recent
from domain.records import ApiKeyRecord, OrganizationRecord, UserRecord
from domain.roles import Role


def organization_record(fields: Mapping[Any, Any]) -> OrganizationRecord:
    """A record from the columns of ``organizations`` (a row mapping)."""
    return OrganizationRecord(**{**fields, "plan": Plan(fields["plan"])})


def user_record(fields: Mapping[Any, Any]) -> UserRecord:
    """A record from the columns of ``users`` (a row mapping)."""
    return UserRecord(**{**fields, "role": Role(fields["role"])})


def _organization(row: Row[tuple[object, ...]]) -> OrganizationRecord:
    return organization_record(row._mapping)


async def create_organization(
    conn: AsyncConnection,
    *,
    slug: str,
    name: str,
    plan: Plan | str,
    timezone: str,
    credit_allowance: int,
    billing_cycle_anchor: datetime,
    now: datetime,
) -> int:
    result = await conn.execute(
        organizations.insert()
        .values(
            slug=slug,
            name=name,
            plan=Plan(plan).value,
            timezone=timezone,
            credit_allowance=credit_allowance,
            billing_cycle_anchor=billing_cycle_anchor,
            created_at=now,
        )
        .returning(organizations.c.id)
    )
    return int(result.scalar_one())


async def create_user(
    conn: AsyncConnection,
    *,
    organization_id: int,
    external_id: str,
    name: str,
    email: str | None,
    role: Role | str,
    now: datetime,
) -> int:
    """Store a user of the organization; moves its ``data_version`` (its answers name
    users), in the caller's transaction."""
    result = await conn.execute(
        users.insert()
        .values(
            organization_id=organization_id,
            external_id=external_id,
            name=name,
            email=email,
            role=Role(role).value,
            created_at=now,
        )
        .returning(users.c.id)
    )
    user_id = int(result.scalar_one())
    await bump(conn, [organization_id])
    return user_id


async def find_organization(conn: AsyncConnection, *, ref: str) -> OrganizationRecord | None:
    """By slug, or by id when ``ref`` is all digits."""
    o = organizations.c
    condition = o.id == int(ref) if ref.isdigit() else o.slug == ref
    row = (await conn.execute(select(organizations).where(condition))).first()
    return None if row is None else _organization(row)


async def users_by_id(
    conn: AsyncConnection, *, organization_id: int, user_ids: Iterable[int]
) -> dict[int, UserRecord]:
    u = users.c
    rows = await conn.execute(
        select(users).where(u.organization_id == organization_id, u.id.in_(sorted(set(user_ids))))
    )
    return {row.id: user_record(row._mapping) for row in rows}


async def api_keys_by_id(
    conn: AsyncConnection, *, organization_id: int, key_ids: Iterable[int]
) -> dict[int, ApiKeyRecord]:
    k = api_keys.c
    rows = await conn.execute(
        select(api_keys).where(k.organization_id == organization_id, k.id.in_(sorted(set(key_ids))))
    )
    return {row.id: ApiKeyRecord(**row._asdict()) for row in rows}


def _listed(
    organization_id: int | BindParameter[Any], include_revoked: bool
) -> list[ColumnElement[bool]]:
    """The keys a page lists (and its total counts): the organization's, active unless
    ``include_revoked``."""
    k = api_keys.c
    condition: list[ColumnElement[bool]] = [k.organization_id == organization_id]
    if not include_revoked:
        condition.append(k.revoked_at.is_(None))
    return condition


# The key statements of every report that names a key (``keyId``) and of every page of
# keys, built once (bench/PROPOSALS.md, R39): building them per request, and SQLAlchemy's
# execution around them, cost more than running them.
_k = api_keys.c
_FIND_KEY = Prebuilt(
    select(api_keys).where(
        _k.organization_id == bindparam("organization_id"),
        _k.external_id == bindparam("external_id"),
    )
)


def _page_statement(include_revoked: bool, after: bool) -> Prebuilt:
    condition = _listed(bindparam("organization_id"), include_revoked)
    if after:
        condition.append(_k.id > bindparam("after_id"))
    return Prebuilt(
        select(api_keys).where(*condition).order_by(_k.id).limit(bindparam("limit", type_=Integer))
    )


# (include_revoked, after a cursor) -> the page's statement
_PAGES = {
    (include_revoked, after): _page_statement(include_revoked, after)
    for include_revoked in (False, True)
    for after in (False, True)
}


async def find_api_key(
    conn: AsyncConnection, *, organization_id: int, external_id: str
) -> ApiKeyRecord | None:
    """A key of this organization by the id the platform gave it; None for any other."""
    rows = await _FIND_KEY.rows(
        conn, {"organization_id": organization_id, "external_id": external_id}
    )
    return ApiKeyRecord(**rows[0]) if rows else None


# Key ids kept per database, at most this many (about 200 bytes each).
KEY_IDS_KEPT = 16_384
_KEY_IDS: weakref.WeakKeyDictionary[Any, Recent[int]] = weakref.WeakKeyDictionary()


def known_key_ids(engine: AsyncEngine) -> Recent[int]:
    """Internal key ids by (organization id, external id), as found before in ``engine``'s
    database: one memo per engine (so per worker), shared by its requests.

    A report filtered by a key looked its id up on every request: one statement of three
    for the cheapest report, about 30 us of CPU (bench/PROPOSALS.md, R44). What it reads
    never changes once found: the service never deletes a key or changes its external id
    (a revoked key keeps its row and its usage), so the id found is the id for good, in
    every worker. Only keys found are kept: a key that does not exist yet is looked up
    again, so one created since is found at once. A key of another organization is another
    entry (the organization is in the memo's key, and every report is filtered by the
    organization too). Ids are read from the database they belong to: a test or a tool
    with another database has another engine, hence another memo.
    """
    itself = engine_itself(engine)
    known = _KEY_IDS.get(itself)
    if known is None:
        known = _KEY_IDS[itself] = Recent(KEY_IDS_KEPT)
    return known


async def list_api_keys(
    conn: AsyncConnection,
    *,
    organization_id: int,
    first: int,
    after_id: int | None,
    include_revoked: bool,
) -> tuple[list[ApiKeyRecord], bool]:
    """One page of keys in creation order, and whether more follow."""
    statement = _PAGES[(include_revoked, after_id is not None)]
    parameters: dict[str, Any] = {"organization_id": organization_id, "limit": first + 1}
    if after_id is not None:
        parameters["after_id"] = after_id
    rows = await statement.rows(conn, parameters)
    keys = [ApiKeyRecord(**row) for row in rows[:first]]
    return keys, len(rows) > first


async def count_api_keys(
    conn: AsyncConnection, *, organization_id: int, include_revoked: bool
) -> int:
    """How many keys ``list_api_keys`` lists on all pages (its own statement, read only when a
    page's total is asked: bench/PROPOSALS.md, R19)."""
    statement = select(func.count()).select_from(api_keys)
    statement = statement.where(*_listed(organization_id, include_revoked))
    return int((await conn.execute(statement)).scalar_one())
