"""DataLoaders, built per request: one grouped query for all keys of a page."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from strawberry.dataloader import DataLoader

from db.queries.reports import breakdown_per_key, totals
from db.session import RequestDatabase
from domain.dimensions import Dimension
from domain.outcomes import CallOutcome
from domain.records import Share, Tally

# The outcomes a report keeps (None: all), part of every key: a filtered report never
# shares a read with an unfiltered one.
Outcomes = frozenset[CallOutcome] | None
# (organization id, API key id, start, end, outcomes)
KeyRangeKey = tuple[int, int, datetime, datetime, Outcomes]
# (organization id, API key id or None for all keys, start, end, outcomes)
TotalsKey = tuple[int, int | None, datetime, datetime, Outcomes]


class Reads:
    """The loaders' batch reads of one request, on its database.

    Kept apart from :class:`Loaders` so that no loader holds a bound method of the object
    that holds the loader: that reference cycle kept every request's context, connection
    and rows for the garbage collector instead of freeing them when the request ended
    (bench/PROPOSALS.md, R43).
    """

    def __init__(self, db: RequestDatabase) -> None:
        self.db = db

    async def totals(self, keys: Sequence[TotalsKey]) -> list[Tally]:
        found: list[Tally] = []
        async with self.db.connection() as conn:
            for organization_id, key_id, start, end, outcomes in keys:
                found.append(
                    await totals(
                        conn,
                        organization_id=organization_id,
                        start=start,
                        end=end,
                        api_key_ids=None if key_id is None else [key_id],
                        outcomes=outcomes,
                    )
                )
        return found

    async def endpoint_usage_by_key(self, keys: Sequence[KeyRangeKey]) -> list[list[Share]]:
        # Keys on one page share a range and filter: group by them, one query for each.
        groups: dict[tuple[int, datetime, datetime, Outcomes], list[int]] = defaultdict(list)
        for organization_id, key_id, start, end, outcomes in keys:
            groups[(organization_id, start, end, outcomes)].append(key_id)
        found: dict[KeyRangeKey, list[Share]] = {}
        async with self.db.connection() as conn:
            for (organization_id, start, end, outcomes), key_ids in groups.items():
                per_key = await breakdown_per_key(
                    conn,
                    organization_id=organization_id,
                    dimension=Dimension.ENDPOINT,
                    start=start,
                    end=end,
                    api_key_ids=key_ids,
                    outcomes=outcomes,
                )
                for key_id, shares in per_key.items():
                    found[(organization_id, key_id, start, end, outcomes)] = shares
        return [found.get(key, []) for key in keys]


class Loaders:
    """The loaders of one request, each built when first used (most requests use none)."""

    def __init__(self, reads: Reads) -> None:
        self._reads = reads

    @functools.cached_property
    def endpoint_usage_by_key(self) -> DataLoader[KeyRangeKey, list[Share]]:
        return DataLoader(self._reads.endpoint_usage_by_key)

    @functools.cached_property
    def totals(self) -> DataLoader[TotalsKey, Tally]:
        """Not a batch but a memo: calls, creditsConsumed and change (and a previous report
        asked for twice) share one read of the same totals within a request."""
        return DataLoader(self._reads.totals)

    async def endpoint_usage_of_keys(self, keys: Sequence[KeyRangeKey]) -> list[list[Share]]:
        """What ``endpoint_usage_by_key.load_many(keys)`` gives, for a page's batch: when
        the loader holds none of the keys, one read for all of them, without a future, a
        callback and a scheduled dispatch per key (about 0.4 ms for 50 keys here,
        bench/PROPOSALS.md R38). The keys are claimed in the loader's cache first, so a
        load of one of them meanwhile waits for this read, as it would for its batch."""
        loader = self.endpoint_usage_by_key
        cache = loader.cache_map
        if len(set(keys)) != len(keys) or any(cache.get(key) is not None for key in keys):
            return await loader.load_many(keys)
        claims = [loader.loop.create_future() for _ in keys]
        for key, claim in zip(keys, claims, strict=True):
            cache.set(key, claim)
        try:
            values = await self._reads.endpoint_usage_by_key(keys)
        except Exception as error:
            for claim in claims:
                claim.set_exception(error)  # what a load of the key meets, as after a batch
                claim.exception()  # retrieved: no "never retrieved" warning when unawaited
            raise
        except BaseException:  # cancelled: a later load of these keys reads them again
            for claim in claims:
                claim.cancel()
            raise
        for claim, value in zip(claims, values, strict=True):
            claim.set_result(value)
        return values
