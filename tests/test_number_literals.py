"""Numbers with thousands of digits in the document are refused fast, naming the argument,
never with Python's own conversion message, a 500 or an echo of the whole number."""

from __future__ import annotations

import time

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from graphql_schema.scalars import BIGINT_SCALAR, BigInt
from graphql_schema.validation import DocumentValidation, Validator
from tests.factories import graphql, make_tenant

HUGE = "1" + "0" * 4_999  # past Python's 4,300-digit limit for int()
LONG = "9" * 4_000  # under it: int() would convert it, slowly and for nothing

# (query, the argument named in the message and in extensions.field)
CASES = {
    "int-argument": (f"{{ organization {{ apiKeys(first: {HUGE}) {{ totalCount }} }} }}", "first"),
    "negative": (f"{{ organization {{ apiKeys(first: -{LONG}) {{ totalCount }} }} }}", "first"),
    "under-python-limit": (
        f"{{ organization {{ apiKeys(first: {LONG}) {{ totalCount }} }} }}",
        "first",
    ),
    "float": (
        f"{{ organization {{ apiKeys(first: {HUGE}.5e{HUGE}) {{ totalCount }} }} }}",
        "first",
    ),
    "id-argument": (f"{{ organization {{ apiKey(id: {HUGE}) {{ name }} }} }}", "id"),
    "inside-an-input-object": (
        f"{{ organization {{ usage(timeRange: {{preset: TODAY, start: {HUGE}}}) {{ calls }} }} }}",
        "timeRange.start",
    ),
    "variable-default": (
        f"query($n: Int = {HUGE}) {{ organization {{ apiKeys(first: $n) {{ totalCount }} }} }}",
        "$n",
    ),
    "out-of-int-range": (
        "{ organization { apiKeys(first: 30000000000) { totalCount } } }",
        "first",
    ),
}


@pytest.fixture
async def admin(engine, clock):
    return await make_tenant(engine, now=clock())


@pytest.mark.parametrize(("query", "argument"), CASES.values(), ids=list(CASES))
async def test_a_huge_number_is_refused_naming_the_argument(client, admin, query, argument):
    started = time.process_time()  # CPU, not wall: the bound is on work, not on load
    response = await graphql(client, admin.token, query)
    assert time.process_time() - started < 2.0  # generous: about 20 ms here
    assert response.status_code == 200
    body = response.json()
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["extensions"]["field"] == argument
    assert f"'{argument}'" in error["message"]
    assert "sys.set_int_max_str_digits" not in error["message"]
    assert len(error["message"]) < 200  # the number is not echoed back


async def test_both_huge_numbers_of_a_query_are_named(client, admin):
    query = (
        f"{{ organization {{ usage(timeRange: {{preset: TODAY}}, keyId: {HUGE}) "
        f"{{ calls }} apiKeys(first: {HUGE}) {{ totalCount }} }} }}"
    )
    body = (await graphql(client, admin.token, query)).json()
    assert sorted(error["extensions"]["field"] for error in body["errors"]) == ["first", "keyId"]


async def test_a_number_in_range_still_runs(client, admin):
    body = (
        await graphql(
            client, admin.token, "{ organization { apiKeys(first: 100) { totalCount } } }"
        )
    ).json()
    assert body == {"data": {"organization": {"apiKeys": {"totalCount": 0}}}}


@strawberry.type
class Echo:
    @strawberry.field(description="The number given.")
    def echo(self, n: BigInt) -> BigInt:
        return n


def echo_schema():
    validator = Validator(hide_suggestions=True)
    return strawberry.Schema(
        query=Echo,
        extensions=[lambda: DocumentValidation(validator=validator)],
        config=StrawberryConfig(scalar_map={BigInt: BIGINT_SCALAR}),
    )


@pytest.mark.parametrize(
    ("literal", "says"),
    [
        ("9223372036854775808", "from -9223372036854775807 to 9223372036854775807"),
        ("-9223372036854775808", "from -9223372036854775807 to 9223372036854775807"),
        (HUGE, "a number of 5,000 characters"),
        ('"' + HUGE + '"', "a number of 5,000 characters"),
        ('"9223372036854775808"', "BigInt must fit in 64 bits"),
        ('"12x"', "BigInt must be an integer or a string of digits"),
    ],
    ids=["just-over", "just-under", "huge", "huge-string", "string-just-over", "not-digits"],
)
async def test_a_bigint_literal_out_of_range_is_refused(literal, says):
    result = await echo_schema().execute(f"{{ echo(n: {literal}) }}")
    [error] = result.errors
    assert says in error.message
    assert "sys.set_int_max_str_digits" not in error.message
    assert len(error.message) < 300


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("1" * 5_000, "BigInt must fit in 64 bits"),
        ("²", "BigInt must be an integer or a string of digits"),
        (2**63, "BigInt must fit in 64 bits"),
    ],
    ids=["huge-string", "unicode-digit", "over-64-bits"],
)
async def test_a_bigint_variable_out_of_range_is_refused(value, says):
    result = await echo_schema().execute(
        "query($n: BigInt!) { echo(n: $n) }", variable_values={"n": value}
    )
    [error] = result.errors
    assert says in error.message
    assert "sys.set_int_max_str_digits" not in error.message


async def test_a_bigint_in_range_is_echoed_exactly():
    result = await echo_schema().execute("{ echo(n: 9223372036854775807) }")
    assert result.errors is None
    assert result.data == {"echo": 2**63 - 1}
    result = await echo_schema().execute(
        "query($n: BigInt!) { echo(n: $n) }", variable_values={"n": "-42"}
    )
    assert result.data == {"echo": -42}
