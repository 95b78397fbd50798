"""A small least-recently-used memo: what was worked out or read once, kept within a bound
(document analysis per schema, ``graphql_schema``; key ids per database, ``db.queries.
directory``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Recent(Generic[V]):
    """The last ``maxsize`` results by key, least recently used forgotten first.

    Shared by every request of a worker (the event loop runs one request at a time through
    it, so no lock is needed); bounded, so unique keys cannot grow memory.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: Hashable, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
