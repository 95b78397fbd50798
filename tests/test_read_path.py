"""The read path's shortcuts (issue 17) serve nothing stale, foreign or different.

* Tokens are not cached: a revocation is refused on the next request, by every worker (two
  applications on one database stand for two worker processes), though each worker keeps
  the answer it gave (app/answer_cache.py). The token statement is built once and binds
  only the digest: two tenants taking turns each get their own.
* A new event is in the next answer (the answer cache's other guarantees:
  tests/test_answer_cache.py).
* Rows of plain leaf fields completed in one step (``graphql_schema.execution``) give what
  graphql-core's own completion gives, data and errors alike.
* On PostgreSQL, reads run in autocommit; a write (an alert mutation) is still one
  transaction.
"""

from __future__ import annotations

import enum
from datetime import timedelta

import pytest
import strawberry
from sqlalchemy import text
from strawberry.schema.config import StrawberryConfig

from db.engine import writing
from db.queries.tokens import revoke_token
from db.session import RequestDatabase
from graphql_schema.execution import RowExecution
from graphql_schema.scalars import BIGINT_SCALAR, BigInt
from resolvers.alerts import _writing
from tests.factories import add_user, event, graphql, make_ingest_token, make_tenant, post_events

VIEWER = "{ viewer { name } organization { name } }"
TABLE = (
    "{ organization { endpointUsage(timeRange: {preset: LAST_7_DAYS}) "
    "{ endpoint calls creditsConsumed percentOfTotal isOther } } }"
)


async def test_a_revoked_token_is_refused_at_once_by_every_worker(
    client, second_worker, engine, clock
):
    tenant = await make_tenant(engine, now=clock())
    _, token_id, token = await add_user(engine, tenant, role="ADMIN", now=clock())
    for worker in (client, second_worker):
        for _ in range(3):  # warm: whatever a worker could remember, it has seen
            assert (await graphql(worker, token, VIEWER)).status_code == 200
    async with writing(engine) as conn:
        assert await revoke_token(conn, token_id=token_id, now=clock())
    for worker in (client, second_worker):
        response = await graphql(worker, token, VIEWER)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # The other tokens of the organization still work.
    assert (await graphql(second_worker, tenant.token, VIEWER)).status_code == 200


async def test_two_tenants_taking_turns_each_read_their_own(client, engine, clock):
    ingest = await make_ingest_token(engine, now=clock())
    tenants = [await make_tenant(engine, now=clock()) for _ in range(2)]
    for number, tenant in enumerate(tenants):
        events = [
            event(tenant.slug, clock() - timedelta(hours=1), endpoint=f"/t{number}", credits=5)
        ]
        assert (await post_events(client, ingest, events)).status_code == 200
    for _ in range(3):
        for number, tenant in enumerate(tenants):
            body = (await graphql(client, tenant.token, TABLE)).json()
            rows = body["data"]["organization"]["endpointUsage"]
            assert [(row["endpoint"], row["creditsConsumed"]) for row in rows] == [
                (f"/t{number}", 5)
            ]
            viewer = (await graphql(client, tenant.token, VIEWER)).json()["data"]
            assert viewer["organization"]["name"] == tenant.slug.title()


async def test_a_new_event_is_in_the_next_answer(client, engine, clock):
    ingest = await make_ingest_token(engine, now=clock())
    tenant = await make_tenant(engine, now=clock())
    seen = []
    for credits in (3, 4):
        event_ = event(tenant.slug, clock() - timedelta(minutes=30), credits=credits)
        assert (await post_events(client, ingest, [event_])).status_code == 200
        body = (await graphql(client, tenant.token, TABLE)).json()
        seen.append(body["data"]["organization"]["endpointUsage"][0]["creditsConsumed"])
    assert seen == [3, 7]


# --- rows completed in one step --------------------------------------------------------


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Row:
    name: str
    count: int
    share: float
    note: str | None
    colour: Colour

    @strawberry.field
    def shout(self) -> str:  # a resolver: the row takes graphql-core's path
        return self.name.upper()


@strawberry.type
class Strict:
    name: str  # non-null, but the source holds None: graphql-core's error


class Broken:
    """A source whose attribute read fails."""

    @property
    def name(self) -> str:
        raise RuntimeError("unreadable")


class Text(str):
    """A string of a subclass: String's coercion must see it (it returns it as it is)."""


@strawberry.type
class Scalars:
    """Values at the edges of what a scalar's coercion returns unchanged (R21)."""

    name: str
    count: int
    share: float
    flag: bool
    big: BigInt


def _scalars(**values: object) -> list[Scalars]:
    fields = {"name": "s", "count": 1, "share": 0.5, "flag": True, "big": BigInt(2**40)}
    return [Scalars(**{**fields, **values})]  # type: ignore[arg-type]


@strawberry.type
class Query:
    @strawberry.field
    def edges(self) -> list[Scalars]:
        return [
            *_scalars(),
            *_scalars(count=2**31 - 1, share=-0.0, flag=False, big=BigInt(-(2**63))),
            *_scalars(count=True, share=3, flag=1, big=True, name=Text("t")),
        ]

    @strawberry.field
    def too_big(self) -> list[Scalars]:
        return _scalars(count=2**31)

    @strawberry.field
    def not_a_number(self) -> list[Scalars]:
        return _scalars(share=float("nan"))

    @strawberry.field
    def infinite(self) -> list[Scalars]:
        return _scalars(share=float("inf"))

    @strawberry.field
    def rows(self) -> list[Row]:
        return [
            Row(name="a", count=7, share=12.5, note=None, colour=Colour.RED),
            Row(name="b", count=0, share=0.0, note="n", colour=Colour.BLUE),
        ]

    @strawberry.field
    def strict(self) -> list[Strict]:
        return [Strict(name="ok"), Strict(name=None)]  # type: ignore[arg-type]

    @strawberry.field
    def broken(self) -> list[Strict | None]:
        return [Broken()]  # type: ignore[list-item]

    @strawberry.field
    def bad_count(self) -> list[Row]:
        return [Row(name="x", count="many", share=1.0, note=None, colour=Colour.RED)]  # type: ignore[arg-type]


CONFIG = StrawberryConfig(scalar_map={BigInt: BIGINT_SCALAR})
DOCUMENTS = [
    "{ rows { name count share note colour } }",
    "{ rows { __typename n: name c: count ...F } } fragment F on Row { note colour }",
    "query($s: Boolean!) { rows { name @include(if: $s) count @skip(if: $s) shout } }",
    "{ strict { name } }",
    "{ broken { name } }",
    "{ badCount { count } }",
    "{ rows { name } strict { name } }",
    "{ edges { name count share flag big } }",
    "{ tooBig { count } }",
    "{ notANumber { share } }",
    "{ infinite { name share } }",
]
ERRORS = ("strict", "broken", "badCount", "tooBig", "notANumber", "infinite")


class CountingRows(RowExecution):
    completed = 0

    @staticmethod
    def _row(*args, **kwargs):  # type: ignore[no-untyped-def]
        row = RowExecution._row(*args, **kwargs)
        CountingRows.completed += row is not None
        return row


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_rows_in_one_step_answer_as_graphql_core_does(document):
    usual = strawberry.Schema(query=Query, config=CONFIG)
    fast = strawberry.Schema(query=Query, execution_context_class=CountingRows, config=CONFIG)
    variables = {"s": True}
    expected = await usual.execute(document, variable_values=variables)
    got = await fast.execute(document, variable_values=variables)
    assert got.data == expected.data
    # The same values of the same types: JSON would not tell 1 from 1.0 or True.
    assert repr(got.data) == repr(expected.data)
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    if any(name in document for name in ERRORS):
        assert got.errors  # the error cases above really are errors


async def test_plain_rows_take_the_one_step_path():
    fast = strawberry.Schema(query=Query, execution_context_class=CountingRows, config=CONFIG)
    CountingRows.completed = 0
    result = await fast.execute("{ rows { name count share note colour } }")
    assert result.errors is None
    assert CountingRows.completed == 2
    result = await fast.execute("{ rows { name shout } }")  # a resolver: the usual path
    assert CountingRows.completed == 2
    result = await fast.execute("{ edges { name count share flag big } }")
    assert result.errors is None
    assert CountingRows.completed == 5


# --- PostgreSQL reads in autocommit, writes in a transaction ---------------------------


class _Context:
    def __init__(self, db: RequestDatabase) -> None:
        self.db = db


async def _write_then_fail(db: RequestDatabase) -> None:
    async with _writing(_Context(db)) as conn:  # type: ignore[arg-type]
        await conn.execute(
            text(
                "INSERT INTO organizations (slug, name, plan, timezone, "
                "credit_allowance, billing_cycle_anchor, created_at) VALUES "
                "('gone', 'Gone', 'PRO', 'UTC', 1, '2026-01-01', '2026-01-01')"
            )
        )
        raise RuntimeError("fails after writing")


async def test_a_write_on_a_reading_connection_is_one_transaction(engine, is_postgres):
    reading = engine.execution_options(isolation_level="AUTOCOMMIT") if is_postgres else engine
    db = RequestDatabase(reading)
    try:
        async with db.connection() as conn:
            await conn.execute(text("SELECT 1"))  # a read first, as authentication does
        with pytest.raises(RuntimeError):
            await _write_then_fail(db)
    finally:
        await db.close()
    async with engine.connect() as conn:
        found = await conn.execute(text("SELECT count(*) FROM organizations WHERE slug = 'gone'"))
        assert found.scalar_one() == 0
