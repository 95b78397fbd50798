"""The alert mutations and Organization.alerts: validation with coded errors and no partial
writes, the secret shown once and encrypted at rest, permissions, tenant isolation."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from app.settings import Settings
from app.webhooks.secret_box import SecretBox
from db.tables import alerts, webhook_deliveries
from tests.alerts_receiver import CREATE_ALERT, alerts_of, create_alert
from tests.factories import add_user, event, graphql, make_ingest_token, make_tenant, post_events

UPDATE = """
mutation Update($id: ID!, $input: UpdateAlertInput!) {
  updateAlert(id: $id, input: $input) {
    id name window thresholdCredits thresholdPercentOfAllowance effectiveThresholdCredits
    webhookUrl enabled apiKey { id }
  }
}
"""
DELETE = "mutation Delete($id: ID!) { deleteAlert(id: $id) }"
TEST = """
mutation Test($id: ID!) {
  sendTestWebhook(alertId: $id) { id event status attempts responseStatus nextAttemptAt }
}
"""


@pytest.fixture
def settings(clean_database):
    return Settings(
        database_url=clean_database, webhook_allow_insecure=True, webhook_dispatcher=False
    )


async def count(engine, table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def error_of(response) -> dict:
    body = response.json()
    [error] = body["errors"]
    assert body["data"] is None
    return error


async def with_key(client, engine, clock, slug: str, key: str) -> None:
    token = await make_ingest_token(engine, now=clock())
    ok = await post_events(client, token, [event(slug, clock() - timedelta(hours=1), api_key=key)])
    assert ok.status_code == 200


async def test_create_returns_the_secret_once_and_stores_it_encrypted(
    client, engine, clock, settings
):
    tenant = await make_tenant(engine, now=clock(), slug="acme", allowance=5000)
    alert, secret = await create_alert(
        client,
        tenant.token,
        name="  Monthly 80 %  ",
        window="MONTH",
        thresholdPercentOfAllowance=80,
        webhookUrl="https://hooks.example.com/in",
    )
    assert alert == {
        "id": alert["id"],
        "name": "Monthly 80 %",
        "window": "MONTH",
        "state": "OK",
        "thresholdCredits": None,
        "thresholdPercentOfAllowance": 80.0,
        "effectiveThresholdCredits": 4000,
        "webhookUrl": "https://hooks.example.com/in",
        "enabled": True,
        "apiKey": None,
    }
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    async with engine.connect() as conn:
        stored = (await conn.execute(select(alerts.c.signing_secret))).scalar_one()
    assert secret[6:] not in stored
    assert SecretBox(settings.webhook_secret_key.get_secret_value()).open(stored) == secret
    # Nothing reads it back: the list shows no secret, the stored one is encrypted.
    listed = await graphql(client, tenant.token, "{ organization { alerts { id name } } }")
    assert secret not in listed.text


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        (
            {"thresholdCredits": 10, "thresholdPercentOfAllowance": 5.0},
            "input.thresholdCredits",
            "BAD_USER_INPUT",
        ),
        ({}, "input.thresholdCredits", "BAD_USER_INPUT"),
        ({"thresholdCredits": 0}, "input.thresholdCredits", "BAD_USER_INPUT"),
        (
            {"thresholdPercentOfAllowance": -1.0},
            "input.thresholdPercentOfAllowance",
            "BAD_USER_INPUT",
        ),
        ({"thresholdCredits": 5, "name": " "}, "input.name", "BAD_USER_INPUT"),
        ({"thresholdCredits": 5, "webhookUrl": "ftp://x/y"}, "input.webhookUrl", "BAD_USER_INPUT"),
        ({"thresholdCredits": 5, "keyId": "nope"}, "input.keyId", "NOT_FOUND"),
    ],
    ids=["both", "neither", "zero", "negative-percent", "blank-name", "ftp", "unknown-key"],
)
async def test_bad_input_is_a_coded_error_naming_the_field_and_writes_nothing(
    client, engine, clock, fields, field, code
):
    tenant = await make_tenant(engine, now=clock())
    values = {"name": "Budget", "window": "DAY", "webhookUrl": "http://127.0.0.1:9/", **fields}
    response = await graphql(client, tenant.token, CREATE_ALERT, {"input": values})
    assert response.status_code == 200
    error = error_of(response)
    assert error["extensions"] == {"code": code, "field": field}
    assert await count(engine, alerts) == 0


@pytest.mark.parametrize(
    "values",
    [
        {"window": "YEAR"},
        {"thresholdCredits": "ten"},
        {"thresholdCredits": 2**64},
        {"name": None},
    ],
    ids=["unknown-window", "string-credits", "huge-credits", "null-name"],
)
async def test_values_graphql_cannot_coerce_are_bad_user_input(client, engine, clock, values):
    tenant = await make_tenant(engine, now=clock())
    base = {"name": "Budget", "window": "DAY", "webhookUrl": "http://127.0.0.1:9/"}
    response = await graphql(client, tenant.token, CREATE_ALERT, {"input": {**base, **values}})
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert await count(engine, alerts) == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/in", "https://"),
        ("https://127.0.0.1/in", "loopback"),
        ("https://[::1]:8443/in", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("https://localhost/in", "loopback"),
        ("https://10.0.0.7/in", "private"),
    ],
)
async def test_the_guard_refuses_non_public_webhook_urls(clean_database, clock, url, reason):
    import httpx

    from app.main import create_app

    app = create_app(Settings(database_url=clean_database, webhook_dispatcher=False), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            tenant = await make_tenant(app.state.engine, now=clock())
            values = {"name": "B", "window": "DAY", "thresholdCredits": 5, "webhookUrl": url}
            error = error_of(await graphql(client, tenant.token, CREATE_ALERT, {"input": values}))
            assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input.webhookUrl"}
            assert reason in error["message"]
            assert await count(app.state.engine, alerts) == 0


async def test_update_changes_only_what_it_names(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), slug="acme", allowance=1000)
    await with_key(client, engine, clock, "acme", "key-a")
    alert, _ = await create_alert(client, tenant.token, keyId="key-a", thresholdCredits=50)

    async def update(input_):
        response = await graphql(client, tenant.token, UPDATE, {"id": alert["id"], "input": input_})
        body = response.json()
        assert "errors" not in body, body
        return body["data"]["updateAlert"]

    renamed = await update({"name": "Renamed"})
    assert (renamed["name"], renamed["thresholdCredits"], renamed["apiKey"]) == (
        "Renamed",
        50,
        {"id": "key-a"},
    )
    switched = await update({"thresholdPercentOfAllowance": 12.5, "window": "WEEK"})
    assert switched["thresholdCredits"] is None
    assert switched["thresholdPercentOfAllowance"] == 12.5
    assert switched["effectiveThresholdCredits"] == 125
    assert switched["window"] == "WEEK"
    assert switched["apiKey"] == {"id": "key-a"}  # keyId omitted: unchanged
    widened = await update({"keyId": None, "enabled": False})
    assert widened["apiKey"] is None
    assert widened["enabled"] is False
    assert widened["name"] == "Renamed"


async def test_a_failed_update_changes_nothing(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    alert, _ = await create_alert(client, tenant.token, thresholdCredits=50)
    response = await graphql(
        client,
        tenant.token,
        UPDATE,
        {"id": alert["id"], "input": {"name": "New", "keyId": "missing-key"}},
    )
    assert error_of(response)["extensions"] == {"code": "NOT_FOUND", "field": "input.keyId"}
    [listed] = await alerts_of(client, tenant.token)
    assert listed["id"] == alert["id"]
    names = await graphql(client, tenant.token, "{ organization { alerts { name } } }")
    assert names.json()["data"]["organization"]["alerts"] == [{"name": "Budget"}]


async def test_delete_removes_the_alert_and_its_deliveries(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    alert, _ = await create_alert(client, tenant.token, thresholdCredits=50)
    await graphql(client, tenant.token, TEST, {"id": alert["id"]})
    assert await count(engine, webhook_deliveries) == 1
    deleted = await graphql(client, tenant.token, DELETE, {"id": alert["id"]})
    assert deleted.json() == {"data": {"deleteAlert": True}}
    assert (await count(engine, alerts), await count(engine, webhook_deliveries)) == (0, 0)
    again = await graphql(client, tenant.token, DELETE, {"id": alert["id"]})
    assert error_of(again)["extensions"] == {"code": "NOT_FOUND", "field": "id"}


async def test_a_test_webhook_is_queued_with_the_current_window(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), slug="acme")
    await with_key(client, engine, clock, "acme", "key-a")
    alert, _ = await create_alert(client, tenant.token, keyId="key-a", thresholdCredits=50)
    response = await graphql(client, tenant.token, TEST, {"id": alert["id"]})
    delivery = response.json()["data"]["sendTestWebhook"]
    assert delivery["event"] == "alert.test"
    assert delivery["status"] == "PENDING"
    assert delivery["attempts"] == 0
    assert delivery["id"].startswith("msg_")
    async with engine.connect() as conn:
        stored = (await conn.execute(select(webhook_deliveries.c.payload))).scalar_one()
    payload = json.loads(stored)
    assert payload["type"] == "alert.test"
    assert payload["id"] == delivery["id"]
    assert payload["data"]["creditsConsumed"] == 1
    assert payload["data"]["apiKey"] == {"id": "key-a", "name": "key-a"}
    [listed] = await alerts_of(client, tenant.token)
    assert listed["state"] == "OK"  # a test is not a crossing
    assert [d["id"] for d in listed["deliveries"]] == [delivery["id"]]


async def test_mutations_are_refused_over_get(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    response = await client.get(
        "/graphql",
        params={"query": 'mutation { deleteAlert(id: "1") }'},
        headers={"Authorization": f"Bearer {tenant.token}", "Accept": "application/json"},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


MUTATIONS = {
    "createAlert": (
        'mutation { createAlert(input: {name: "x", window: DAY, thresholdCredits: 1, '
        'webhookUrl: "http://127.0.0.1:9/"}) { signingSecret } }'
    ),
    "updateAlert": 'mutation { updateAlert(id: "ID", input: {name: "y"}) { id } }',
    "deleteAlert": 'mutation { deleteAlert(id: "ID") }',
    "sendTestWebhook": 'mutation { sendTestWebhook(alertId: "ID") { id } }',
}


@pytest.mark.parametrize("name", MUTATIONS)
@pytest.mark.parametrize(
    ("plan", "role", "code"),
    [
        ("PRO", "MEMBER", "FORBIDDEN"),
        ("FREE", "ADMIN", "PLAN_REQUIRED"),
        ("FREE", "MEMBER", "FORBIDDEN"),
    ],
    ids=["member", "free-admin", "free-member"],
)
async def test_only_admins_on_a_paid_plan_may_change_alerts(
    client, engine, clock, name, plan, role, code
):
    owner = await make_tenant(engine, now=clock(), plan=plan)
    # The alert exists: a refusal must come from the permission, not from NOT_FOUND.
    async with engine.begin() as conn:
        from db.queries.alerts import create_alert as insert_alert
        from domain.alerts import AlertWindow, Threshold

        alert_id = await insert_alert(
            conn,
            organization_id=owner.organization_id,
            name="kept",
            api_key_id=None,
            window=AlertWindow.DAY,
            threshold=Threshold(5, None),
            webhook_url="http://127.0.0.1:9/",
            sealed_secret="x",
            now=clock(),
        )
    _, _, token = await add_user(engine, owner, role=role, now=clock())
    response = await graphql(client, token, MUTATIONS[name].replace("ID", str(alert_id)))
    error = error_of(response)
    assert error["extensions"]["code"] == code
    assert error["path"] == [name]
    assert (await count(engine, alerts), await count(engine, webhook_deliveries)) == (1, 0)
    async with engine.connect() as conn:
        assert (await conn.execute(select(alerts.c.name))).scalar_one() == "kept"


async def seed_two(client, engine, clock):
    alpha = await make_tenant(engine, now=clock(), slug="alpha-org")
    bravo = await make_tenant(engine, now=clock(), slug="bravo-org")
    await with_key(client, engine, clock, "bravo-org", "key-bravo")
    bravo_alert, _ = await create_alert(
        client,
        bravo.token,
        name="bravo budget",
        keyId="key-bravo",
        thresholdCredits=1,
        webhookUrl="http://127.0.0.1:9/bravo",
    )
    await graphql(client, bravo.token, TEST, {"id": bravo_alert["id"]})
    alpha_alert, _ = await create_alert(
        client, alpha.token, name="alpha budget", thresholdCredits=1
    )
    return alpha, bravo, alpha_alert, bravo_alert


async def test_an_admin_lists_only_the_alerts_of_their_organization(client, engine, clock):
    alpha, bravo, alpha_alert, _ = await seed_two(client, engine, clock)
    text = (
        await graphql(
            client,
            alpha.token,
            """{ organization { alerts {
        id name webhookUrl apiKey { id name } deliveries { id event } } } }""",
        )
    ).text
    assert "bravo" not in text.lower()
    assert json.loads(text)["data"]["organization"]["alerts"][0]["id"] == alpha_alert["id"]
    # B's own list does show B's alert and delivery: the marker is really there.
    query = "{ organization { alerts { name deliveries { id } } } }"
    own = (await graphql(client, bravo.token, query)).json()
    assert own["data"]["organization"]["alerts"][0]["name"] == "bravo budget"
    assert len(own["data"]["organization"]["alerts"][0]["deliveries"]) == 1


def without_id(response, alert_id: str) -> dict:
    """The answer with the id taken out of its message: all that may differ."""
    body = response.json()
    for error in body["errors"]:
        error["message"] = error["message"].replace(repr(alert_id), "<id>")
    return body


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (UPDATE, {"input": {"name": "stolen"}}),
        (DELETE, {}),
        (TEST, {}),
    ],
    ids=["update", "delete", "test-webhook"],
)
async def test_an_alert_of_another_organization_is_not_found_like_an_unknown_id(
    client, engine, clock, query, variables
):
    alpha, _, _, bravo_alert = await seed_two(client, engine, clock)
    bravo_id = bravo_alert["id"]
    unknown = str(int(bravo_id) + 1000)
    elsewhere = await graphql(client, alpha.token, query, {"id": bravo_id, **variables})
    nowhere = await graphql(client, alpha.token, query, {"id": unknown, **variables})
    not_an_id = await graphql(client, alpha.token, query, {"id": "abc", **variables})
    assert without_id(elsewhere, bravo_id) == without_id(nowhere, unknown)
    assert error_of(elsewhere)["extensions"]["code"] == "NOT_FOUND"
    assert error_of(not_an_id)["extensions"]["code"] == "NOT_FOUND"
    # B's alert is untouched, and received no extra delivery.
    async with engine.connect() as conn:
        names = (await conn.execute(select(alerts.c.name).order_by(alerts.c.id))).scalars().all()
        deliveries = await conn.execute(select(func.count()).select_from(webhook_deliveries))
    assert names == ["bravo budget", "alpha budget"]
    assert deliveries.scalar_one() == 1


async def test_a_key_of_another_organization_is_not_found_like_an_unknown_key(
    client, engine, clock
):
    alpha, _, _, _ = await seed_two(client, engine, clock)

    def attempt(key):
        values = {
            "name": "x",
            "window": "DAY",
            "thresholdCredits": 1,
            "keyId": key,
            "webhookUrl": "http://127.0.0.1:9/",
        }
        return graphql(client, alpha.token, CREATE_ALERT, {"input": values})

    elsewhere = (await attempt("key-bravo")).text
    nowhere = (await attempt("key-nobody")).text
    assert elsewhere.replace("key-bravo", "key-nobody") == nowhere
    assert "NOT_FOUND" in nowhere


async def store_alerts(engine, tenant, count: int, *, now) -> None:
    """``count`` alerts written straight into the database (faster than the mutation)."""
    from db.queries.alerts import create_alert as insert_alert
    from domain.alerts import AlertWindow, Threshold

    async with engine.begin() as conn:
        for number in range(count):
            await insert_alert(
                conn,
                organization_id=tenant.organization_id,
                name=f"a{number}",
                api_key_id=None,
                window=AlertWindow.DAY,
                threshold=Threshold(5, None),
                webhook_url="http://127.0.0.1:9/",
                sealed_secret="x",
                now=now,
            )


async def test_an_organization_has_at_most_100_alerts(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    await store_alerts(engine, tenant, 100, now=clock())
    values = {
        "name": "one more",
        "window": "DAY",
        "thresholdCredits": 1,
        "webhookUrl": "http://127.0.0.1:9/",
    }
    error = error_of(await graphql(client, tenant.token, CREATE_ALERT, {"input": values}))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input"}
    assert await count(engine, alerts) == 100


async def test_the_deliveries_of_a_list_of_alerts_load_in_one_statement(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    for number in range(5):
        alert, _ = await create_alert(client, tenant.token, name=f"a{number}", thresholdCredits=5)
        for _ in range(3):
            await graphql(client, tenant.token, TEST, {"id": alert["id"]})
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        query = "{ organization { alerts { id deliveries(first: 2) { id } } } }"
        body = (await graphql(client, tenant.token, query)).json()
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert [len(a["deliveries"]) for a in body["data"]["organization"]["alerts"]] == [2] * 5
    assert len([s for s in statements if "webhook_deliveries" in s]) == 1


async def test_deliveries_first_is_bounded(client, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    await create_alert(client, tenant.token, thresholdCredits=5)
    body = (
        await graphql(
            client, tenant.token, "{ organization { alerts { deliveries(first: 101) { id } } } }"
        )
    ).json()
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}


async def test_a_delete_racing_a_crossing_removes_the_new_message_too(client, engine, clock):
    """An ingest transaction has written a message for the alert and not committed yet: the
    delete waits for it, then removes the alert and that message (no dangling reference,
    no error)."""
    import asyncio

    from db.engine import writing
    from db.ingestion.writer import ingest_events, prepare

    tenant = await make_tenant(engine, now=clock(), slug="acme")
    alert, _ = await create_alert(client, tenant.token, thresholdCredits=10)
    valid = prepare([event("acme", clock() - timedelta(minutes=1), credits=50)], now=clock())
    async with writing(engine) as conn:
        await ingest_events(conn, valid, now=clock())
        deleting = asyncio.create_task(graphql(client, tenant.token, DELETE, {"id": alert["id"]}))
        await asyncio.sleep(0.5)
        assert not deleting.done()  # waiting for the ingest transaction
    response = await deleting
    assert response.json() == {"data": {"deleteAlert": True}}
    assert (await count(engine, alerts), await count(engine, webhook_deliveries)) == (0, 0)


async def test_concurrent_creations_cannot_pass_the_limit(client, engine, clock):
    import asyncio

    tenant = await make_tenant(engine, now=clock())
    await store_alerts(engine, tenant, 99, now=clock())
    values = {
        "name": "last one",
        "window": "DAY",
        "thresholdCredits": 1,
        "webhookUrl": "http://127.0.0.1:9/",
    }
    answers = await asyncio.gather(
        *(graphql(client, tenant.token, CREATE_ALERT, {"input": values}) for _ in range(5))
    )
    created = [a for a in answers if a.json()["data"] is not None]
    assert len(created) == 1
    assert await count(engine, alerts) == 100
