"""The one error every limit raises."""

from __future__ import annotations

from collections.abc import Sequence

from graphql import GraphQLError, Node

from domain.errors import QueryTooComplex

CODE = QueryTooComplex.code


def too_complex(
    message: str, *, setting: str, limit: int, actual: int, nodes: Sequence[Node] | None = None
) -> GraphQLError:
    """A refusal that names the limit; ``extensions`` says which setting and by how much."""
    return GraphQLError(
        message,
        nodes=nodes,
        extensions={"code": CODE, "limit": setting, "maximum": limit, "actual": actual},
    )
