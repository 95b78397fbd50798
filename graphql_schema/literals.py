"""Number literals in the document: refused early, naming the argument they were given for.

graphql-core converts an integer literal with ``int()`` when it checks its type: one of more
than 4,300 digits fails with Python's own message ("Exceeds the limit (4300 digits) for
integer string conversion ... use sys.set_int_max_str_digits()"), echoes the whole number
back, and names no argument; a shorter one out of range says "Int cannot represent non
32-bit signed integer value" without saying where. This rule runs before the others (see
``graphql_schema.validation``) and answers instead, without converting anything long.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import (
    ArgumentNode,
    FloatValueNode,
    GraphQLError,
    GraphQLInt,
    IntValueNode,
    Node,
    ObjectFieldNode,
    StringValueNode,
    ValidationRule,
    VariableDefinitionNode,
    get_named_type,
)

from graphql_schema.scalars import BIGINT_NAME, MAX_BIGINT

# No argument needs a longer number: a 64-bit integer has at most 20 characters with its
# sign, and a float with more significant digits than this is noise.
MAX_NUMBER_LENGTH = 100
MAX_INT = 2**31 - 1

# Ranges checked here, by the name of the argument's type (Int is GraphQL's 32 bits).
_RANGES = {GraphQLInt.name: (-MAX_INT - 1, MAX_INT), BIGINT_NAME: (-MAX_BIGINT, MAX_BIGINT)}


def _where(chain: Sequence[Any]) -> tuple[str, str | None]:
    """How the message names the value's place, and the argument path for ``field``."""
    names: list[str] = []
    for ancestor in reversed(chain):
        if isinstance(ancestor, ObjectFieldNode):
            names.append(ancestor.name.value)
        elif isinstance(ancestor, ArgumentNode):
            path = ".".join([ancestor.name.value, *reversed(names)])
            return f"Argument '{path}'", path
        elif isinstance(ancestor, VariableDefinitionNode):
            path = ".".join(["$" + ancestor.variable.name.value, *reversed(names)])
            return f"The default value of variable '{path}'", path
    return "A number", None


class NumberLiterals(ValidationRule):
    """Refuses number literals (and BigInt strings) longer than ``MAX_NUMBER_LENGTH``
    characters, and integers out of range for an Int or BigInt argument, naming the
    argument."""

    def enter_int_value(
        self, node: IntValueNode, _key: Any, parent: Any, _path: Any, ancestors: list[Any]
    ) -> None:
        if self._too_long(node, [*ancestors, parent]):
            return
        input_type = self.context.get_input_type()
        bounds = None if input_type is None else _RANGES.get(get_named_type(input_type).name)
        if bounds is not None and not bounds[0] <= int(node.value) <= bounds[1]:
            where, field = _where([*ancestors, parent])
            low, high = bounds
            self._refuse(
                f"{where} must be an integer from {low} to {high}; got {node.value}.", node, field
            )

    def enter_float_value(
        self, node: FloatValueNode, _key: Any, parent: Any, _path: Any, ancestors: list[Any]
    ) -> None:
        self._too_long(node, [*ancestors, parent])

    def enter_string_value(
        self, node: StringValueNode, _key: Any, parent: Any, _path: Any, ancestors: list[Any]
    ) -> None:
        # BigInt also takes its digits as a string (JavaScript clients cannot write them
        # exactly as a number): the same length limit applies.
        input_type = self.context.get_input_type()
        if input_type is not None and get_named_type(input_type).name == BIGINT_NAME:
            self._too_long(node, [*ancestors, parent])

    def _too_long(
        self, node: IntValueNode | FloatValueNode | StringValueNode, chain: Sequence[Any]
    ) -> bool:
        if len(node.value) <= MAX_NUMBER_LENGTH:
            return False
        where, field = _where(chain)
        self._refuse(
            f"{where} is a number of {len(node.value):,} characters; numbers in a query have "
            f"at most {MAX_NUMBER_LENGTH}.",
            node,
            field,
        )
        return True

    def _refuse(self, message: str, node: Node, field: str | None) -> None:
        extensions = {} if field is None else {"field": field}
        self.report_error(GraphQLError(message, nodes=[node], extensions=extensions))
