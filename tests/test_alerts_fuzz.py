"""Fuzzing the mutations: hypothesis-graphql generates valid mutations from schema.graphql
(any names, ids, windows, thresholds, URLs) and sends them as an admin of organization A,
whose alerts and keys exist. No answer is a 500, every error has a code, nothing of
organization B leaks, and B's alert is never changed.

The guard is lifted (``webhook_allow_insecure``) so that generated host names are never
looked up, and no dispatcher runs: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes
from sqlalchemy import select

from app.main import create_app
from app.settings import Settings
from db.tables import alerts
from tests.alerts_receiver import create_alert
from tests.factories import event, make_ingest_token, make_tenant, post_events

SCHEMA_SDL = (Path(__file__).resolve().parent.parent / "schema.graphql").read_text()
MAX_EXAMPLES = 150
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
# Ids of A's alerts (2 to 9) and keys, B's alert (1) and key, junk and arbitrary strings,
# a third each. B's data (names, URL), not its ids, carry the marker, since an error may
# echo the id asked for.
IDS = st.one_of(
    st.sampled_from([str(n) for n in range(2, 10)] + ["key-alpha"]),
    st.sampled_from(["1", "key-b", "0", "-1", "99999999999999999999", " 2", "2.0"]),
    st.text(max_size=30),
).map(nodes.String)
CUSTOM_SCALARS = {
    "BigInt": st.integers(-(2**63), 2**63 - 1).map(nodes.Int),
    "ID": IDS,
}


@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <coroutine object:pytest.PytestUnraisableExceptionWarning"
)
def test_generated_mutations_never_fail_leak_or_cross_organizations(clean_database):
    application = create_app(
        Settings(
            database_url=clean_database,
            rate_limit_per_minute=0,
            webhook_allow_insecure=True,
            webhook_dispatcher=False,
        ),
        clock=lambda: NOW,
    )
    seen: dict[str, object] = {"count": 0, "answered": 0, "codes": set()}
    with asyncio.Runner() as runner:
        state = runner.run(_start(application))
        try:

            @hypothesis_settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(mutation=mutations(SCHEMA_SDL, custom_scalars=CUSTOM_SCALARS, allow_x00=False))
            def check(mutation):
                seen["count"] += 1
                response = runner.run(_ask(state, mutation))
                assert response.status_code < 500, (mutation, response.text)
                body = response.json()
                if body.get("data"):
                    seen["answered"] += 1
                for error in body.get("errors", []):
                    seen["codes"].add(error.get("extensions", {}).get("code"))
                    assert error.get("extensions", {}).get("code"), (mutation, error)
                    assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", (
                        mutation,
                        error,
                    )
                assert "bravo" not in response.text.lower(), (mutation, response.text)

            check()
            bravo = runner.run(_bravo_alert(application))
        finally:
            runner.run(_stop(state))
    assert seen["count"] >= MAX_EXAMPLES
    # The generator reached both sides: mutations that did something, and coded refusals.
    assert seen["answered"] > 0
    assert {"BAD_USER_INPUT", "NOT_FOUND"} <= seen["codes"], seen
    assert bravo == ("bravo budget", 1, "http://127.0.0.1:9/bravo")


async def _start(application):
    lifespan = application.router.lifespan_context(application)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver"
    )
    engine = application.state.engine
    bravo = await make_tenant(engine, now=NOW, slug="bravo-org")
    alpha = await make_tenant(engine, now=NOW, slug="alpha-org")
    ingest = await make_ingest_token(engine, now=NOW)
    events = [
        event("bravo-org", NOW - timedelta(hours=1), api_key={"id": "key-b", "name": "Bravo key"}),
        event("alpha-org", NOW - timedelta(hours=1), api_key="key-alpha"),
    ]
    assert (await post_events(client, ingest, events)).status_code == 200
    await create_alert(
        client,
        bravo.token,
        name="bravo budget",
        thresholdCredits=1,
        webhookUrl="http://127.0.0.1:9/bravo",
    )
    for number in range(8):
        await create_alert(client, alpha.token, name=f"alpha {number}", thresholdCredits=1)
    return {"lifespan": lifespan, "client": client, "token": alpha.token}


async def _ask(state, mutation):
    return await state["client"].post(
        "/graphql",
        json={"query": mutation},
        headers={"Authorization": f"Bearer {state['token']}"},
    )


async def _bravo_alert(application):
    async with application.state.engine.connect() as conn:
        row = (
            await conn.execute(
                select(alerts.c.name, alerts.c.threshold_credits, alerts.c.webhook_url).where(
                    alerts.c.id == 1
                )
            )
        ).one()
    return tuple(row)


async def _stop(state):
    await state["client"].aclose()
    await state["lifespan"].__aexit__(None, None, None)
