"""Fuzzing: hypothesis-graphql generates valid queries from schema.graphql and sends them with
an admin, a member, a free-plan admin and a foreign admin (of organization B). No answer is a
500, every error has a code, and nothing of organization B reaches the others.

The test runs its own event loop (``asyncio.Runner``) so hypothesis can drive it example by
example and shrink a failure to a small query.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes, queries

from app.main import create_app
from app.settings import Settings
from tests.factories import add_user, event, make_ingest_token, make_tenant, post_events

SCHEMA_SDL = (Path(__file__).resolve().parent.parent / "schema.graphql").read_text()
MAX_EXAMPLES = 300
MARKER = "bravo"

instants = st.datetimes(
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis adds the zone below
    max_value=datetime(2027, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
).map(lambda value: nodes.String(value.isoformat()))
CUSTOM_SCALARS = {"DateTime": instants, "BigInt": st.integers(0, 2**40).map(nodes.Int)}
ROLES = ["admin", "member", "free_admin", "foreign_admin"]


# graphql-core 3.2 abandons the pending coroutines of sibling fields when a non-null field
# fails (here: a permission denial propagating to ``organization``); they are collected
# unawaited. Harmless, and not ours: only that warning is ignored.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <coroutine object:pytest.PytestUnraisableExceptionWarning"
)
def test_generated_queries_never_fail_or_leak(clean_database, record_property, capsys):
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    application = create_app(
        Settings(database_url=clean_database, rate_limit_per_minute=0), clock=lambda: now
    )
    cases = {"count": 0, "statuses": set()}
    with asyncio.Runner() as runner:
        state = runner.run(_start(application, now))
        try:

            @hypothesis_settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(
                query=queries(SCHEMA_SDL, custom_scalars=CUSTOM_SCALARS, allow_x00=False),
                role=st.sampled_from(ROLES),
            )
            def check(query, role):
                cases["count"] += 1
                response = runner.run(_ask(state, role, query))
                cases["statuses"].add(response.status_code)
                assert response.status_code < 500, (query, response.text)
                body = response.json()
                for error in body.get("errors", []):
                    assert error.get("extensions", {}).get("code"), (query, error)
                if role != "foreign_admin":
                    assert MARKER not in response.text.lower(), (query, response.text)
                else:
                    assert "alpha" not in response.text.lower(), (query, response.text)

            check()
        finally:
            runner.run(_stop(state))
    record_property("fuzz_cases", cases["count"])
    with capsys.disabled():
        sys.stdout.write(
            f"\nfuzz: {cases['count']} generated queries, "
            f"HTTP statuses {sorted(cases['statuses'])}\n"
        )
    assert cases["count"] >= MAX_EXAMPLES


async def _start(application, now):
    lifespan = application.router.lifespan_context(application)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver"
    )
    engine = application.state.engine
    alpha = await make_tenant(engine, now=now, slug="alpha-org")
    free = await make_tenant(engine, now=now, slug="alpha-free", plan="FREE")
    bravo = await make_tenant(engine, now=now, slug="bravo-org")
    _, _, member = await add_user(engine, alpha, role="MEMBER", now=now)
    ingest = await make_ingest_token(engine, now=now)
    events = []
    for org, name in (("alpha-org", "alpha"), ("alpha-free", "alpha"), ("bravo-org", "bravo")):
        for day in range(5):
            events.append(
                event(
                    org,
                    now - timedelta(days=day, hours=1),
                    api_key={"id": f"key-{name}-{day % 2}", "name": f"{name.title()} key"},
                    endpoint=f"/{name}/endpoint/{day % 3}",
                    source=f"{name}_source",
                    user={"id": f"{name}-user", "name": f"{name.title()} User"},
                )
            )
    assert (await post_events(client, ingest, events)).status_code == 200
    tokens = {
        "admin": alpha.token,
        "member": member,
        "free_admin": free.token,
        "foreign_admin": bravo.token,
    }
    return {"lifespan": lifespan, "client": client, "tokens": tokens}


async def _ask(state, role, query):
    return await state["client"].post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {state['tokens'][role]}"},
    )


async def _stop(state):
    await state["client"].aclose()
    await state["lifespan"].__aexit__(None, None, None)
