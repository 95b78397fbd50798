"""Limits that keep one query from hurting the service: depth, aliases, tokens and cost.

Each refuses with ``extensions.code = "QUERY_TOO_COMPLEX"`` and a message naming the limit and
the setting that raises it; the error carries its code itself, so nothing downstream has to
recognise it by its message.
"""

from graphql_schema.limits.cost import QueryCost, estimate_cost
from graphql_schema.limits.document import max_aliases_rule, max_depth_rule
from graphql_schema.limits.errors import too_complex
from graphql_schema.limits.tokens import TokenLimit

__all__ = [
    "QueryCost",
    "TokenLimit",
    "estimate_cost",
    "max_aliases_rule",
    "max_depth_rule",
    "too_complex",
]
