"""The Alembic migrations and the SQLAlchemy tables describe the same schema."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from db.engine import create_engine
from db.migrate import current_revision, head_revision
from db.tables import metadata


async def test_migrated_database_matches_the_tables(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
            revision = await current_revision(conn)
    finally:
        await engine.dispose()
    assert diff == []
    assert revision == head_revision()


async def test_readyz_reports_the_migration(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "migration": head_revision()}


async def test_readyz_is_503_on_an_unmigrated_database(tmp_path):
    import httpx

    from app.main import create_app
    from app.settings import Settings

    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/empty.db"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    # Said so that a 503 for another reason (seen once under CI load) shows which one.
    assert body.get("expected") == head_revision(), body


async def test_migrations_downgrade_to_nothing_and_back(scratch_url):
    from sqlalchemy import inspect

    from db import migrate

    async def tables() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    url = scratch_url
    # Alembic runs its own event loop: keep it off ours.
    await asyncio.to_thread(migrate.upgrade, url)
    assert set(metadata.tables) <= await tables()
    await asyncio.to_thread(migrate.downgrade, url, "base")
    assert await tables() <= {"alembic_version"}
    await asyncio.to_thread(migrate.upgrade, url)
    assert set(metadata.tables) <= await tables()


async def test_upgrade_to_0003_adds_all_keys_rows_from_existing_rollups(scratch_url):
    from sqlalchemy import text

    from db import migrate

    rows = [  # (grain, bucket, key, value, calls, credits) of one organization's endpoints
        (3600, 7200, 1, "/a", 2, 5),
        (3600, 7200, 2, "/a", 3, 7),
        (3600, 7200, 0, "/b", 1, 1),
        (86400, 0, 1, "/a", 2, 5),
        (900, 7200, 1, "/a", 2, 5),
    ]
    insert = text(
        "INSERT INTO usage_rollups VALUES (1, 1, :grain, :bucket, :key, :value, :calls, :credits)"
    )
    await asyncio.to_thread(migrate.upgrade, scratch_url, "0002")
    engine = create_engine(scratch_url)
    try:
        async with engine.begin() as conn:
            for grain, bucket, key, value, calls, credits in rows:
                await conn.execute(
                    insert,
                    {
                        "grain": grain,
                        "bucket": bucket,
                        "key": key,
                        "value": value,
                        "calls": calls,
                        "credits": credits,
                    },
                )
        # To 0003 only: 0005 refills the rollups from the events (none here).
        await asyncio.to_thread(migrate.upgrade, scratch_url, "0003")
        async with engine.connect() as conn:
            summed = (
                await conn.execute(
                    text(
                        "SELECT grain, bucket, value, calls, credits FROM usage_rollups "
                        "WHERE api_key_id = -1 ORDER BY grain, bucket, value"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in summed] == [
        (3600, 7200, "/a", 5, 12),
        (3600, 7200, "/b", 1, 1),
        (86400, 0, "/a", 2, 5),
    ]
