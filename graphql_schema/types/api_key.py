"""API keys of the analysed API, and pages of them."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.records import ApiKeyRecord
from graphql_schema.batching import batch_of
from graphql_schema.inputs.time_range import TimeRangeInput
from graphql_schema.permissions import ADMIN_ON_PAID_PLAN, PANEL_NOTE
from graphql_schema.types.usage import EndpointUsage, OutcomeFilter, RowLimit, UsageReport
from resolvers import api_keys as api_key_resolvers
from resolvers import usage as usage_resolvers
from resolvers.context import Context

# The argument's published name, given so strawberry does not camel-case `time_range` once
# per key of a page on every request (bench/PROPOSALS.md, R13); the schema is unchanged.
KeyTimeRange = Annotated[TimeRangeInput, strawberry.argument(name="timeRange")]


async def _endpoint_usage_of_keys(
    keys: Sequence[ApiKey],
    context: Context,
    time_range: TimeRangeInput,
    outcomes: OutcomeFilter = None,
    limit: RowLimit = None,
) -> list[Sequence[EndpointUsage]]:
    """``ApiKey.endpoint_usage`` of every key of a list, its checks done once (for a page
    of keys: graphql_schema/batching.py, bench/PROPOSALS.md R25)."""
    report = await usage_resolvers.scope(
        context, context.organization, time_range.to_args(), outcomes=outcomes
    )
    tables = await usage_resolvers.endpoint_usage_of_keys(
        context, report, [key.record.id for key in keys], limit=limit
    )
    return [EndpointUsage.rows(table) for table in tables]


@strawberry.type(
    description=(
        "A key of the analysed API. Keys appear on first use; credits are drawn from the "
        "organization's pool, so a key is a filter on it, not a budget of its own."
    )
)
class ApiKey:
    record: strawberry.Private[ApiKeyRecord]
    # A plain attribute, filled from the record, so it takes strawberry's basic-field path
    # (no Info object, no extension resolver) once per key of a page (PROPOSALS.md, R16).
    id: strawberry.ID = strawberry.field(
        default=strawberry.ID(""), description="The key's id, as the API platform names it."
    )

    def __post_init__(self) -> None:
        self.id = strawberry.ID(self.record.external_id)

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.record.name

    @strawberry.field(
        description=(
            "When creditlens registered the key: its first ingested event, or its creation. "
            "Not when the key was issued, and not necessarily its earliest call (see "
            "`firstSeenAt`): events may arrive late or be imported from the past."
        )
    )
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field(
        description=(
            "Time of the earliest call made with the key, from its stored events; null while "
            "it has none."
        )
    )
    def first_seen_at(self) -> datetime | None:
        return self.record.first_seen_at

    @strawberry.field(description="When the key was revoked; null while it is active.")
    def revoked_at(self) -> datetime | None:
        return self.record.revoked_at

    @strawberry.field(description="Time of the newest call made with the key.")
    def last_used_at(self) -> datetime | None:
        return self.record.last_used_at

    @strawberry.field(
        description=(
            "Calls and credits per endpoint for this key: the first `limit` rows, then one "
            "`isOther` row summing the rest."
        )
        + PANEL_NOTE,
        permission_classes=ADMIN_ON_PAID_PLAN,
        graphql_type=list[EndpointUsage] | None,
        # Must answer for each key exactly as the resolver below does.
        metadata=batch_of(_endpoint_usage_of_keys),
    )
    def endpoint_usage(
        self,
        info: Info[Context, None],
        time_range: KeyTimeRange,
        outcomes: OutcomeFilter = None,
        limit: RowLimit = None,
    ) -> Awaitable[Sequence[EndpointUsage] | None]:
        # A plain function returning the coroutine, so strawberry takes its synchronous
        # path (the permission classes checked without a coroutine of their own, no
        # await_maybe layers) once per key of a page; graphql-core awaits the result, and an
        # error raised in it lands at this path as before (bench/PROPOSALS.md, R14).
        return self._endpoint_usage(info.context, time_range, outcomes, limit)

    async def _endpoint_usage(
        self,
        context: Context,
        time_range: TimeRangeInput,
        outcomes: OutcomeFilter,
        limit: int | None,
    ) -> Sequence[EndpointUsage] | None:
        report = await usage_resolvers.scope(
            context,
            context.organization,
            time_range.to_args(),
            api_key_id=self.record.id,
            outcomes=outcomes,
        )
        limited = await usage_resolvers.endpoint_usage_of_key(context, report, limit=limit)
        return EndpointUsage.rows(limited)

    @strawberry.field(
        description="The full usage report for this key." + PANEL_NOTE,
        permission_classes=ADMIN_ON_PAID_PLAN,
    )
    async def usage(
        self, info: Info[Context, None], time_range: KeyTimeRange, outcomes: OutcomeFilter = None
    ) -> UsageReport | None:
        report = await usage_resolvers.scope(
            info.context,
            info.context.organization,
            time_range.to_args(),
            api_key_id=self.record.id,
            outcomes=outcomes,
        )
        return UsageReport(scope=report)


@strawberry.type(description="An API key and its cursor.")
class ApiKeyEdge:
    cursor: str = strawberry.field(description="Pass as `after` to read the keys after this one.")
    node: ApiKey = strawberry.field(description="The key.")


@strawberry.type(description="Where a page stands.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more keys follow.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last key of the page.")


@strawberry.type(description="A page of API keys, oldest first.")
class ApiKeyConnection:
    edges: list[ApiKeyEdge] = strawberry.field(description="The keys of the page with cursors.")
    page_info: PageInfo = strawberry.field(description="Whether more keys follow.")
    include_revoked: strawberry.Private[bool]

    # A resolver, so the count is read only when asked: the page of keys is one statement,
    # the total another (bench/PROPOSALS.md, R19).
    @strawberry.field(description="How many keys match, on all pages.")
    async def total_count(self, info: Info[Context, None]) -> int:
        return await api_key_resolvers.count(info.context, include_revoked=self.include_revoked)

    @strawberry.field(description="The keys of the page, without cursors.")
    def nodes(self) -> list[ApiKey]:
        return [edge.node for edge in self.edges]
