"""Keep the objects of start-up out of the garbage collector's way.

A server allocates most of its long-lived objects while it starts (imports, the GraphQL
schema, SQLAlchemy's metadata and compiled statements): hundreds of thousands of tracked
objects that every older-generation collection walks again, although none of them ever
becomes garbage. A GraphQL request allocates enough containers to trigger a collection
every few hundred microseconds of work (3 a request for the page of 50 keys), and the
older generations' share of that walked the start-up heap: 10.5 -> 9.2 ms of CPU for that
page, 1.96 -> 1.81 ms for the 30-day endpoint table, once it is frozen (bench/PROPOSALS.md,
R23). ``gc.freeze`` moves every object alive now to a permanent generation the collector
skips; garbage made later is collected as before.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_startup_heap() -> None:
    """Collect what start-up left behind, then freeze the rest; once per process (tests
    start many apps in one process, and only the first start-up's objects are the
    server's own)."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()
