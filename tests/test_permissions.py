"""Permissions, for every field the schema walk reaches: a member is told FORBIDDEN and an
admin on the free plan PLAN_REQUIRED at the first protected field on the way; only the
fields listed in OPEN may be reachable without a permission class."""

from __future__ import annotations

import json

import pytest
from graphql import is_non_null_type

from app.settings import Settings
from graphql_schema.permissions import IsAdmin, IsOnPaidPlan
from tests.factories import add_user, graphql, make_tenant
from tests.schema_walk import PATHS, SCHEMA, field_of, query_for

# What any member may read (DESIGN.md: the viewer, the organization's name and plan).
OPEN = {
    "Query.viewer",
    "Query.organization",
    "Viewer.id",
    "Viewer.name",
    "Viewer.email",
    "Viewer.role",
    "Organization.id",
    "Organization.slug",
    "Organization.name",
    "Organization.plan",
    "Organization.timezone",
}


@pytest.fixture
def settings(clean_database):
    # The generated queries select everything below a field: far costlier than a real one.
    return Settings(database_url=clean_database, max_query_cost=100_000_000)


def permissions_of(type_name: str, field_name: str) -> list[type]:
    definition = SCHEMA.get_type_by_name(type_name)
    for field in definition.fields:
        if SCHEMA.config.name_converter.get_graphql_name(field) == field_name:
            return list(field.permission_classes)
    raise AssertionError(f"{type_name}.{field_name} not found in the strawberry schema")


def first_protected(path) -> int | None:
    for index, step in enumerate(path):
        if permissions_of(step.type_name, step.field_name):
            return index
    return None


PROTECTED = [path for path in PATHS if first_protected(path) is not None]
UNPROTECTED = [path for path in PATHS if first_protected(path) is None]


def test_every_field_outside_the_open_list_is_protected():
    assert {path[-1].coordinate for path in UNPROTECTED} <= OPEN


def test_every_protected_field_checks_admin_then_plan():
    for path in PROTECTED:
        step = path[first_protected(path)]
        assert permissions_of(step.type_name, step.field_name) == [IsAdmin, IsOnPaidPlan]


def test_the_protected_fields_include_every_usage_key_pool_and_alert_field():
    protected = {path[first_protected(path)].coordinate for path in PROTECTED}
    assert protected == {
        "Organization.creditPool",
        "Organization.apiKeys",
        "Organization.apiKey",
        "Organization.endpointUsage",
        "Organization.usage",
        "Organization.alerts",
    }


def assert_denied(text, path, code, *, name):
    """The first protected field on the path is null with its one coded error; it is a
    nullable panel, so the organization and its open fields still answer."""
    body = json.loads(text)
    index = first_protected(path)
    expected_path = [step.field_name for step in path[: index + 1]]
    [error] = body["errors"]
    assert error["extensions"]["code"] == code
    assert error["path"] == expected_path
    assert ("admin" if code == "FORBIDDEN" else "Upgrade") in error["message"]
    value = body["data"]
    for field_name in expected_path[:-1]:
        value = value[field_name]
        assert value is not None
    assert value == {"name": name, expected_path[-1]: None}


def with_name(path) -> str:
    """The generated query for ``path``, asking for the organization's (open) name too."""
    query = query_for(path).replace("__KEY__", "k")
    assert query.startswith("{ organization { ")
    return query.replace("{ organization { ", "{ organization { name ", 1)


def test_every_protected_field_is_a_nullable_panel():
    for path in PROTECTED:
        step = path[first_protected(path)]
        assert not is_non_null_type(field_of(step).type), step.coordinate


@pytest.mark.parametrize("path", PROTECTED, ids=[p[-1].coordinate for p in PROTECTED])
async def test_a_member_is_forbidden(client, engine, clock, path):
    tenant = await make_tenant(engine, now=clock())
    _, _, member = await add_user(engine, tenant, role="MEMBER", now=clock())
    response = await graphql(client, member, with_name(path))
    assert response.status_code == 200
    assert_denied(response.text, path, "FORBIDDEN", name=tenant.slug.title())


@pytest.mark.parametrize("path", PROTECTED, ids=[p[-1].coordinate for p in PROTECTED])
async def test_a_free_plan_admin_needs_a_paid_plan(client, engine, clock, path):
    tenant = await make_tenant(engine, now=clock(), plan="FREE")
    response = await graphql(client, tenant.token, with_name(path))
    assert_denied(response.text, path, "PLAN_REQUIRED", name=tenant.slug.title())


async def test_a_member_reads_the_name_next_to_a_refused_panel(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), role="MEMBER")
    query = "{ organization { name creditPool { consumed } } }"
    body = (await graphql(client, tenant.token, query)).json()
    assert body["data"] == {"organization": {"name": tenant.slug.title(), "creditPool": None}}
    [error] = body["errors"]
    assert error["path"] == ["organization", "creditPool"]
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_a_free_plan_member_is_told_to_ask_an_admin_first(client, engine, clock):
    tenant = await make_tenant(engine, now=clock(), plan="FREE", role="MEMBER")
    query = "{ organization { creditPool { consumed } } }"
    error = (await graphql(client, tenant.token, query)).json()["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("path", UNPROTECTED, ids=[p[-1].coordinate for p in UNPROTECTED])
@pytest.mark.parametrize("plan", ["FREE", "PRO"])
async def test_open_fields_answer_any_member(client, engine, clock, path, plan):
    tenant = await make_tenant(engine, now=clock(), plan=plan, role="MEMBER")
    # Scalars only: the open field itself, not the protected ones next to it.
    body = (await graphql(client, tenant.token, query_for(path, depth=0))).json()
    assert "errors" not in body
    assert body["data"]
