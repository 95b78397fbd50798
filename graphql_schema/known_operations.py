"""Queries the schema has parsed, validated and priced before, executed without strawberry's
per-request extension scaffolding.

For every request strawberry builds an execution context, a fresh instance of each of our
six extensions, a runner, and four stages (operation, parsing, validation, execution) of
generator context managers around them, then converts graphql-core's result and asks each
extension for results. With every cache hit (parser, validation, cost) that scaffolding
cost about 40 us a request in process, about 10 % of an executed report's instructions
(bench/PROPOSALS.md, R31).

The checks the extensions make are functions of the document text, the operation name,
the variables and the schema's settings, and each keeps its verdict already (the parser
cache, :class:`graphql_schema.validation.Validator`, :class:`graphql_schema.limits.cost.
CostMemo`). :class:`KnownOperations` asks the same objects, in the same order, and takes
the short way only when every one of them lets the query through: within the token limit,
parsed, a query operation that the request allows, valid under the same rules, and priced
within ``max_query_cost``. It then records the cost on the context as ``QueryCost`` does,
runs graphql-core with the arguments strawberry passes, and codes the result's errors as
``ErrorCodes`` does. Anything else (a refusal, a syntax error, a mutation, an unknown
operation name, an extension that would change what runs) goes the usual way, which then
answers exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    specified_rules,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution.middleware import MiddlewareManager
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import AddValidationRules, ParserCache, SchemaExtension
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_operation_type

from domain.recent import Recent
from graphql_schema.direct_fields import DirectExecution
from graphql_schema.error_codes import HTTP_LEVEL, coded, masked, request_id_of
from graphql_schema.limits.cost import CostLimits, CostMemo
from graphql_schema.query_plans import PlannedRun, plan_query
from graphql_schema.validation import Validator

if TYPE_CHECKING:
    import strawberry


@dataclass(frozen=True, slots=True)
class Known:
    """A query that parsed and validated: its document and the name graphql-core runs it by
    (the one sent, else the first operation's, as strawberry derives it). ``memo`` is what
    our executors work out from the document's nodes alone (how to complete its rows:
    ``graphql_schema.execution``); it lives and dies with the document."""

    document: DocumentNode
    operation_name: str | None
    memo: dict[Any, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Checks:
    """The limits the schema's extensions apply, with the objects that remember verdicts."""

    max_tokens: int
    parse_cache_size: int
    validator: Validator
    max_cost: int
    cost_limits: CostLimits
    cost_memo: CostMemo


def validation_rules(extensions: Iterable[SchemaExtension]) -> tuple[type[ASTValidationRule], ...]:
    """The rules a request is validated with: graphql-core's own, then those each
    ``AddValidationRules`` extension adds, in order (what strawberry's execution context
    holds when validation starts)."""
    rules = tuple(specified_rules)
    for extension in extensions:
        if isinstance(extension, AddValidationRules):
            rules += tuple(extension.validation_rules)
    return rules


class KnownOperations:
    """The short way for queries every check lets through (see the module docstring)."""

    def __init__(
        self,
        checks: Checks,
        rules: tuple[type[ASTValidationRule], ...],
        *,
        maxsize: int = 1024,
    ) -> None:
        self.checks = checks
        self.rules = rules
        # The parse cache the ParserCache extension uses (shared by size, module level).
        self.parse: Callable[[str], DocumentNode] = ParserCache(
            maxsize=checks.parse_cache_size
        ).cached_parse_document
        self.recent: Recent[Known] = Recent(maxsize)

    def known(
        self, schema: strawberry.Schema, query: str, operation_name: str | None
    ) -> Known | None:
        """The parsed and validated query operation, or None when any check objects."""
        key = (query, operation_name)
        found = self.recent.get(key)
        if found is not None:
            return found
        # TokenLimit: a query longer than the limit may have more tokens than it allows.
        if len(query) > self.checks.max_tokens:
            return None
        # Any exception here (a syntax error, no such operation, a failing rule) is for the
        # usual way to raise or report: the checks are pure, so it meets the same one.
        try:
            document = self.parse(query)
            operation_type = get_operation_type(document, operation_name)
            if operation_type is not OperationType.QUERY:
                return None
            errors = self.checks.validator.errors(
                schema._schema, document, query=query, rules=self.rules
            )
        except Exception:
            return None
        if errors:
            return None
        found = Known(document, _name_of(document, operation_name))
        self.recent.put(key, found)
        return found

    def cost(
        self, schema: strawberry.Schema, known: Known, query: str, variables: Any
    ) -> int | None:
        """The query's estimated cost, or None when ``QueryCost`` would refuse it."""
        try:
            cost = self.checks.cost_memo.estimate(
                schema._schema,
                known.document,
                query=query,
                operation_name=known.operation_name,
                variables=variables,
                limits=self.checks.cost_limits,
            )
        except Exception:  # a refusal (or a failure) the usual way reports
            return None
        return None if cost > self.checks.max_cost else cost

    async def execute(
        self,
        schema: strawberry.Schema,
        query: str | None,
        *,
        variable_values: dict[str, Any] | None,
        context_value: Any,
        root_value: Any,
        operation_name: str | None,
        allowed_operation_types: Iterable[OperationType] | None,
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult | None:
        """The result strawberry would give, or None: take the usual way."""
        if not query or allowed_operation_types is None:
            return None
        if OperationType.QUERY not in allowed_operation_types:
            return None
        known = self.known(schema, query, operation_name)
        if known is None:
            return None
        cost = self.cost(schema, known, query, variable_values)
        if cost is None:
            return None
        record = getattr(context_value, "record_operation", None)
        if callable(record):
            record(known.operation_name, cost)
        request_id = request_id_of(context_value)
        executor = schema.execution_context_class
        memo = {"document_memo": known.memo} if issubclass(executor, DirectExecution) else {}
        # What graphql-core's executor is built with, the plan's way and the usual one.
        arguments: dict[str, Any] = {
            "root_value": root_value,
            "context_value": context_value,
            "operation_name": known.operation_name,
            "middleware": MiddlewareManager(),
            "is_awaitable": optimized_is_awaitable,
            "operation_extensions": operation_extensions,
            **memo,
        }
        if memo:
            planned = await self._planned(schema, known, variable_values, arguments)
            if planned is not None:
                return planned
        try:
            result = schema._get_execute_function()(
                schema._schema,
                known.document,
                variable_values=variable_values,
                executor_class=executor,
                **arguments,
            )
            if optimized_is_awaitable(result):
                result = await result
        except GraphQLError as error:
            return _refused(schema, coded(error, stage_code=None, request_id=request_id))
        except HTTP_LEVEL:
            raise
        except Exception as error:
            unexpected = GraphQLError(str(error), original_error=error)
            return _refused(schema, masked(unexpected, request_id=request_id))
        if not isinstance(result, GraphQLExecutionResult):
            raise TypeError(f"unexpected result {type(result).__name__}")  # pragma: no cover
        errors = result.errors
        if errors:
            schema._process_errors(errors)
            errors = [coded(error, stage_code=None, request_id=request_id) for error in errors]
        return ExecutionResult(data=result.data, errors=errors, extensions={})

    async def _planned(
        self,
        schema: strawberry.Schema,
        known: Known,
        variable_values: dict[str, Any] | None,
        arguments: dict[str, Any],
    ) -> ExecutionResult | None:
        """The result of the document's plan (``graphql_schema.query_plans``), or None:
        no plan, or the plan declined this request, which the usual way then executes."""
        plan = known.memo.get(PLAN_KEY, _UNKNOWN)
        if plan is _UNKNOWN:
            plan = plan_query(schema._schema, known.document, known.operation_name)
            known.memo[PLAN_KEY] = plan
        if plan is None or not _plannable(schema):
            return None
        # Anything raised (declined, an error, a schema graphql-core refuses) is for the
        # usual way to meet and report.
        executor: object = None
        try:
            executor = schema.execution_context_class.build(
                schema._schema, known.document, raw_variable_values=variable_values, **arguments
            )
            # A list: variables that do not coerce, graphql-core's errors.
            if not isinstance(executor, DirectExecution) or not executor.plannable:
                return None
            data = await PlannedRun(executor).run(plan)
        except Exception:
            return None
        finally:
            if isinstance(executor, DirectExecution):
                executor.release()
        return ExecutionResult(data=data, errors=None, extensions={})


# Where a document's plan is kept in its memo (a QueryPlan, or None: not plain).
PLAN_KEY = ("plan",)
_UNKNOWN = object()


def _plannable(schema: strawberry.Schema) -> bool:
    """graphql-core's ``execute`` refuses a schema with ``@defer``/``@stream`` unless
    strawberry runs the incremental executor; the plan never needs them."""
    graphql_schema = schema._schema
    incremental = graphql_schema.get_directive("defer") or graphql_schema.get_directive("stream")
    return not incremental or schema.config.enable_experimental_incremental_execution


def _refused(schema: strawberry.Schema, error: GraphQLError) -> ExecutionResult:
    """What strawberry makes of an exception raised by the execution: an error result."""
    schema._process_errors([error])
    return PreExecutionError(data=None, errors=[error], extensions={})


def _name_of(document: DocumentNode, operation_name: str | None) -> str | None:
    if operation_name is not None:
        return operation_name
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            return None if definition.name is None else definition.name.value
    return None
