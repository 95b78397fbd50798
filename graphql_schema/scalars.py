"""Custom scalars, registered in the schema's ``scalar_map``."""

from __future__ import annotations

from typing import NewType

import strawberry

MAX_BIGINT = 2**63 - 1


def _parse_bigint(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("BigInt must be an integer")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and value.lstrip("-").isdigit():
        result = int(value)
    else:
        raise ValueError("BigInt must be an integer or a string of digits")
    if abs(result) > MAX_BIGINT:
        raise ValueError("BigInt must fit in 64 bits")
    return result


BigInt = NewType("BigInt", int)

BIGINT_SCALAR = strawberry.scalar(
    name="BigInt",
    description=(
        "A 64-bit integer, serialised as a JSON number. Counts of calls and credits can pass "
        "GraphQL's 32-bit Int; JavaScript reads them exactly up to 2^53."
    ),
    serialize=int,
    parse_value=_parse_bigint,
)
