"""Fixtures of the report tests: a tenant in UTC with the clock after the test data."""

from __future__ import annotations

import pytest

from tests.factories import make_tenant
from tests.reports.queries import utc


@pytest.fixture
async def tenant(client, engine, clock):
    # Late 2026 events are in the future of the default clock: move it past them.
    clock.now = utc(2027, 1, 15, 12)
    return await make_tenant(engine, now=clock(), timezone="UTC")
