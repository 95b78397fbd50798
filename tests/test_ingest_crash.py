"""A real server killed (SIGKILL) in the middle of writing a batch loses all of it or none.

The server is a uvicorn process on the session's database (the SQLite file, or the
PostgreSQL test database). The test waits until that process is inside its write
transaction (SQLite: it holds the write lock; PostgreSQL: its backend has written rows that
are not committed), kills it, and then shows the database holds none of the batch or all
of it, that the rollups equal the raw events, and that a resend to a new server completes
the batch with the right accepted/duplicates answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.factories import event, make_ingest_token, make_tenant
from tests.live_server import live_server
from tests.stored_totals import totals

BATCH = 10_000
ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def server(database_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``creditlens serve`` on a free port of 127.0.0.1 (tests/live_server.py)."""
    with live_server(database_url, log_level="WARNING") as running:
        yield running.process, running.url


def _sqlite_writer_active(database_url: str) -> bool:
    """True while another connection holds the SQLite write lock."""
    path = make_url(database_url).database
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if "locked" not in str(error):
            raise
        return True
    finally:
        if probe.in_transaction:
            probe.execute("ROLLBACK")
        probe.close()
    return False


async def _postgres_writer_active(database_url: str) -> bool:
    """True while a backend of the test database has written rows it has not committed."""
    import asyncpg

    url = make_url(database_url)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return bool(count)


async def _wait_for_writer(database_url: str, posting: asyncio.Task[object]) -> None:
    deadline = time.monotonic() + 30
    while True:
        if database_url.startswith("postgresql"):
            if await _postgres_writer_active(database_url):
                return
        elif _sqlite_writer_active(database_url):
            return
        assert not posting.done(), "the batch finished before the server could be killed"
        assert time.monotonic() < deadline, "the server never started writing"
        await asyncio.sleep(0.001)


def _batch(slug: str) -> list[dict]:
    start = datetime.now(UTC) - timedelta(hours=3)
    return [
        event(
            slug,
            start + timedelta(milliseconds=900 * i),
            api_key=f"key-{i % 7}",
            user=f"user-{i % 13}",
            endpoint=f"/v2/endpoint-{i % 11}",
            source=("api", "crm_integration", "extension")[i % 3],
            credits=i % 4,
        )
        for i in range(BATCH)
    ]


@pytest.mark.slow
async def test_killed_server_leaves_whole_batch_or_none_and_resend_completes(
    database_url, engine, clock
):
    tenant = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    batch = _batch(tenant.slug)
    body = json.dumps(batch).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    with server(database_url) as (process, base):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            posting = asyncio.create_task(http.post("/v1/events", content=body, headers=headers))
            await _wait_for_writer(database_url, posting)
            os.kill(process.pid, signal.SIGKILL)
            with pytest.raises(httpx.TransportError):
                await posting
        assert process.wait(timeout=10) == -signal.SIGKILL

    after_crash = await totals(engine)
    assert after_crash.events in (0, BATCH)
    assert after_crash.rollups_match_events()
    # The kill came while the transaction was open, so in practice nothing is stored.
    assert after_crash.events == 0

    with server(database_url) as (_, base):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            resent = await http.post("/v1/events", content=body, headers=headers)
            again = await http.post("/v1/events", content=body, headers=headers)
    assert resent.status_code == 200, resent.text
    survived = after_crash.events
    assert resent.json() == {"accepted": BATCH - survived, "duplicates": survived}
    assert again.json() == {"accepted": 0, "duplicates": BATCH}
    stored = await totals(engine)
    assert stored.events == BATCH
    assert stored.credits == sum(item["credits"] for item in batch)
    assert stored.rollups_match_events()
