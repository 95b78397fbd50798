"""Ids of API keys and users by (organization, external id), remembered per engine.

Events name their key and user by the producer's external ids, and every batch must turn
them into our ids. Live traffic of many tenants names about a thousand of them a batch, and
looking them up cost SQLite's writer 7-10 µs an event, a sixth of its work (bench/
PROPOSALS.md, I9). An id never changes for its (organization, external id), and no key or
user is ever deleted (keys are revoked; ``revoked_at`` is not read here), so an id, once
committed, stays right for the life of the database and can be remembered.

Only committed ids are remembered: the writer hands over the ids a write resolved after
that write's commit (``Learned``), so an id from a rolled back registration, which the
database may give to another row later, is never reused. Each engine (a database, a worker)
has its own memory, bounded by ``LIMIT`` ids per table: past it the table's memory is
emptied and fills again from the database.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

Pair = tuple[int, str]  # (organization id, external id)

# Ids remembered per table and engine: ~150 bytes each, so at most ~15 MB a table.
LIMIT = 100_000


class KnownIds:
    """The committed ids of one database, per table (``api_keys``, ``users``)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._tables: dict[str, dict[Pair, int]] = {}

    def split(self, table: str, pairs: Iterable[Pair]) -> tuple[dict[Pair, int], list[Pair]]:
        """The ids known of ``pairs``, and the pairs (in their order) still to look up."""
        ids = self._tables.get(table, {})
        known: dict[Pair, int] = {}
        unknown: list[Pair] = []
        for pair in pairs:
            ident = ids.get(pair)
            if ident is None:
                unknown.append(pair)
            else:
                known[pair] = ident
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
        self.tables: dict[str, dict[Pair, int]] = {}

    def add(self, table: str, found: dict[Pair, int]) -> None:
        self.tables.setdefault(table, {}).update(found)


_KNOWN: weakref.WeakKeyDictionary[Any, KnownIds] = weakref.WeakKeyDictionary()


def known_ids(engine: AsyncEngine) -> KnownIds:
    """The engine's memory of ids (one per engine, gone with it)."""
    sync = engine.sync_engine
    known = _KNOWN.get(sync)
    if known is None:
        known = _KNOWN[sync] = KnownIds()
    return known
