"""Table rows completed from their records (``graphql_schema.record_rows``) answer exactly as
the objects their view makes.

Each view names every field of its type; a list of records completes to the same rows as
the list of objects it iterates to, for any figures (64-bit and larger integers, negative
ones, NaN and infinite shares: where the objects' completion declines, so does the
records'); and documents over the real application (breakdowns with their `isOther` row,
series, a page of keys, aliases and `__typename`, a directive) answer the same with the
records' path, with it switched off (the objects completed as rows), and with every fast
path of the rows switched off (graphql-core completing each object).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import strawberry
from hypothesis import given
from hypothesis import strategies as st

import graphql_schema.known_operations as known_operations
from app.settings import Settings
from domain.breakdowns import Limited, Rest
from domain.records import Share, Tally
from graphql_schema.execution import _NO_PLAN, RowExecution, complete_rows, leaf_step
from graphql_schema.record_rows import RecordRows, RowView
from graphql_schema.schema import build_schema
from graphql_schema.types.usage import (
    BUCKET_ROWS,
    ENDPOINT_ROWS,
    SOURCE_ROWS,
    EndpointUsage,
    SourceUsage,
    UsageBucket,
)
from resolvers.usage import Bucket
from tests.factories import STORAGE, answered_both_ways, client_and_daily_tenant

SCHEMA = build_schema(Settings())
VIEWS: list[tuple[RowView[Any, Any], type]] = [
    (ENDPOINT_ROWS, EndpointUsage),
    (SOURCE_ROWS, SourceUsage),
    (BUCKET_ROWS, UsageBucket),
]


@pytest.mark.parametrize(("view", "cls"), VIEWS)
def test_every_view_gives_every_field_of_its_type(view: RowView[Any, Any], cls: type) -> None:
    fields = {field.python_name for field in cls.__strawberry_definition__.fields}  # type: ignore[attr-defined]
    assert set(view.fields) == fields
    assert view.cls is cls


def _plan(type_name: str, names: list[str]) -> tuple[Any, ...]:
    object_type = SCHEMA._schema.type_map[type_name]
    return tuple(leaf_step(name, object_type.fields[name]) for name in names)


ROW_FIELDS = ["endpoint", "calls", "creditsConsumed", "percentOfTotal", "isOther", "otherRowCount"]
# Figures as a database could hand them over, including what no coercion accepts.
figures = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.just(0))
percents = st.floats(allow_nan=True, allow_infinity=True)
shares = st.builds(Share, st.text(max_size=8), figures, figures, percents)


@given(
    st.lists(shares, max_size=6), st.none() | st.builds(Rest, figures, figures, figures, percents)
)
def test_records_complete_as_the_objects_they_make(rows: list[Share], rest: Rest | None) -> None:
    object_type = SCHEMA._schema.type_map["EndpointUsage"]
    plan = _plan("EndpointUsage", ROW_FIELDS)
    records = EndpointUsage.rows(Limited(rows, rest))
    assert isinstance(records, RecordRows)
    objects = list(records)
    assert len(records) == len(objects) == len(rows) + (rest is not None)
    assert complete_rows(plan, object_type, records, None) == complete_rows(
        plan, object_type, objects, None
    )


def test_series_buckets_complete_as_the_objects_they_make() -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 3, 29, tzinfo=UTC)
    buckets = [
        Bucket(start + timedelta(days=day), start + timedelta(days=day + 1), Tally(day, 3 * day))
        for day in range(5)
    ]
    object_type = SCHEMA._schema.type_map["UsageBucket"]
    plan = _plan("UsageBucket", ["start", "end", "calls", "creditsConsumed"])
    records = BUCKET_ROWS.rows(buckets)
    completed = complete_rows(plan, object_type, records, None)
    assert completed is not None
    assert completed == complete_rows(plan, object_type, list(records), None)
    assert completed[1]["calls"] == 1
    assert completed[1]["creditsConsumed"] == 3


def test_a_view_completes_only_its_own_type() -> None:
    # Source rows handed to the endpoint type's plan: the records' path steps aside.
    plan = _plan("EndpointUsage", ["calls"])
    assert SOURCE_ROWS.steps(plan, SCHEMA._schema.type_map["EndpointUsage"]) is None
    assert ENDPOINT_ROWS.steps(plan, SCHEMA._schema.type_map["EndpointUsage"]) is not None


TABLE = "endpoint calls creditsConsumed percentOfTotal isOther otherRowCount"
REPORT = f"""query {{ organization {{ usage(timeRange: {{preset: LAST_90_DAYS}}) {{
  byEndpoint(limit: 1) {{ {TABLE} }} all: byEndpoint {{ __typename e: endpoint calls }}
  bySource(limit: 1) {{ source calls creditsConsumed percentOfTotal isOther otherRowCount }}
  series(granularity: WEEK) {{ start end calls creditsConsumed }} }} }} }}"""
KEYS = f"""query {{ organization {{ apiKeys(first: 5) {{ nodes {{ id
  endpointUsage(timeRange: {{preset: LAST_30_DAYS}}, limit: 1) {{ {TABLE} }} }} }} }} }}"""
DIRECTIVE = f"""query($with: Boolean!) {{ organization {{
  endpointUsage(timeRange: {{preset: LAST_30_DAYS}}) @include(if: $with) {{ {TABLE} }} }} }}"""
DOCUMENTS = [(REPORT, {}), (KEYS, {}), (DIRECTIVE, {"with": True})]


@pytest.fixture(params=STORAGE)
async def tenant(request, uncached, clock):  # type: ignore[no-untyped-def]
    return await client_and_daily_tenant(
        uncached, request.param, now=clock(), timezone="America/Santiago", days=60, hours_before=5
    )


@pytest.fixture
def record_lists(monkeypatch):  # type: ignore[no-untyped-def]
    """How many lists of records were completed from their records."""
    completed = [0]
    steps = RowView.steps

    def counting(self: RowView[Any, Any], plan: Any, object_type: Any) -> Any:
        found = steps(self, plan, object_type)
        completed[0] += found is not None
        return found

    monkeypatch.setattr(RowView, "steps", counting)
    return completed


@pytest.mark.parametrize(("query", "variables"), DOCUMENTS)
async def test_documents_answer_the_same_with_and_without_the_records_path(
    tenant, query, variables, record_lists, monkeypatch
):
    client, owner = tenant
    no_records = (RowView, "steps", lambda self, plan, object_type: None)
    with_records, as_objects = await answered_both_ways(
        client, owner.token, query, variables, monkeypatch, no_records
    )
    assert "errors" not in with_records, with_records
    assert repr(with_records) == repr(as_objects)
    assert record_lists[0] > 0
    # Every fast path of rows off: graphql-core completes each object the view made.
    slow = (
        (RowExecution, "_plan_of", lambda self, parent_type, fields: _NO_PLAN),
        (known_operations, "_plannable", lambda schema: False),
    )
    again, by_graphql_core = await answered_both_ways(
        client, owner.token, query, variables, monkeypatch, *slow
    )
    assert repr(again) == repr(with_records) == repr(by_graphql_core)
    rows = str(with_records)
    assert "'isOther': True" in rows or query is not REPORT


@strawberry.type
class Picky:
    n: int

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, Picky) and obj.n >= 0


@strawberry.type
class PickyQuery:
    @strawberry.field
    def picky(self) -> list[Picky]:
        return []


def test_a_type_check_of_the_types_own_is_asked_of_every_list() -> None:
    schema = strawberry.Schema(query=PickyQuery)._schema
    object_type = schema.type_map["Picky"]
    plan = (leaf_step("n", object_type.fields["n"]),)
    view: RowView[SimpleNamespace, Picky] = RowView(Picky, {"n": "n"})
    assert complete_rows(plan, object_type, view.rows([SimpleNamespace(n=1)]), None) == [{"n": 1}]
    # The verdict depends on the object here: not kept from the list before.
    assert complete_rows(plan, object_type, view.rows([SimpleNamespace(n=-1)]), None) is None
    # strawberry's own check (by class) is kept per type: asked once.
    endpoint_type = SCHEMA._schema.type_map["EndpointUsage"]
    row = Share("/v2/a", 1, 2, 50.0)
    assert ENDPOINT_ROWS.passes_type_check(endpoint_type, row, None)
    assert ENDPOINT_ROWS._checked[id(endpoint_type)] == (endpoint_type, True)
