"""``POST /v1/events``: what is accepted, and every way a batch is refused without a trace."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any

import pytest

from app.settings import Settings
from tests.factories import event, make_ingest_token, make_tenant, post_events
from tests.stored_totals import totals


@pytest.fixture
async def world(client, engine, clock):
    """A tenant with three stored events, an ingest token, and the totals before the test."""
    tenant = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    at = clock() - timedelta(hours=2)
    stored = [event(tenant.slug, at + timedelta(minutes=i), credits=i) for i in range(3)]
    response = await post_events(client, token, stored)
    assert response.json() == {"accepted": 3, "duplicates": 0}
    before = await totals(engine)
    assert before.events == 3
    assert before.rollups_match_events()
    return tenant, token, before


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _assert_unchanged(engine, before) -> None:
    assert await totals(engine) == before


# Each case turns a valid event (the middle one of three) into a bad one: a callable gets
# the valid event and the tenant and returns the bad one.
def _set(**fields: Any):
    return lambda good, tenant: {**good, **fields}


def _drop(name: str):
    return lambda good, tenant: {k: v for k, v in good.items() if k != name}


REJECTIONS = [
    ("missing id", _drop("id"), "id"),
    ("id not a string", _set(id=17), "id"),
    ("id empty", _set(id="  "), "id"),
    ("id too long", _set(id="x" * 201), "id"),
    ("missing organization", _drop("organization"), "organization"),
    ("organization a list", _set(organization=["acme"]), "organization"),
    ("organization a boolean", _set(organization=True), "organization"),
    ("organization id past 64 bits", _set(organization=2**70), "organization"),
    ("unknown organization slug", _set(organization="nobody"), "organization"),
    ("unknown organization id", _set(organization=987654), "organization"),
    ("api_key a number", _set(api_key=5), "api_key"),
    ("api_key object without id", _set(api_key={"name": "Prod"}), "api_key"),
    ("api_key name not text", _set(api_key={"id": "k", "name": 3}), "api_key"),
    ("user a list", _set(user=["u"]), "user"),
    ("missing source", _drop("source"), "source"),
    ("source not text", _set(source=1), "source"),
    ("missing endpoint", _drop("endpoint"), "endpoint"),
    ("endpoint too long", _set(endpoint="/" + "a" * 300), "endpoint"),
    ("endpoint with NUL", _set(endpoint="/v2/\x00person"), "endpoint"),
    ("missing status", _drop("status"), "status"),
    ("status as text", _set(status="200"), "status"),
    ("status out of range", _set(status=99), "status"),
    ("status a boolean", _set(status=True), "status"),
    ("missing credits", _drop("credits"), "credits"),
    ("negative credits", _set(credits=-1), "credits"),
    ("fractional credits", _set(credits=1.5), "credits"),
    ("float credits", _set(credits=1.0), "credits"),
    ("credits as text", _set(credits="5"), "credits"),
    ("credits a boolean", _set(credits=True), "credits"),
    ("credits beyond the cap", _set(credits=10**30), "credits"),
    ("missing timestamp", _drop("timestamp"), "timestamp"),
    ("timestamp without offset", _set(timestamp="2026-06-15T11:00:00"), "timestamp"),
    ("timestamp a date", _set(timestamp="2026-06-15"), "timestamp"),
    ("timestamp a number", _set(timestamp=1781521200), "timestamp"),
    ("timestamp not a date", _set(timestamp="2026-02-30T10:00:00Z"), "timestamp"),
    ("timestamp too far past", _set(timestamp="1999-12-31T23:59:59Z"), "timestamp"),
    ("timestamp in the future", _set(timestamp="2026-06-16T12:00:01Z"), "timestamp"),
    ("unknown field", _set(credit=1), "credit"),
    ("not an object", lambda good, tenant: "an event", ""),
    ("null", lambda good, tenant: None, ""),
    (
        "repeated id, other fields",
        lambda good, tenant: {**good, "id": "evt-shared", "credits": 9},
        "id",
    ),
]


# One test per field (not per case): each case still posts its own batch and checks status,
# field and totals, without paying a fresh app and database cleanup per case.
GROUPS = {
    "id": ["id"],
    "organization": ["organization"],
    "references": ["api_key", "user"],
    "text": ["source", "endpoint"],
    "status": ["status"],
    "credits": ["credits"],
    "timestamp": ["timestamp"],
    "shape": ["credit", "", "repeated"],
}


def _group_of(case) -> str:
    name, _, field = case
    if name.startswith("repeated"):
        return "shape"
    return next(group for group, fields in GROUPS.items() if field in fields)


@pytest.mark.parametrize("group", list(GROUPS))
async def test_invalid_event_refuses_the_whole_batch(world, client, engine, clock, group):
    tenant, token, before = world
    cases = [case for case in REJECTIONS if _group_of(case) == group]
    assert cases
    at = clock() - timedelta(minutes=30)
    for name, make_bad, field in cases:
        first = event(tenant.slug, at, id="evt-shared", api_key={"id": "new-key", "name": "N"})
        bad = make_bad(event(tenant.slug, at, user="new-user"), tenant)
        batch = [first, bad, event(tenant.slug, at, credits=4)]
        response = await post_events(client, token, batch)
        assert response.status_code == 422, (name, response.text)
        body = response.json()
        assert body["error"] == "invalid_events", name
        assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, field)], name
        assert body["errors"][0]["reason"], name
        # Not even the new key or user of the valid events is registered.
        assert await totals(engine) == before, name


async def test_every_bad_event_and_field_is_listed(world, client, engine, clock):
    tenant, token, before = world
    at = clock() - timedelta(minutes=5)
    batch = [
        event(tenant.slug, at, credits=-3, status="ok"),
        event(tenant.slug, at),
        event(tenant.slug, at, timestamp="yesterday", source=None),
    ]
    response = await post_events(client, token, batch)
    assert response.status_code == 422
    listed = sorted((e["index"], e["field"]) for e in response.json()["errors"])
    assert listed == [(0, "credits"), (0, "status"), (2, "source"), (2, "timestamp")]
    await _assert_unchanged(engine, before)


async def test_missing_and_wrong_typed_fields_say_which(world, client, engine, clock):
    tenant, token, before = world
    at = clock() - timedelta(minutes=5)
    batch = [event(tenant.slug, at, credits=None), event(tenant.slug, at, credits="1")]
    response = await post_events(client, token, batch)
    reasons = [e["reason"] for e in response.json()["errors"]]
    assert reasons == ["is required: an integer", "must be an integer"]
    await _assert_unchanged(engine, before)


async def test_lone_surrogate_text_is_refused(world, client, engine, clock):
    tenant, token, before = world
    body = json.dumps([event(tenant.slug, clock() - timedelta(minutes=5))])
    body = body.replace('"/v2/person"', '"/v2/\\ud800"')
    response = await client.post(
        "/v1/events", content=body, headers={**_auth(token), "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["endpoint"]
    await _assert_unchanged(engine, before)


MALFORMED = [
    ("broken object", "application/json", b'[\n  {"id": "a",\n   oops}\n]', 3, 4),
    ("truncated", "application/json", b'[{"id": "a"}', 1, 13),
    ("NaN", "application/json", b'[{"credits": NaN}]', 1, 1),
    ("Infinity", "application/json", b'[{"credits": -Infinity}]', 1, 1),
    ("5000-digit number", "application/json", b'[{"credits": ' + b"9" * 5000 + b"}]", 1, 1),
    ("deep nesting", "application/json", b"[" * 100_000 + b"]" * 100_000, 1, 1),
    ("not UTF-8", "application/json", b'[{"id": "\xff"}]', 1, 1),
    ("NDJSON second line", "application/x-ndjson", b'{"id": "a"}\n{"id": \n', 2, 8),
]


@pytest.mark.parametrize(
    ("media_type", "body", "line", "column"),
    [c[1:] for c in MALFORMED],
    ids=[c[0] for c in MALFORMED],
)
async def test_malformed_json_is_400_with_its_place(
    world, client, engine, media_type, body, line, column
):
    _, token, before = world
    response = await client.post(
        "/v1/events", content=body, headers={**_auth(token), "Content-Type": media_type}
    )
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["error"] == "malformed_json"
    assert (answer["line"], answer["column"]) == (line, column)
    assert f"line {line}, column {column}" in answer["message"]
    await _assert_unchanged(engine, before)


async def test_a_body_that_is_not_an_array_is_400(world, client, engine, clock):
    tenant, token, before = world
    response = await client.post(
        "/v1/events", json=event(tenant.slug, clock()), headers=_auth(token)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "not_an_array"
    await _assert_unchanged(engine, before)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", None],
    ids=["text", "form", "xml", "none"],
)
async def test_wrong_content_type_is_415(world, client, engine, clock, content_type):
    tenant, token, before = world
    body = json.dumps([event(tenant.slug, clock() - timedelta(minutes=1))]).encode()
    headers = _auth(token) | ({"Content-Type": content_type} if content_type else {})
    response = await client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    await _assert_unchanged(engine, before)


async def test_compressed_body_is_415(world, client, engine, clock):
    tenant, token, before = world
    body = gzip.compress(json.dumps([event(tenant.slug, clock())]).encode())
    headers = {**_auth(token), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = await client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 415
    assert "gzip" in response.json()["message"]
    await _assert_unchanged(engine, before)


async def test_user_token_is_403(world, client, engine, clock):
    tenant, _, before = world
    response = await post_events(client, tenant.token, [event(tenant.slug, clock())])
    assert response.status_code == 403
    answer = response.json()
    assert answer["error"] == "forbidden"
    assert "token create --ingest" in answer["message"]
    await _assert_unchanged(engine, before)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz"],
    ids=["none", "empty", "unknown", "basic"],
)
async def test_missing_or_bad_token_is_401(world, client, engine, clock, authorization):
    tenant, _, before = world
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post("/v1/events", json=[event(tenant.slug, clock())], headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")
    await _assert_unchanged(engine, before)


async def test_json_array_and_ndjson_are_stored_once(world, client, engine, clock):
    tenant, token, before = world
    at = clock() - timedelta(minutes=10)
    batch = [event(tenant.slug, at, credits=2), event(tenant.slug, at, credits=5)]
    first = await post_events(client, token, [*batch, batch[0]])
    assert first.status_code == 200
    assert first.json() == {"accepted": 2, "duplicates": 1}
    ndjson = "\n".join(json.dumps(item) for item in [*batch, event(tenant.slug, at)]) + "\n\n"
    second = await client.post(
        "/v1/events",
        content=ndjson,
        headers={**_auth(token), "Content-Type": "application/x-ndjson; charset=utf-8"},
    )
    assert second.json() == {"accepted": 1, "duplicates": 2}
    after = await totals(engine)
    assert after.events == before.events + 3
    assert after.credits == before.credits + 8
    assert after.rollups_match_events()


async def test_an_event_may_name_its_organization_by_id(world, client, engine, clock):
    tenant, token, before = world
    same = event(tenant.organization_id, clock() - timedelta(minutes=1), id="evt-by-id")
    response = await post_events(client, token, [same, {**same, "organization": tenant.slug}])
    assert response.json() == {"accepted": 1, "duplicates": 1}
    assert (await totals(engine)).events == before.events + 1


async def test_an_empty_batch_writes_nothing(world, client, engine):
    _, token, before = world
    response = await post_events(client, token, [])
    assert response.json() == {"accepted": 0, "duplicates": 0}
    await _assert_unchanged(engine, before)


class TestLimits:
    """Small caps, so the limits are reached with small bodies."""

    @pytest.fixture
    def settings(self, clean_database):
        return Settings(
            database_url=clean_database, max_ingest_body_bytes=4096, max_ingest_events=5
        )

    async def test_body_over_the_cap_is_413(self, world, client, engine, clock):
        tenant, token, before = world
        batch = [event(tenant.slug, clock()) for _ in range(5)]
        # Valid JSON of few events: only its size is wrong.
        body = json.dumps(batch, indent=400).encode()
        assert len(body) > 4096
        response = await client.post(
            "/v1/events", content=body, headers={**_auth(token), "Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"
        assert response.json()["limit"] == 4096
        await _assert_unchanged(engine, before)

    async def test_streamed_body_over_the_cap_is_413_without_a_length(
        self, world, client, engine, clock
    ):
        _, token, before = world

        async def chunks():
            yield b"["
            for _ in range(100):
                yield b'{"id": "' + b"x" * 100 + b'"},'
            yield b"{}]"

        response = await client.post(
            "/v1/events",
            content=chunks(),
            headers={**_auth(token), "Content-Type": "application/json"},
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"
        await _assert_unchanged(engine, before)

    @pytest.mark.parametrize("media_type", ["application/json", "application/x-ndjson"])
    async def test_batch_over_the_event_cap_is_413(self, world, client, engine, clock, media_type):
        tenant, token, before = world
        batch = [event(tenant.slug, clock() - timedelta(minutes=1)) for _ in range(6)]
        if media_type == "application/json":
            body = json.dumps(batch)
        else:
            body = "\n".join(json.dumps(item) for item in batch)
        response = await client.post(
            "/v1/events", content=body, headers={**_auth(token), "Content-Type": media_type}
        )
        assert response.status_code == 413
        assert response.json()["error"] == "too_many_events"
        assert response.json()["limit"] == 5
        await _assert_unchanged(engine, before)

    async def test_batch_at_the_event_cap_is_accepted(self, world, client, engine, clock):
        tenant, token, before = world
        batch = [event(tenant.slug, clock() - timedelta(minutes=1)) for _ in range(5)]
        response = await post_events(client, token, batch)
        assert response.json() == {"accepted": 5, "duplicates": 0}
        assert (await totals(engine)).events == before.events + 5
