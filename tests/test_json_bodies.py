"""JSON the parser cannot hold (issue 10, class 5): nesting deeper than its recursion
limit and integers longer than Python converts are a 4xx naming the problem, in GraphQL
bodies, in GET parameters and in ingestion batches; never a 500."""

from __future__ import annotations

import pytest

from tests.factories import make_ingest_token

DEEP = "[" * 100_000 + "]" * 100_000
LONG_INT = "1" * 5_000
QUERY = "query($p: TimeRangePreset) { organization { usage(timeRange: {preset: $p}) { calls } } }"
NESTED = "nested too deeply"
DIGITS = "4300 digits"


def _refused(response, problem: str) -> None:
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert problem in error["message"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (DEEP, NESTED),
        (f'{{"query": "{{ viewer {{ id }} }}", "variables": {{"p": {DEEP}}}}}', NESTED),
        (f'{{"query": "{{ viewer {{ id }} }}", "extensions": {{"x": {DEEP}}}}}', NESTED),
        (f'{{"query": "{{ viewer {{ id }} }}", "variables": {{"p": {LONG_INT}}}}}', DIGITS),
    ],
    ids=["deep-body", "deep-variables", "deep-extensions", "long-integer"],
)
async def test_a_post_body_the_parser_cannot_hold_is_400(client, tenant, body, problem):
    response = await client.post(
        "/graphql",
        content=body.encode(),
        headers={"Authorization": f"Bearer {tenant.token}", "Content-Type": "application/json"},
    )
    _refused(response, problem)
    assert "The request body" in response.text


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("variables", "[" * 20_000, NESTED),
        ("variables", f'{{"p": {LONG_INT}}}', DIGITS),
        ("extensions", "[" * 20_000, NESTED),
    ],
    ids=["deep-variables", "long-integer", "deep-extensions"],
)
async def test_a_get_parameter_the_parser_cannot_hold_is_400(client, tenant, name, value, problem):
    response = await client.get(
        "/graphql",
        params={"query": QUERY, name: value},
        headers={"Authorization": f"Bearer {tenant.token}"},
    )
    _refused(response, problem)
    assert f"The {name} parameter" in response.text


@pytest.mark.parametrize(
    "value",
    ["[" * 800 + "]" * 800, '{"a":' * 800 + "1" + "}" * 800, "1" * 4_000, "1e999999"],
    ids=["nested-list", "nested-object", "4000-digits", "overflowing-float"],
)
async def test_values_the_parser_holds_are_refused_as_variables(client, tenant, value):
    response = await client.post(
        "/graphql",
        content=f'{{"query": "{QUERY}", "variables": {{"p": {value}}}}}'.encode(),
        headers={"Authorization": f"Bearer {tenant.token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200  # application/json: a GraphQL request error
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "$p" in error["message"]


@pytest.mark.parametrize(
    ("credits", "status", "problem"),
    [
        (DEEP, 400, NESTED),
        (LONG_INT, 400, DIGITS),
        ("[" * 800 + "]" * 800, 422, "credits"),
        ("1" * 4_000, 422, "credits"),
        ("1e999999", 422, "credits"),
    ],
    ids=["deep", "long-integer", "nested-list", "4000-digits", "overflowing-float"],
)
async def test_an_ingest_batch_the_parser_cannot_hold_is_refused_whole(
    client, engine, clock, tenant, credits, status, problem
):
    token = await make_ingest_token(engine, now=clock())
    good = (
        f'{{"id": "e1", "organization": "{tenant.slug}", "source": "api", "endpoint": "/x", '
        f'"status": 200, "credits": 1, "timestamp": "2026-06-15T11:00:00Z"}}'
    )
    bad = good.replace('"e1"', '"e2"').replace('"credits": 1', f'"credits": {credits}')
    response = await client.post(
        "/v1/events",
        content=f"[{good}, {bad}]".encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert problem in response.text
    after = await client.post(
        "/v1/events",
        content=f"[{good}]".encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert after.json() == {"accepted": 1, "duplicates": 0}  # nothing of the batch was kept
