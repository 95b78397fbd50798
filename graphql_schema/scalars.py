"""Custom scalars, registered in the schema's ``scalar_map``."""

from __future__ import annotations

import re
from typing import Any, NewType

import strawberry
from graphql import IntValueNode, StringValueNode, ValueNode

BIGINT_NAME = "BigInt"
MAX_BIGINT = 2**63 - 1
# An optional minus and at most 19 ASCII digits: checked before ``int()`` converts anything,
# so a string of thousands of digits costs a regular expression, not a conversion.
_BIGINT_TEXT = re.compile(r"-?[0-9]{1,19}")
_DIGITS = re.compile(r"-?[0-9]+")


def _parse_bigint(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("BigInt must be an integer")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and _BIGINT_TEXT.fullmatch(value):
        result = int(value)
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        raise ValueError("BigInt must fit in 64 bits")
    else:
        raise ValueError("BigInt must be an integer or a string of digits")
    if abs(result) > MAX_BIGINT:
        raise ValueError("BigInt must fit in 64 bits")
    return result


def _parse_bigint_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> int:
    """A literal in the document: an integer, or a string of digits as for variables."""
    if isinstance(node, IntValueNode | StringValueNode):
        return _parse_bigint(node.value)
    raise ValueError("BigInt must be an integer or a string of digits")


BigInt = NewType("BigInt", int)

BIGINT_SCALAR = strawberry.scalar(
    name=BIGINT_NAME,
    description=(
        "A 64-bit integer, serialised as a JSON number. Counts of calls and credits can pass "
        "GraphQL's 32-bit Int; JavaScript reads them exactly up to 2^53."
    ),
    serialize=int,
    parse_value=_parse_bigint,
    parse_literal=_parse_bigint_literal,
)
