"""Validation rules on the shape of the document: nesting depth and number of aliases.

They are graphql-core rules, so they run inside validation (and are cached with it): a
refused document never reaches a resolver. Rule classes are made once per schema with their
limit baked in, so the validation cache sees the same rule tuple on every request.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

from graphql_schema.limits.errors import too_complex


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    visiting: frozenset[str] = frozenset(),
) -> int:
    """Levels of fields below ``selection_set``; introspection subtrees are left to
    graphql-core's MaxIntrospectionDepthRule."""
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            deepest = max(deepest, 1 + _depth(selection.selection_set, fragments, visiting))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, visiting))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in visiting:
                continue  # unknown or cyclic: other rules report it
            deepest = max(deepest, _depth(fragment.selection_set, fragments, visiting | {name}))
    return deepest


def max_depth_rule(limit: int) -> type[ValidationRule]:
    class MaxDepthRule(ValidationRule):
        """Refuses operations nested deeper than ``limit`` levels of fields."""

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            context: ValidationContext = self.context
            fragments = {
                definition.name.value: definition
                for definition in context.document.definitions
                if isinstance(definition, FragmentDefinitionNode)
            }
            depth = _depth(node.selection_set, fragments)
            if depth > limit:
                self.report_error(
                    too_complex(
                        f"The query is {depth} levels deep; the limit is {limit} "
                        "(setting max_query_depth). Split it into shallower queries.",
                        setting="max_query_depth",
                        limit=limit,
                        actual=depth,
                        nodes=[node],
                    )
                )

    return MaxDepthRule


def max_aliases_rule(limit: int) -> type[ValidationRule]:
    class MaxAliasesRule(ValidationRule):
        """Refuses documents with more than ``limit`` aliased fields: aliases let one
        request ask for the same expensive field many times."""

        count = 0

        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.alias is not None:
                self.count += 1

        def leave_document(self, node: Any, *_: Any) -> None:
            if self.count > limit:
                self.report_error(
                    too_complex(
                        f"The query uses {self.count} aliases; the limit is {limit} "
                        "(setting max_aliases).",
                        setting="max_aliases",
                        limit=limit,
                        actual=self.count,
                    )
                )

    return MaxAliasesRule
