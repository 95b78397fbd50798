"""The answer cache (app/answer_cache.py) reuses an answer only while it is still true.

Each test asks the same query twice or more and checks both that the cache was used where
it may be (the ``creditlens_answers`` counter) and that nothing stale, foreign or refused
was served: a new event (through this worker or another), another organization, a role or
plan taken away, the date moving on, a "to date" comparison, the fields the policy leaves
out, and answers with errors. A revoked token is refused by every worker though its answer
is kept: tests/test_read_path.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from graphql import GraphQLObjectType
from sqlalchemy import text

from app.answer_cache import Answer, AnswerCache, answer_key
from app.main import create_app
from app.settings import Settings
from db.engine import writing
from graphql_schema import answer_policy
from graphql_schema.schema import build_schema
from tests.factories import event, graphql, make_tenant, post_events

TABLE = (
    "{ organization { endpointUsage(timeRange: {preset: LAST_7_DAYS}) "
    "{ endpoint calls creditsConsumed } } }"
)


def reused(app: object) -> float:
    """How many answers this app reused so far."""
    registry = app.state.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value("creditlens_answers_total", {"reused": "true"})
    return value or 0.0


def credits(body: dict) -> list[tuple[str, int]]:  # type: ignore[type-arg]
    rows = body["data"]["organization"]["endpointUsage"]
    return [(row["endpoint"], row["creditsConsumed"]) for row in rows]


async def test_a_repeated_query_is_answered_again_without_running_it(
    app, client, tenant, ingest, clock
):
    sent = [event(tenant.slug, clock() - timedelta(hours=2), credits=4)]
    assert (await post_events(client, ingest, sent)).status_code == 200
    first = await graphql(client, tenant.token, TABLE)
    before = reused(app)
    second = await graphql(client, tenant.token, TABLE)
    assert reused(app) == before + 1
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    assert credits(second.json()) == [("/v2/person", 4)]
    # The same variables in another order are the same question.
    query = (
        "query($p: TimeRangePreset, $k: ID) { organization { "
        "endpointUsage(timeRange: {preset: $p}, keyId: $k) { calls } } }"
    )
    await graphql(client, tenant.token, query, {"p": "LAST_7_DAYS", "k": "key-a"})
    await graphql(client, tenant.token, query, {"k": "key-a", "p": "LAST_7_DAYS"})
    assert reused(app) == before + 2


async def test_a_new_event_is_in_the_next_answer_of_every_worker(
    app, client, second_worker, tenant, ingest, clock
):
    for worker in (client, second_worker):
        for _ in range(2):
            body = (await graphql(worker, tenant.token, TABLE)).json()
            assert credits(body) == []
    for total in (3, 7):
        sent = [event(tenant.slug, clock() - timedelta(minutes=30), credits=4 if total == 7 else 3)]
        # Ingested through the first worker; the second answers from its own cache otherwise.
        assert (await post_events(client, ingest, sent)).status_code == 200
        for worker in (second_worker, client):
            assert credits((await graphql(worker, tenant.token, TABLE)).json()) == [
                ("/v2/person", total)
            ]


async def test_another_organization_never_gets_a_kept_answer(app, client, engine, ingest, clock):
    tenants = [await make_tenant(engine, now=clock()) for _ in range(2)]
    for number, tenant in enumerate(tenants):
        sent = [event(tenant.slug, clock() - timedelta(hours=1), endpoint=f"/t{number}")]
        assert (await post_events(client, ingest, sent)).status_code == 200
    for _ in range(3):
        for number, tenant in enumerate(tenants):
            body = (await graphql(client, tenant.token, TABLE)).json()
            assert credits(body) == [(f"/t{number}", 1)]
    assert reused(app) == 4


async def test_a_role_or_plan_taken_away_takes_effect_at_once(app, client, engine, tenant):
    for _ in range(2):
        assert credits((await graphql(client, tenant.token, TABLE)).json()) == []
    async with writing(engine) as conn:
        await conn.execute(
            text("UPDATE users SET role = 'MEMBER' WHERE id = :id"), {"id": tenant.user_id}
        )
    body = (await graphql(client, tenant.token, TABLE)).json()
    assert body["data"]["organization"]["endpointUsage"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with writing(engine) as conn:
        await conn.execute(
            text("UPDATE users SET role = 'ADMIN' WHERE id = :id"), {"id": tenant.user_id}
        )
        await conn.execute(
            text("UPDATE organizations SET plan = 'FREE' WHERE id = :id"),
            {"id": tenant.organization_id},
        )
    body = (await graphql(client, tenant.token, TABLE)).json()
    assert body["data"]["organization"]["endpointUsage"] is None
    assert body["errors"][0]["extensions"]["code"] == "PLAN_REQUIRED"


async def test_a_kept_answer_ends_when_the_date_moves_on(app, client, tenant, ingest, clock):
    clock.now = datetime(2026, 3, 10, 23, 59, tzinfo=UTC)
    sent = [event(tenant.slug, datetime(2026, 3, 4, 12, 0, tzinfo=UTC), credits=9)]
    assert (await post_events(client, ingest, sent)).status_code == 200
    for _ in range(2):  # LAST_7_DAYS is 4 to 10 March until midnight
        assert credits((await graphql(client, tenant.token, TABLE)).json()) == [("/v2/person", 9)]
    assert reused(app) == 1
    clock.now = datetime(2026, 3, 11, 0, 0, tzinfo=UTC)  # 5 to 11 March: the event is out
    assert credits((await graphql(client, tenant.token, TABLE)).json()) == []
    assert reused(app) == 1


@pytest.mark.parametrize(
    "query",
    [
        # A running period compared "to date": as much as has elapsed moves with the instant.
        "{ organization { usage(timeRange: {preset: THIS_MONTH}) { calls "
        "previous(alignment: TO_DATE) { calls } } } }",
        "{ organization { usage(timeRange: {preset: TODAY}) { "
        "change(alignment: TO_DATE) { callsPercent } } } }",
        # Fields the policy leaves out: they read the clock or tables no event moves.
        "{ organization { creditPool { consumed remaining } } }",
        "{ organization { alerts { id } } }",
        "{ __schema { queryType { name } } }",
        # An answer with an error.
        "{ organization { endpointUsage(timeRange: {preset: LAST_7_DAYS}, limit: 0) "
        "{ endpoint } } }",
    ],
)
async def test_what_may_change_by_itself_is_never_reused(app, client, tenant, query):
    first = await graphql(client, tenant.token, query)
    second = await graphql(client, tenant.token, query)
    assert second.json() == first.json()
    assert reused(app) == 0


async def test_a_running_period_compared_in_full_is_reused_until_midnight(
    app, client, tenant, ingest, clock
):
    query = (
        "{ organization { usage(timeRange: {preset: THIS_MONTH}) { calls "
        "previous { calls } change { callsPercent } } } }"
    )
    clock.now = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
    sent = [event(tenant.slug, datetime(2026, 3, 31, 12, 0, tzinfo=UTC))]
    assert (await post_events(client, ingest, sent)).status_code == 200
    for _ in range(2):
        body = (await graphql(client, tenant.token, query)).json()
        assert body["data"]["organization"]["usage"]["calls"] == 1
    assert reused(app) == 1
    clock.now = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)  # April: last month's call is previous
    usage = (await graphql(client, tenant.token, query)).json()["data"]["organization"]["usage"]
    assert (usage["calls"], usage["previous"]["calls"]) == (0, 1)
    assert reused(app) == 1


async def test_a_cache_of_size_zero_keeps_nothing(clean_database, clock, engine):
    application = create_app(
        Settings(database_url=clean_database, answer_cache_bytes=0), clock=clock
    )
    tenant = await make_tenant(engine, now=clock())
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for _ in range(3):
                assert (await graphql(http, tenant.token, TABLE)).status_code == 200
    assert reused(application) == 0


def test_the_cache_is_bounded_and_drops_the_least_recently_used():
    cache = AnswerCache(max_bytes=64 * 1024)
    until = datetime(2030, 1, 1, tzinfo=UTC)
    keys = []
    for number in range(40):
        key = answer_key(None, None, "application/json", f"q{number}", None, {}, None)  # type: ignore[arg-type]
        assert key is not None
        keys.append(key)
        cache.put(key, Answer(b"x" * 2000, 200, until, (), 1))
        assert cache.bytes <= cache.max_bytes
        cache.get(keys[0], until - timedelta(days=1))  # the first stays in use
    assert cache.get(keys[0], until - timedelta(days=1)) is not None
    assert cache.get(keys[1], until - timedelta(days=1)) is None
    assert cache.get(keys[0], until) is None  # expired, and dropped
    assert cache.get(keys[-1], until - timedelta(days=1)) is not None
    big = answer_key(None, None, "application/json", "big", None, {}, None)  # type: ignore[arg-type]
    assert big is not None
    cache.put(big, Answer(b"x" * 10_000, 200, until, (), 1))  # over an eighth: not kept
    assert cache.get(big, until - timedelta(days=1)) is None


def test_every_object_type_is_judged_by_the_answer_policy():
    graphql_schema = build_schema(Settings())._schema
    types = {
        name
        for name, kind in graphql_schema.type_map.items()
        if isinstance(kind, GraphQLObjectType) and not name.startswith("__")
    }
    judged = answer_policy.WHOLE_TYPES | set(answer_policy.SOME_FIELDS) | set(answer_policy.NEVER)
    assert types == judged
    for name, fields in answer_policy.SOME_FIELDS.items():
        assert fields <= set(graphql_schema.type_map[name].fields)  # type: ignore[union-attr]
