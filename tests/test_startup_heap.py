"""The start-up heap is frozen once the app has started (app/startup_heap.py)."""

from __future__ import annotations

import gc


async def test_the_app_freezes_its_startup_heap(app):  # type: ignore[no-untyped-def]
    # The app fixture has run the lifespan's start-up: the schema, the engine and every
    # module are in the permanent generation, which collections skip.
    assert gc.get_freeze_count() > 10_000
