"""SQLite connections opened together on a fresh file all start (each in WAL mode).

A server starting on a new file opens several connections at once (the folder, the webhook
dispatcher, the first request); SQLite refused one of them now and then with "database is
locked" while another switched the file to WAL, and /readyz answered 503 "unreachable".
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from db.engine import create_engine


async def test_connections_opened_together_on_a_new_file_all_start(tmp_path):
    for attempt in range(10):
        engines = [
            create_engine(f"sqlite+aiosqlite:///{tmp_path / f'fresh-{attempt}.db'}")
            for _ in range(12)
        ]

        async def journal_mode(engine):
            async with engine.connect() as conn:
                return (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()

        try:
            modes = await asyncio.gather(*(journal_mode(engine) for engine in engines))
        finally:
            for engine in engines:
                await engine.dispose()
        assert modes == ["wal"] * len(engines)
