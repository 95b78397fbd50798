"""Key statements built once (``db.prebuilt``) give exactly what SQLAlchemy's execution of
the same select gives: every column, instants aware and in UTC, nulls as nulls, on both
databases (they run on the driver's connection: asyncpg's, or aiosqlite's)."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

from sqlalchemy import insert, select

from db.engine import writing
from db.queries.directory import find_api_key, list_api_keys
from db.tables import api_keys
from domain.records import ApiKeyRecord
from tests.factories import make_tenant


async def test_key_records_equal_sqlalchemys(engine, clock):
    now = clock()
    tenant = await make_tenant(engine, now=now)
    other = await make_tenant(engine, now=now)
    paris = timezone(timedelta(hours=1))
    async with writing(engine) as conn:
        for number in range(5):
            await conn.execute(
                insert(api_keys).values(
                    organization_id=tenant.organization_id,
                    external_id=f"key-{number}",
                    name=f"Key {number}",
                    # an instant given in another zone: stored, and read back, as UTC
                    created_at=(now - timedelta(days=number)).astimezone(paris),
                    revoked_at=now if number == 3 else None,
                    last_used_at=now - timedelta(minutes=number) if number % 2 else None,
                    first_seen_at=now - timedelta(days=40 + number),
                )
            )
        await conn.execute(
            insert(api_keys).values(
                organization_id=other.organization_id,
                external_id="key-0",
                name="Not theirs",
                created_at=now,
            )
        )
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(api_keys)
                .where(api_keys.c.organization_id == tenant.organization_id)
                .order_by(api_keys.c.id)
            )
        ).all()
        expected = [ApiKeyRecord(**row._asdict()) for row in rows]
        assert len(expected) == 5
        for record in expected:
            found = await find_api_key(
                conn, organization_id=tenant.organization_id, external_id=record.external_id
            )
            assert found == record
            assert found is not None
            assert found.created_at.tzinfo is UTC
        assert (
            await find_api_key(conn, organization_id=tenant.organization_id, external_id="x")
            is None
        )
        # Every page shape: with and without revoked keys, from the start and after a key.
        for include_revoked in (False, True):
            listed = [key for key in expected if include_revoked or key.revoked_at is None]
            for after in (None, expected[1].id):
                start = [key for key in listed if after is None or key.id > after]
                for first in (0, 2, 10):
                    page, more = await list_api_keys(
                        conn,
                        organization_id=tenant.organization_id,
                        first=first,
                        after_id=after,
                        include_revoked=include_revoked,
                    )
                    assert page == start[:first]
                    assert more is (len(start) > first)
