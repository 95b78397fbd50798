"""SQLite reads on aiosqlite's connection in one thread crossing (``db.sqlite_driver``):
the rows SQLAlchemy's execution gives, for every count of a list parameter; inside the
request's one read snapshot; driver errors raised as SQLAlchemy's. SQLite files of their
own, so both legs of the suite run these."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, column, select, table
from sqlalchemy.exc import OperationalError

from db.engine import create_engine, writing
from db.sqlite_driver import SQLiteStatement
from db.tables import api_keys

_metadata = MetaData()
_things = Table(
    "things",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("org", Integer, nullable=False),
    Column("name", String(40)),
)
_THINGS_OF = select(_things.c.id, _things.c.name, _things.c.org).where(
    _things.c.org == bindparam("org"),
    _things.c.id.in_(bindparam("ids", expanding=True)),
    _things.c.name != "",  # a constant the statement holds
)


@pytest.fixture
async def things(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'things.db'}")
    async with writing(engine) as conn:
        await conn.run_sync(_metadata.create_all)
        await conn.execute(
            _things.insert(),
            [
                {"id": number, "org": number % 2, "name": None if number == 4 else f"n{number}"}
                for number in range(1, 11)
            ],
        )
    yield engine
    await engine.dispose()


async def test_rows_equal_sqlalchemys_for_every_count_of_a_list(things):
    statement = SQLiteStatement(_THINGS_OF)
    assert statement.columns == ("id", "name", "org")
    async with things.connect() as conn:
        for ids in ([], [3], [1, 2, 3], [2, 4, 6, 8, 10, 12], [5], [7, 9]):
            parameters = {"org": 1, "ids": ids}
            expected = [tuple(row) for row in await conn.execute(_THINGS_OF, parameters)]
            assert list(await statement.rows(conn, parameters)) == expected
            assert list(await statement.rows(conn, {"org": 0, "ids": ids})) == [
                tuple(row) for row in await conn.execute(_THINGS_OF, {"org": 0, "ids": ids})
            ]
    # One form per count of the list, values bound per call (never kept in the form).
    assert statement.form({"org": 1, "ids": [5]}) is statement.form({"org": 0, "ids": [7]})
    assert statement.form({"org": 1, "ids": [5]}).values({"org": 0, "ids": [7]}) == (0, 7, "")


async def test_every_read_of_a_connection_sees_one_snapshot(things):
    statement = SQLiteStatement(_THINGS_OF)
    parameters = {"org": 1, "ids": list(range(1, 30))}
    async with things.connect() as reader:
        before = list(await statement.rows(reader, parameters))  # begins the read
        assert reader.in_transaction()
        async with writing(things) as conn:
            await conn.execute(_things.insert(), {"id": 21, "org": 1, "name": "new"})
        assert list(await statement.rows(reader, parameters)) == before
        # SQLAlchemy's own execution on the connection reads the same snapshot.
        assert [tuple(row) for row in await reader.execute(_THINGS_OF, parameters)] == before
    async with things.connect() as conn:
        after = list(await statement.rows(conn, parameters))
    assert after == [*before, (21, "new", 1)]


async def test_a_driver_error_is_sqlalchemys(things):
    missing = SQLiteStatement(select(table("missing", column("id"))))
    async with things.connect() as conn:
        with pytest.raises(OperationalError, match="no such table"):
            await missing.rows(conn, {})


def test_values_the_database_would_process_are_refused():
    with pytest.raises(TypeError, match="created_at"):
        SQLiteStatement(select(api_keys))
    SQLiteStatement(select(api_keys), ("created_at", "revoked_at", "last_used_at", "first_seen_at"))
    with pytest.raises(TypeError, match="binds"):
        SQLiteStatement(select(api_keys.c.id).where(api_keys.c.created_at > bindparam("at")))
