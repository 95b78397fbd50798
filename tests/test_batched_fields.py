"""Batchable fields (``graphql_schema.batching``) answer exactly as the ordinary path.

A page of keys' ``endpointUsage`` is resolved once for the page; every document below is
asked twice of the same application, once with the batching switched off, and the two
answers (data, errors with their paths, messages and codes) must be equal. A small schema
of its own checks the cases the real one cannot reach: a refusal per object (the real
``apiKeys`` is refused before any key), a permission that reads the object, a batch that
fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import strawberry
from strawberry.permission import BasePermission
from strawberry.types import Info
from strawberry.types.graphql import OperationType

import graphql_schema.known_operations as known_operations
from db.loaders import Reads
from graphql_schema.batching import BatchExecution, batch_of
from graphql_schema.execution import RowExecution
from graphql_schema.query_plans import PlannedRun
from tests.factories import (
    STORAGE,
    add_user,
    answered_both_ways,
    count_answers,
    event,
    graphql,
    known_schema,
    make_ingest_token,
    make_tenant,
    post_events,
    settle,
)

PAGE = """
{ organization { apiKeys(first: 50) { nodes { id
  endpointUsage(timeRange: {preset: LAST_30_DAYS}) {
    endpoint calls creditsConsumed percentOfTotal } } } } }
"""
MIXED = """
query { organization { apiKeys(first: 10) {
  totalCount
  nodes { id ...T
    week: endpointUsage(timeRange: {preset: LAST_7_DAYS}, limit: 1) { endpoint calls isOther }
    ok: endpointUsage(timeRange: {preset: LAST_30_DAYS}, outcomes: [SUCCESS]) {
      endpoint creditsConsumed }
    usage(timeRange: {preset: LAST_30_DAYS}) { calls }
  }
  edges { cursor node { endpointUsage(timeRange: {preset: LAST_30_DAYS}) { endpoint } } }
} } }
fragment T on ApiKey { name endpointUsage(timeRange: {preset: LAST_30_DAYS}) { endpoint calls } }
"""
VARIABLES = """
query($range: TimeRangeInput!, $limit: Int, $outcomes: [CallOutcome!], $with: Boolean!) {
  organization { apiKeys(first: 3, includeRevoked: true) { nodes { id
    endpointUsage(timeRange: $range, limit: $limit, outcomes: $outcomes) @include(if: $with) {
      endpoint calls creditsConsumed percentOfTotal isOther }
  } } } }
"""
BAD_LIMIT = """
{ organization { apiKeys { nodes { id
  endpointUsage(timeRange: {preset: LAST_30_DAYS}, limit: 0) { endpoint } } } } }
"""
NO_OUTCOMES = """
{ organization { apiKeys { nodes { id
  endpointUsage(timeRange: {preset: LAST_30_DAYS}, outcomes: []) { endpoint } } } } }
"""
BAD_RANGE = """
{ organization { apiKeys { nodes { id endpointUsage(timeRange:
  {start: "2026-06-10T00:00:00Z", end: "2026-06-01T00:00:00Z"}) { endpoint } } } } }
"""
# (document, variables, whether each key's table is refused with an error at its path)
CASES: list[tuple[str, dict[str, Any], bool]] = [
    (PAGE, {}, False),
    (MIXED, {}, False),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS"}, "limit": 2, "with": True}, False),
    (VARIABLES, {"range": {"preset": "THIS_MONTH"}, "outcomes": ["SUCCESS"], "with": True}, False),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS"}, "with": False}, False),
    (VARIABLES, {"range": {"preset": "LAST_30_DAYS"}, "limit": 500, "with": True}, True),
    (BAD_LIMIT, {}, True),
    (NO_OUTCOMES, {}, True),
    (BAD_RANGE, {}, True),
]


@pytest.fixture
def batches(monkeypatch):
    """How often a batched path was taken (0: never): the values the executor's batch
    handed out, and the lists a document's plan resolved in one batch."""
    executor = count_answers(monkeypatch, BatchExecution, "_known")
    plan = [0]
    batched = PlannedRun._batched

    async def counting(self: PlannedRun, *args: Any) -> Any:
        answer = await batched(self, *args)  # raises when the plan declines
        plan[0] += 1
        return answer

    monkeypatch.setattr(PlannedRun, "_batched", counting)

    class Total:
        def __getitem__(self, index: int) -> int:
            return executor[index] + plan[index]

    return Total()


# Without batching: neither the executor's batches nor a plan (which batches too).
ORDINARY = (
    (BatchExecution, "_batches", lambda *args: None),
    (known_operations, "_plannable", lambda schema: False),
)
# The executor's batches, without a plan.
UNPLANNED = ((known_operations, "_plannable", lambda schema: False),)


async def _both(client, token, query, variables, monkeypatch):  # type: ignore[no-untyped-def]
    """The answer batched (by the plan where the document has one), then without batching;
    and the executor's batched answer equals the plan's."""
    batched, unplanned = await answered_both_ways(
        client, token, query, variables, monkeypatch, *UNPLANNED
    )
    assert repr(batched) == repr(unplanned)
    return await answered_both_ways(client, token, query, variables, monkeypatch, *ORDINARY)


@pytest.fixture(params=STORAGE)
async def keys(request, uncached, clock):  # type: ignore[no-untyped-def]
    client, engine = uncached
    tenant = await make_tenant(engine, now=clock())
    ingest = await make_ingest_token(engine, now=clock())
    now = clock()
    events = []
    for number in range(6):
        for day in range(number * 3):
            events.append(
                event(
                    tenant.slug,
                    now - timedelta(days=day, hours=1),
                    api_key=f"key-{number}",
                    endpoint=f"/v2/e{(number + day) % 4}",
                    status=(200, 404, 429)[day % 3],
                    credits=day % 5,
                )
            )
    # A key whose only calls are older than every range asked: no rows.
    events.append(event(tenant.slug, now - timedelta(days=200), api_key="key-old"))
    response = await post_events(client, ingest, events)
    assert response.status_code == 200, response.text
    await settle(engine, request.param)
    return client, engine, tenant


@pytest.mark.parametrize(("query", "variables", "refused"), CASES)
async def test_a_page_of_keys_answers_as_the_ordinary_path(
    keys, query, variables, refused, batches, monkeypatch
):
    client, _, tenant = keys
    batched, ordinary = await _both(client, tenant.token, query, variables, monkeypatch)
    assert batched == ordinary
    if refused:
        assert batched["errors"]
        paths = [error["path"] for error in batched["errors"]]
        assert ["organization", "apiKeys", "nodes", 0, "endpointUsage"] in paths
        assert batches[0] == 0  # refused arguments: the ordinary path reported them
    else:
        assert "errors" not in batched, batched
        assert batches[0] > 0 or not variables.get("with", True)


async def test_the_page_is_read_through_one_batch(keys, batches, monkeypatch):
    client, _, tenant = keys
    reads = count_answers(monkeypatch, Reads, "endpoint_usage_by_key")
    body = (await graphql(client, tenant.token, PAGE)).json()
    nodes = body["data"]["organization"]["apiKeys"]["nodes"]
    assert len(nodes) == 6  # key-0 made no call: it does not exist
    assert batches[0] == 1  # the plan: one batch for the page
    assert reads[0] == 1
    assert {node["id"]: node["endpointUsage"] for node in nodes}["key-old"] == []
    # Without the plan, graphql-core's walk batches the page the same way.
    one_step = count_answers(monkeypatch, RowExecution, "_object")
    with monkeypatch.context() as unplanned:
        unplanned.setattr(known_operations, "_plannable", lambda schema: False)
        again = (await graphql(client, tenant.token, PAGE)).json()
    assert again == body
    assert batches[0] == 1 + 6
    assert one_step[0] == 6  # each key and its table completed in one step (R33)
    assert reads[0] == 2


@pytest.mark.parametrize(("plan", "role"), [("PRO", "MEMBER"), ("FREE", "ADMIN")])
async def test_refusals_answer_as_the_ordinary_path(uncached, clock, plan, role, monkeypatch):
    client, engine = uncached
    tenant = await make_tenant(engine, now=clock(), plan=plan, role=role)
    _, _, other = await add_user(engine, tenant, role=role, now=clock())
    for token in (tenant.token, other):
        batched, ordinary = await _both(client, token, PAGE, {}, monkeypatch)
        assert batched == ordinary
        assert batched["errors"]


# --- A schema of its own: refusals per object, object-dependent permissions, failures ---


class Allowed(BasePermission):
    """Allows when the context says so, whatever the object."""

    message = "not allowed"
    source_free: ClassVar[bool] = True

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context["allowed"])


class OddOnly(BasePermission):
    """Reads the object: never checked once for a list."""

    message = "even"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return source is None or source.n % 2 == 1


CALLS: list[str] = []


def _value(item: Item, times: int) -> list[int]:
    if times < 0:
        raise ValueError(f"times {times} for {item.n}")
    return [item.n * times] * (item.n % 3)


async def _values(items: Sequence[Item], context: Any, times: int = 1) -> list[list[int]]:
    CALLS.append("batch")
    return [_value(item, times) for item in items]


async def _failing(items: Sequence[Item], context: Any, times: int = 1) -> list[list[int]]:
    raise ValueError("the batch fails")


@strawberry.type
class Part:
    n: int
    label: str

    @strawberry.field
    def shout(self) -> str:  # a resolver: rows holding it take the ordinary path
        return self.label.upper()


def _parts(item: Item, times: int) -> list[Part] | None:
    if times < 0:
        raise ValueError(f"times {times} for {item.n}")
    if times == 0:
        return None
    return [Part(n=item.n * times + k, label=f"p{item.n}.{k}") for k in range(item.n % 3)]


async def _parts_of(items: Sequence[Item], context: Any, times: int = 1) -> list[Any]:
    CALLS.append("batch")
    return [_parts(item, times) for item in items]


@strawberry.type
class Item:
    n: int

    @strawberry.field(permission_classes=[Allowed], metadata=batch_of(_parts_of))
    async def parts(self, times: int = 1) -> list[Part] | None:
        CALLS.append("one")
        return _parts(self, times)

    @strawberry.field(permission_classes=[Allowed], metadata=batch_of(_parts_of))
    async def strict_parts(self, times: int = 1) -> list[Part]:
        CALLS.append("one")
        return _parts(self, times)  # type: ignore[return-value]  # None: an error

    @strawberry.field(permission_classes=[Allowed], metadata=batch_of(_values))
    async def values(self, times: int = 1) -> list[int] | None:
        CALLS.append("one")
        return _value(self, times)

    @strawberry.field(permission_classes=[Allowed, OddOnly], metadata=batch_of(_values))
    async def odd(self, times: int = 1) -> list[int] | None:
        CALLS.append("one")
        return _value(self, times)

    @strawberry.field(permission_classes=[Allowed], metadata=batch_of(_failing))
    async def failing(self, times: int = 1) -> list[int] | None:
        CALLS.append("one")
        return _value(self, times)


@strawberry.type
class SmallQuery:
    @strawberry.field
    def items(self) -> list[Item]:
        return [Item(n=n) for n in range(5)]

    @strawberry.field
    def strict(self) -> list[Item | None] | None:
        return [Item(n=1), None, Item(n=2)]


SMALL = [
    ("{ items { n values } }", 0),
    ("{ items { n a: values(times: 2) b: values(times: -1) } }", 0),
    ("query($t: Int!) { items { ... on Item { values(times: $t) } } }", 0),
    ("{ items { odd } }", 0),
    ("{ items { failing } }", 0),
    ("{ strict { n values } }", 0),
    ("{ items { values } }", 1),  # refused: a null and an error per item
    # Batched lists of objects, completed with their rows in one step (R33) or not:
    ("{ items { n parts { n label } } }", 0),
    ("{ items { parts { label __typename } n } }", 0),
    ("{ items { a: parts { n } n b: parts(times: 2) { label n } } }", 0),
    ("query($w: Boolean!) { items { n parts @include(if: $w) { n } } }", 0),
    ("query($w: Boolean!) { items { n parts { n label @skip(if: $w) } } }", 0),
    ("{ items { n parts(times: 0) { n } } }", 0),  # a null list
    ("{ items { n strictParts(times: 0) { n } } }", 0),  # a null for a non-null list
    ("{ items { n strictParts { n } } }", 0),
    ("{ items { n parts { n shout } } }", 0),  # rows with a resolver
    ("{ items { n parts(times: -1) { n } } }", 0),  # the batch fails
    ("{ strict { n parts { n } } }", 0),  # a null among the objects
    ("{ items { n parts { n } } }", 1),  # refused
]
# The documents whose objects are each completed in one step, tables and all.
ONE_STEP = {
    "{ items { n parts { n label } } }",
    "{ items { parts { label __typename } n } }",
    "{ items { a: parts { n } n b: parts(times: 2) { label n } } }",
    "query($w: Boolean!) { items { n parts @include(if: $w) { n } } }",
    "query($w: Boolean!) { items { n parts { n label @skip(if: $w) } } }",
    "{ items { n parts(times: 0) { n } } }",
    "{ items { n strictParts { n } } }",
}


# The documents a plan runs with its lists' batches (no directive; every batch answers).
PLANNED_BATCHES = {
    "{ items { n parts { n label } } }",
    "{ items { parts { label __typename } n } }",
    "{ items { a: parts { n } n b: parts(times: 2) { label n } } }",
    "{ items { n parts(times: 0) { n } } }",
    "{ items { n strictParts { n } } }",
    "{ items { n parts { n shout } } }",
}


class CountingObjects(RowExecution):
    """Counts the objects completed in one step with their batched lists."""

    completed = 0

    def _object(self, *args: Any) -> Any:
        row = super()._object(*args)
        CountingObjects.completed += row is not None
        return row


@pytest.mark.parametrize("execution", [BatchExecution, CountingObjects, PlannedRun])
@pytest.mark.parametrize(("document", "refused"), SMALL)
async def test_a_small_schema_answers_as_the_ordinary_path(
    document, refused, execution, monkeypatch
):
    context = {"allowed": not refused}
    variables = {"t": 3, "w": True}
    run = {
        "variable_values": variables,
        "context_value": context,
        "allowed_operation_types": {OperationType.QUERY},
    }
    CALLS.clear()
    if execution is PlannedRun:
        # Our schema, whose plan batches the lists, against itself without any batching.
        batched = known_schema(SmallQuery)
        with monkeypatch.context() as off:
            for owner, attribute, value in ORDINARY:
                off.setattr(owner, attribute, value)
            expected = await batched.execute(document, **run)
    else:
        batched = strawberry.Schema(query=SmallQuery, execution_context_class=execution)
        expected = await strawberry.Schema(query=SmallQuery).execute(document, **run)
    CALLS.clear()
    CountingObjects.completed = 0
    planned = [0]
    plan_batch = PlannedRun._batched

    async def counting(self: PlannedRun, *args: Any) -> Any:
        answer = await plan_batch(self, *args)
        planned[0] += 1
        return answer

    monkeypatch.setattr(PlannedRun, "_batched", counting)
    got = await batched.execute(document, **run)
    assert got.data == expected.data
    # The same values of the same types, and keys in the same order (the JSON answer's).
    assert repr(got.data) == repr(expected.data)
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    if execution is CountingObjects:
        assert CountingObjects.completed == (5 if document in ONE_STEP else 0)
    if execution is PlannedRun:
        # Plain documents whose batches answer: the plan resolved each list in one batch.
        assert planned[0] == (1 if document in PLANNED_BATCHES else 0)
    if document == "{ items { n values } }":
        assert CALLS == ["batch"]  # one call for the list, none per item
    if "odd" in document or "failing" in document:
        assert "one" in CALLS  # the ordinary path, for the objects' own verdicts or errors
    if refused:
        assert CALLS == []  # refused per item, before any resolver
