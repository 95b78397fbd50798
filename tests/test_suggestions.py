"""With field_suggestions off, no error hints at a valid name: fields, arguments, enum
values, input fields and types, in literals and in variables."""

from __future__ import annotations

import pytest

from app.settings import Settings
from tests.factories import graphql, make_tenant

RANGE_QUERY = "query($r: TimeRangeInput!) { organization { usage(timeRange: $r) { calls } } }"

# (query, variables, code): each mistake is one letter away from a valid name.
MISTAKES = {
    "field": ("{ organization { nme } }", None, "GRAPHQL_VALIDATION_FAILED"),
    "argument": (
        "{ organization { apiKeys(frist: 1) { totalCount } } }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "directive-argument": (
        "{ organization { name @include(iff: true) } }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "enum-value": (
        "{ organization { usage(timeRange: {preset: TODAYY}) { calls } } }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "enum-value-as-string": (
        '{ organization { usage(timeRange: {preset: "TODAY"}) { calls } } }',
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "series-enum-value": (
        "{ organization { usage(timeRange: {preset: TODAY}) { series(granularity: DAYY) "
        "{ calls } } } }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "input-field": (
        "{ organization { usage(timeRange: {prest: TODAY}) { calls } } }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "variable-type": (
        "query($r: TimeRangeInpt!) { organization { usage(timeRange: $r) { calls } } }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "fragment-type": (
        "{ organization { ...O } } fragment O on Organizaton { name }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "inline-fragment-type": (
        "{ organization { ... on Organizaton { name } } }",
        None,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "enum-value-in-variable": (RANGE_QUERY, {"r": {"preset": "TODAYY"}}, "BAD_USER_INPUT"),
    "input-field-in-variable": (RANGE_QUERY, {"r": {"prest": "TODAY"}}, "BAD_USER_INPUT"),
}


@pytest.fixture
async def admin(engine, clock):
    return await make_tenant(engine, now=clock())


async def errors_of(client, token, query, variables):
    body = (await graphql(client, token, query, variables)).json()
    assert body.get("data") is None, body
    assert body["errors"], body
    return body["errors"]


class TestSuggestionsOff:
    @pytest.fixture
    def settings(self, clean_database):
        return Settings(database_url=clean_database, field_suggestions=False)

    @pytest.mark.parametrize(("query", "variables", "code"), MISTAKES.values(), ids=list(MISTAKES))
    async def test_no_error_suggests_a_name(self, client, admin, query, variables, code):
        errors = await errors_of(client, admin.token, query, variables)
        assert errors[0]["extensions"]["code"] == code
        for error in errors:
            assert "Did you mean" not in error["message"], error
            assert "did you mean" not in error["message"].lower(), error

    async def test_the_mistake_is_still_named(self, client, admin):
        [error] = await errors_of(client, admin.token, *MISTAKES["input-field-in-variable"][:2])
        assert "'prest'" in error["message"]
        [error] = await errors_of(client, admin.token, *MISTAKES["enum-value"][:2])
        assert "'TODAYY'" in error["message"]


class TestSuggestionsOn:
    """The default (development): every mistake above gets its hint, so the test above
    would see one that slipped through."""

    @pytest.mark.parametrize(("query", "variables", "code"), MISTAKES.values(), ids=list(MISTAKES))
    async def test_errors_suggest_the_valid_name(self, client, admin, query, variables, code):
        errors = await errors_of(client, admin.token, query, variables)
        assert errors[0]["extensions"]["code"] == code
        assert any("Did you mean" in error["message"] for error in errors), errors
