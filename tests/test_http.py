"""GraphQL over HTTP: methods, media types, status codes, CORS."""

from __future__ import annotations

import pytest

from app.settings import Settings
from tests.factories import make_tenant

GRAPHQL_RESPONSE = "application/graphql-response+json"
ORIGIN = "https://dashboard.example"


@pytest.fixture
def settings(clean_database):
    return Settings(database_url=clean_database, cors_allowed_origins=[ORIGIN])


@pytest.fixture
async def auth(engine, clock):
    tenant = await make_tenant(engine, now=clock())
    return {"Authorization": f"Bearer {tenant.token}"}


async def test_get_runs_a_query(client, auth):
    response = await client.get("/graphql", params={"query": "{ viewer { role } }"}, headers=auth)
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"role": "ADMIN"}}}
    assert response.headers["content-type"].startswith("application/json")


async def test_get_takes_variables_as_json(client, auth):
    params = {
        "query": "query($n: String!) { __type(name: $n) { name } }",
        "variables": '{"n": "Viewer"}',
    }
    response = await client.get("/graphql", params=params, headers=auth)
    assert response.json() == {"data": {"__type": {"name": "Viewer"}}}


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_a_mutation_over_get_is_405(client, auth, accept):
    response = await client.get(
        "/graphql",
        params={"query": "mutation { __typename }"},
        headers={**auth, "accept": accept},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_other_methods_are_405_with_allow(client, auth):
    response = await client.put("/graphql", json={"query": "{ viewer { id } }"}, headers=auth)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_graphql_response_json_is_answered_when_asked(client, auth):
    response = await client.post(
        "/graphql",
        json={"query": "{ viewer { role } }"},
        headers={**auth, "accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ viewer { ", None, "GRAPHQL_PARSE_FAILED"),
        ("{ viewer { nope } }", None, "GRAPHQL_VALIDATION_FAILED"),
        (
            "query($n: Int!) { organization { apiKeys(first: $n) { totalCount } } }",
            {"n": "x"},
            "BAD_USER_INPUT",
        ),
    ],
    ids=["parse", "validation", "variables"],
)
async def test_request_errors_are_400_without_data_in_graphql_response_json(
    client, auth, query, variables, code
):
    body = {"query": query, "variables": variables}
    strict = await client.post("/graphql", json=body, headers={**auth, "accept": GRAPHQL_RESPONSE})
    assert strict.status_code == 400
    assert "data" not in strict.json()
    assert strict.json()["errors"][0]["extensions"]["code"] == code
    # The legacy media type keeps 200, as the spec asks.
    legacy = await client.post(
        "/graphql", json=body, headers={**auth, "accept": "application/json"}
    )
    assert legacy.status_code == 200
    assert legacy.json()["errors"][0]["extensions"]["code"] == code


async def test_an_unacceptable_accept_is_406(client, auth):
    response = await client.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers={**auth, "accept": "text/csv"}
    )
    assert response.status_code == 406


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        ({}, b'{"query": "{ viewer { id } }"}', 415),
        ({"content-type": "text/plain"}, b'{"query": "{ viewer { id } }"}', 415),
        ({"content-type": "application/json; charset=latin-1"}, b'{"query": "{ x }"}', 415),
        ({"content-type": "application/json"}, b"", 400),
        ({"content-type": "application/json"}, b'{"query": ', 400),
        ({"content-type": "application/json"}, b'{"qeury": "{ viewer { id } }"}', 400),
        ({"content-type": "application/json"}, b'{"query": {"obj": 1}}', 400),
        ({"content-type": "application/json"}, b'{"query": "{ a }", "variables": [1]}', 400),
    ],
    ids=[
        "no-type",
        "text",
        "latin1",
        "empty",
        "bad-json",
        "no-query",
        "object-query",
        "list-variables",
    ],
)
async def test_bad_requests_are_refused_with_a_graphql_body(client, auth, headers, content, status):
    response = await client.post("/graphql", content=content, headers={**auth, **headers})
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_graphiql_is_served_to_browsers(client):
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_cors_preflight_allows_the_configured_origin(client):
    response = await client.options(
        "/graphql",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_cors_preflight_refuses_other_origins(client):
    response = await client.options(
        "/graphql",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_cors_headers_on_an_actual_request(client, auth):
    response = await client.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers={**auth, "origin": ORIGIN}
    )
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


class TestWithoutCors:
    @pytest.fixture
    def settings(self, clean_database):
        return Settings(database_url=clean_database)

    async def test_no_origin_is_allowed_by_default(self, client, auth):
        response = await client.post(
            "/graphql", json={"query": "{ viewer { id } }"}, headers={**auth, "origin": ORIGIN}
        )
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
