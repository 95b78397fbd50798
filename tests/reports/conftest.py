"""Fixtures of the report tests: a tenant in UTC with the clock after the test data."""

from __future__ import annotations

import pytest

from tests.factories import make_ingest_token, make_tenant
from tests.reports.queries import utc


@pytest.fixture
async def client(client, app):  # type: ignore[no-untyped-def]
    """The app's client, marked so that ``queries.ask`` folds what is pending after an
    answer and asks again: the app's folder waits for a long or old tail (SQLite: 2 s), so
    without it these tests would read most events from the tail, not the rollups."""
    client.folding_engine = app.state.engine
    return client


@pytest.fixture
async def tenant(client, engine, clock):
    # Late 2026 events are in the future of the default clock: move it past them.
    clock.now = utc(2027, 1, 15, 12)
    return await make_tenant(engine, now=clock(), timezone="UTC")


@pytest.fixture
async def ingest(engine, clock):
    return await make_ingest_token(engine, now=clock())
