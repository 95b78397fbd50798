"""Validation and execution as the schema runs them: cached per document, number literals
checked first, and graphql-core's "Did you mean …?" hints withheld when suggestions are off.

strawberry's ``disable_field_suggestions`` only strips the hint from "Cannot query field"
messages. graphql-core (3.3) can leave out every hint itself (``hide_suggestions``): unknown
fields, arguments and types in validation (FieldsOnCorrectTypeRule, KnownArgumentNamesRule,
KnownTypeNamesRule), enum values and input fields of literals (ValuesOfCorrectTypeRule via
``GraphQLEnumType.parse_literal`` and ``validate_input_literal``) and of variables
(``get_variable_values`` via ``coerce_input_value``). strawberry does not pass that flag, so
:class:`DocumentValidation` validates with it and :class:`SuggestionFreeExecution` executes
with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, validate
from graphql.execution import Executor
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from domain.recent import Recent
from graphql_schema.literals import NumberLiterals

# The rules strawberry adds to every validation (``strawberry.schema.schema``).
_STRAWBERRY_RULES: tuple[type[ASTValidationRule], ...] = (
    MaybeNullValidationRule,
    OneOfInputValidationRule,
)


class Validator:
    """Validates documents for one schema and remembers the last ``maxsize`` answers.

    Answers are kept by the request's text and rules: the document is a function of the text
    (the parser cache is keyed by it too), and hashing a string is cheap where hashing the
    parsed document walks all of it.
    """

    def __init__(self, *, hide_suggestions: bool, maxsize: int = 1024) -> None:
        self.hide_suggestions = hide_suggestions
        self.recent: Recent[tuple[GraphQLError, ...]] = Recent(maxsize)

    def errors(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        *,
        query: str | None,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        """The validation errors of ``document``: number literals first (alone when any is
        refused, as graphql-core's own checks of them would only echo it worse), then every
        rule."""
        key = None if query is None else (query, rules)
        found = None if key is None else self.recent.get(key)
        if found is None:
            found = tuple(validate(schema, document, [NumberLiterals]))
            if not found:
                found = tuple(
                    validate(
                        schema,
                        document,
                        (*rules, *_STRAWBERRY_RULES),
                        hide_suggestions=self.hide_suggestions,
                    )
                )
            if key is not None:
                self.recent.put(key, found)
        return list(found)


class DocumentValidation(SchemaExtension):
    """Runs the validation of the request through a schema's :class:`Validator` (instead of
    strawberry's, which would run when no errors are set)."""

    def __init__(self, *, validator: Validator) -> None:
        self.validator = validator

    def on_validate(self) -> Iterator[None]:
        execution_context = self.execution_context
        document = execution_context.graphql_document
        if document is not None:
            execution_context.pre_execution_errors = self.validator.errors(
                execution_context.schema._schema,
                document,
                query=execution_context.query,
                rules=execution_context.validation_rules,
            )
        yield


class SuggestionFreeExecution(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, built with graphql-core's ``hide_suggestions``: a variable
    naming an unknown enum value or input field gets no hint at a valid one."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> list[GraphQLError] | Executor[Any]:
        kwargs["hide_suggestions"] = True
        return super().build(*args, **kwargs)
