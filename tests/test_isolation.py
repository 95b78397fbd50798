"""Tenant isolation: a token of organization A never reads anything of organization B.

The matrix is built by walking the schema from ``Query``: every field reachable from it gets
a generated query (arguments filled by type, every scalar below selected), so a field added
tomorrow is in the matrix without anyone writing a test for it. A field with an argument the
walker cannot fill fails the collection, rather than escaping it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from app.settings import Settings
from tests.factories import add_user, event, graphql, make_ingest_token, make_tenant, post_events
from tests.schema_walk import IDS, KEY_PLACEHOLDER, PATHS, field_of, query_for

MARKER = "bravo"  # every name of organization B contains it; nothing of A does


@pytest.fixture
def settings(clean_database):
    # The generated queries select everything below a field: far costlier than a real one.
    return Settings(database_url=clean_database, max_query_cost=100_000_000)


@dataclass(frozen=True)
class World:
    alpha: object
    bravo: object
    bravo_cursor: str


async def seed(client, engine, clock) -> World:
    now = clock()
    alpha = await make_tenant(engine, now=now, slug="alpha-org")
    bravo = await make_tenant(engine, now=now, slug="bravo-org")
    ingest = await make_ingest_token(engine, now=now)
    at = now - timedelta(days=2)
    events = [
        event(
            "alpha-org",
            at,
            api_key={"id": "key-alpha", "name": "Alpha key"},
            endpoint="/alpha/endpoint",
            source="alpha_source",
            user={"id": "alpha-user", "name": "Alpha User"},
        ),
        *[
            event(
                "bravo-org",
                at + timedelta(minutes=i),
                api_key={"id": f"key-bravo-{i}", "name": f"Bravo key {i}"},
                endpoint=f"/bravo/endpoint/{i}",
                source="bravo_source",
                user={"id": f"bravo-user-{i}", "name": "Bravo User"},
                credits=7,
            )
            for i in range(3)
        ],
    ]
    assert (await post_events(client, ingest, events)).json()["accepted"] == 4
    page = await graphql(
        client, bravo.token, "{ organization { apiKeys(first: 1) { pageInfo { endCursor } } } }"
    )
    cursor = page.json()["data"]["organization"]["apiKeys"]["pageInfo"]["endCursor"]
    return World(alpha, bravo, cursor)


async def ask(client, tenant, query: str, key: str) -> str:
    response = await graphql(client, tenant.token, query.replace(KEY_PLACEHOLDER, key))
    assert response.status_code == 200, response.text
    return response.text


def codes(text: str) -> set[str]:
    import json

    return {error["extensions"]["code"] for error in json.loads(text).get("errors", [])}


def test_the_walk_reaches_every_organization_field():
    for expected in [
        "Organization.endpointUsage",
        "Organization.apiKey",
        "ApiKey.usage",
        "UsageReport.byUser",
        "UsageReport.series",
        "UserUsage.user",
        "CreditPool.consumed",
    ]:
        assert expected in IDS


@pytest.mark.parametrize("path", PATHS, ids=IDS)
async def test_an_admin_of_a_reads_only_a(client, engine, clock, path):
    world = await seed(client, engine, clock)
    text = await ask(client, world.alpha, query_for(path), "key-alpha")
    assert codes(text) == set(), text
    assert MARKER not in text.lower()
    # The same query with B's token sees B: the marker is really there to be leaked.
    if any("Usage" in step.type_name or step.field_name.endswith("Usage") for step in path):
        bravo = await ask(client, world.bravo, query_for(path), "key-bravo-1")
        assert codes(bravo) == set(), bravo


@pytest.mark.parametrize("path", PATHS, ids=IDS)
async def test_aliases_and_fragments_do_not_cross_organizations(client, engine, clock, path):
    world = await seed(client, engine, clock)
    query = query_for(path, alias=True, fragment=True)
    text = await ask(client, world.alpha, query, "key-alpha")
    assert codes(text) == set(), text
    assert MARKER not in text.lower()


# A member is refused at the panel, whatever is asked below it: one path per field of
# Query and Organization (the deepest selection below each) covers every refusal.
MEMBER_PATHS = list({path[:2]: path for path in PATHS if len(path) <= 2}.values())


@pytest.mark.parametrize("path", MEMBER_PATHS, ids=[p[-1].coordinate for p in MEMBER_PATHS])
async def test_a_member_of_a_gets_null_panels_and_nothing_of_b(client, engine, clock, path):
    world = await seed(client, engine, clock)
    _, _, member = await add_user(engine, world.alpha, role="MEMBER", now=clock())
    response = await graphql(
        client, member, query_for(path).replace(KEY_PLACEHOLDER, "key-bravo-1")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert MARKER not in response.text.lower()
    assert codes(response.text) <= {"FORBIDDEN"}
    # A refused panel is null at its own path; the organization itself still answers.
    for error in body.get("errors", []):
        assert error["path"][:1] == ["organization"]
        assert body["data"]["organization"] is not None
        assert body["data"]["organization"][error["path"][1]] is None


ID_PATHS = [path for path in PATHS if KEY_PLACEHOLDER in "".join(s.arguments for s in path)]


@pytest.mark.parametrize("path", ID_PATHS, ids=[p[-1].coordinate for p in ID_PATHS])
async def test_an_id_of_b_answers_exactly_like_an_id_of_nobody(client, engine, clock, path):
    world = await seed(client, engine, clock)
    elsewhere = await ask(client, world.alpha, query_for(path), "key-bravo-1")
    nowhere = await ask(client, world.alpha, query_for(path), "key-nobody-1")
    assert elsewhere.replace("key-bravo-1", "key-nobody-1") == nowhere
    assert MARKER not in nowhere.lower()
    assert codes(nowhere) <= {"NOT_FOUND"}


def test_every_id_argument_is_in_the_matrix():
    coordinates = {path[-1].coordinate for path in ID_PATHS}
    assert {"Organization.apiKey", "Organization.endpointUsage", "Organization.usage"} <= (
        coordinates
    )


AFTER_PATHS = [path for path in PATHS if "after" in field_of(path[-1]).args]


@pytest.mark.parametrize("path", AFTER_PATHS, ids=[p[-1].coordinate for p in AFTER_PATHS])
async def test_a_cursor_of_b_pages_through_a_only(client, engine, clock, path):
    world = await seed(client, engine, clock)
    query = query_for(path).replace(
        f"{path[-1].field_name}(", f'{path[-1].field_name}(after: "{world.bravo_cursor}", ', 1
    )
    text = await ask(client, world.alpha, query, "key-alpha")
    assert MARKER not in text.lower()
    assert codes(text) <= {"BAD_USER_INPUT"}
    # And B's own cursor really leads somewhere for B.
    own = await ask(client, world.bravo, query, "key-bravo-1")
    assert MARKER in own.lower()


def test_the_matrix_covers_cursors():
    assert [path[-1].coordinate for path in AFTER_PATHS] == ["Organization.apiKeys"]
