"""Ids of organizations, API keys and users as events name them, remembered per engine.

Events name their organization by id or slug, and their key and user by the producer's
external ids, and every batch must turn them into our ids. Live traffic of many tenants
names about a thousand keys and users a batch, and looking them up cost SQLite's writer
7-10 µs an event, a sixth of its work (bench/PROPOSALS.md, I9). An id never changes for
its (organization, external id), and no key or user is ever deleted (keys are revoked;
``revoked_at`` is not read here), so an id, once committed, stays right for the life of the
database and can be remembered; so does an organization's (never deleted, its slug never
changed; ingestion never creates one).

Only committed ids are remembered: the writer hands over the ids a write resolved after
that write's commit (``Learned``), so an id from a rolled back registration, which the
database may give to another row later, is never reused. Each engine (a database, a worker)
has its own memory, bounded by ``LIMIT`` ids per table: past it the table's memory is
emptied and fills again from the database.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

Pair = tuple[int, str]  # (organization id, external id) of a key or user
# What names a row: a Pair, or an organization's id or slug.
Name = TypeVar("Name", bound=Hashable)

# Ids remembered per table and engine: ~150 bytes each, so at most ~15 MB a table.
LIMIT = 100_000


class KnownIds:
    """The committed ids of one database, per table (``organizations``, ``api_keys``,
    ``users``)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._tables: dict[str, dict[Hashable, int]] = {}

    def split(self, table: str, names: Iterable[Name]) -> tuple[dict[Name, int], list[Name]]:
        """The ids known of ``names``, and the names (in their order) still to look up."""
        ids = self._tables.get(table, {})
        known: dict[Name, int] = {}
        unknown: list[Name] = []
        for name in names:
            ident = ids.get(name)
            if ident is None:
                unknown.append(name)
            else:
                known[name] = ident
        return known, unknown

    def remember(self, learned: Learned) -> None:
        """Keep the ids of a committed write."""
        for table, found in learned.tables.items():
            ids = self._tables.setdefault(table, {})
            if len(ids) + len(found) > self.limit:
                ids.clear()
            ids.update(found)


class Learned:
    """The ids one write resolved from the database, for ``KnownIds.remember`` once it has
    committed."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Hashable, int]] = {}

    def add(self, table: str, found: Mapping[Name, int]) -> None:
        self.tables.setdefault(table, {}).update(found.items())


_KNOWN: weakref.WeakKeyDictionary[Any, KnownIds] = weakref.WeakKeyDictionary()


def known_ids(engine: AsyncEngine) -> KnownIds:
    """The engine's memory of ids (one per engine, gone with it)."""
    sync = engine.sync_engine
    known = _KNOWN.get(sync)
    if known is None:
        known = _KNOWN[sync] = KnownIds()
    return known
