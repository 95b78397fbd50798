"""``organizations.data_version``: a counter that moves up with every change of an answer.

An answer about an organization's usage, API keys or users is a function of its stored
rows; every write that can change one adds 1 to the organization's ``data_version`` in the
write's own transaction, so an answer computed at a version stays right while the version
stays (the answer cache keys on it; the authentication statement, db/queries/tokens.py,
reads it with the organization on every request). The writers:

* ingestion (``db.ingestion.writer``): one update per organization with new events, new
  keys or new users, in id order, with ``last_event_at`` (``bulk.advance_organizations``);
* ``db.queries.directory.create_user``: through ``bump`` below.

* ``rollups rebuild`` (``db/rollups.py``): every organization, through ``bump_all``. A
  rebuild of sound rollups changes no answer, but it is also how damaged ones are
  repaired, and answers computed from those must not be reused after it.

Writes that change no answer move nothing: the fold (``db/folding.py``) moves sums between
the tail and the rollups, and a batch of duplicates stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import organizations

_BUMP = (
    update(organizations)
    .where(organizations.c.id == bindparam("organization"))
    .values(data_version=organizations.c.data_version + 1)
)


async def bump(conn: AsyncConnection, organization_ids: Iterable[int]) -> None:
    """Add 1 to ``data_version`` of each organization, in the caller's transaction.

    One statement per row in id order, as ingestion updates them, so writers lock
    organization rows in one order and cannot deadlock on them.
    """
    ids = sorted(set(organization_ids))
    if ids:
        await conn.execute(_BUMP, [{"organization": ident} for ident in ids])


async def bump_all(conn: AsyncConnection) -> None:
    """Add 1 to every organization's ``data_version``, in the caller's transaction."""
    await conn.execute(update(organizations).values(data_version=organizations.c.data_version + 1))


__all__ = ["bump", "bump_all"]
