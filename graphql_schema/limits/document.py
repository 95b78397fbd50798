"""Validation rules on the shape of the document: nesting depth and number of aliases.

They are graphql-core rules, so they run inside validation (and are cached with it): a
refused document never reaches a resolver. Rule classes are made once per schema with their
limit baked in, so the validation cache sees the same rule tuple on every request.

The depth of a fragment does not depend on where it is spread, so each fragment is measured
once per document and remembered: the work is linear in the document's size, however often
(and however exponentially, through fragments that spread each other) it is spread.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
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


class _DepthMeter:
    """Depths of selection sets of one document, each fragment measured once."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self.known: dict[str, int] = {}
        self.measuring: set[str] = set()

    def fragment(self, name: str) -> int:
        known = self.known.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.measuring:
            return 0  # unknown or cyclic: other rules report it
        self.measuring.add(name)
        depth = self.depth(fragment.selection_set)
        self.measuring.discard(name)
        self.known[name] = depth
        return depth

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        """Levels of fields below ``selection_set``; introspection subtrees are left to
        graphql-core's MaxIntrospectionDepthRule."""
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):
                    continue
                deepest = max(deepest, 1 + self.depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self.fragment(selection.name.value))
        return deepest


def max_depth_rule(limit: int) -> type[ValidationRule]:
    class MaxDepthRule(ValidationRule):
        """Refuses operations nested deeper than ``limit`` levels of fields."""

        meter: _DepthMeter | None = None

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            context: ValidationContext = self.context
            if self.meter is None:
                # One meter for every operation of the document: fragments they share
                # are measured once.
                self.meter = _DepthMeter(context.document)
            depth = self.meter.depth(node.selection_set)
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
