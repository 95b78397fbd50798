"""The viewer's organization and its credit pool."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.dimensions import Dimension
from domain.records import OrganizationRecord
from graphql_schema.enums import CallOutcome, Plan
from graphql_schema.inputs.time_range import TimeRangeInput
from graphql_schema.permissions import ADMIN_ON_PAID_PLAN, PANEL_NOTE
from graphql_schema.scalars import BigInt
from graphql_schema.types.alert import Alert
from graphql_schema.types.api_key import (
    ApiKey,
    ApiKeyConnection,
    ApiKeyEdge,
    KeyTimeRange,
    PageInfo,
)
from graphql_schema.types.usage import EndpointUsage, OutcomeFilter, RowLimit, UsageReport
from resolvers import alerts as alert_resolvers
from resolvers import api_keys as api_key_resolvers
from resolvers import credit_pool as pool_resolvers
from resolvers import usage as usage_resolvers
from resolvers.context import Context

# The published name, given so strawberry does not camel-case `key_id` on every request
# (as `timeRange`, KeyTimeRange: bench/PROPOSALS.md R13, R32); the schema is unchanged.
KeyIdFilter = Annotated[strawberry.ID | None, strawberry.argument(name="keyId")]


@strawberry.type(description="The organization's credits this billing cycle.")
class CreditPool:
    cycle_start: datetime = strawberry.field(description="First instant of the billing cycle.")
    cycle_end: datetime = strawberry.field(description="First instant of the next cycle.")
    allowance: BigInt = strawberry.field(description="Credits the plan grants per cycle.")
    consumed: BigInt = strawberry.field(
        description="Credits consumed so far this cycle, by all keys."
    )
    remaining: BigInt = strawberry.field(
        description="allowance - consumed; negative once overspent."
    )
    burn_rate_per_day: float = strawberry.field(
        description="Average credits per day over the trailing 7 days."
    )
    projected_exhaustion_at: datetime | None = strawberry.field(
        description=(
            "When the pool runs out at the current burn rate; null if it lasts the cycle. "
            "Already exhausted: the current time."
        )
    )


@strawberry.type(description="An organization: the customer of the analysed API.")
class Organization:
    record: strawberry.Private[OrganizationRecord]

    @strawberry.field(description="The organization's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.record.id))

    @strawberry.field(description="Short unique name, used in URLs and by ingestion.")
    def slug(self) -> str:
        return self.record.slug

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.record.name

    @strawberry.field(description="The plan; usage analytics need a paid one.")
    def plan(self) -> Plan:
        return self.record.plan

    @strawberry.field(description="IANA time zone, the default calendar of its reports.")
    def timezone(self) -> str:
        return self.record.timezone

    @strawberry.field(
        description="Allowance, consumption and outlook of this billing cycle." + PANEL_NOTE,
        permission_classes=ADMIN_ON_PAID_PLAN,
    )
    async def credit_pool(self, info: Info[Context, None]) -> CreditPool | None:
        pool = await pool_resolvers.credit_pool(info.context, self.record)
        return CreditPool(
            cycle_start=pool.cycle_start,
            cycle_end=pool.cycle_end,
            allowance=BigInt(pool.allowance),
            consumed=BigInt(pool.consumed),
            remaining=BigInt(pool.remaining),
            burn_rate_per_day=round(pool.burn_rate_per_day, 4),
            projected_exhaustion_at=pool.projected_exhaustion_at,
        )

    @strawberry.field(
        description="API keys, oldest first, in pages of at most 100." + PANEL_NOTE,
        permission_classes=ADMIN_ON_PAID_PLAN,
    )
    async def api_keys(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        include_revoked: bool = False,
    ) -> ApiKeyConnection | None:
        keys, has_next = await api_key_resolvers.page(
            info.context, first=first, after=after, include_revoked=include_revoked
        )
        edges = [
            ApiKeyEdge(cursor=api_key_resolvers.encode_cursor(key), node=ApiKey(record=key))
            for key in keys
        ]
        return ApiKeyConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None
            ),
            include_revoked=include_revoked,
        )

    @strawberry.field(
        description="One API key by id; null if the organization has no such key." + PANEL_NOTE,
        permission_classes=ADMIN_ON_PAID_PLAN,
    )
    async def api_key(self, info: Info[Context, None], id: strawberry.ID) -> ApiKey | None:
        key = await api_key_resolvers.one(info.context, str(id))
        return None if key is None else ApiKey(record=key)

    @strawberry.field(
        description=(
            "The consumption table: calls, credits and share per endpoint, for all keys or "
            "the key `keyId`: the first `limit` rows, then one `isOther` row summing the "
            "rest. An empty range gives an empty list."
        )
        + PANEL_NOTE,
        permission_classes=ADMIN_ON_PAID_PLAN,
        graphql_type=list[EndpointUsage] | None,
    )
    def endpoint_usage(
        self,
        info: Info[Context, None],
        time_range: KeyTimeRange,
        key_id: KeyIdFilter = None,
        outcomes: OutcomeFilter = None,
        limit: RowLimit = None,
    ) -> Awaitable[Sequence[EndpointUsage] | None]:
        # A plain function returning the coroutine, as ApiKey.endpointUsage (R14): strawberry
        # then checks the permissions on its synchronous path, without a coroutine of its
        # own and the await_maybe layers; graphql-core awaits the result, and an error
        # raised in it lands at this path as before (bench/PROPOSALS.md, R31).
        return self._endpoint_usage(info.context, time_range, key_id, outcomes, limit)

    async def _endpoint_usage(
        self,
        context: Context,
        time_range: TimeRangeInput,
        key_id: strawberry.ID | None,
        outcomes: OutcomeFilter,
        limit: int | None,
    ) -> Sequence[EndpointUsage] | None:
        report = await self._scope(context, time_range, key_id, outcomes)
        limited = await usage_resolvers.breakdown(context, report, Dimension.ENDPOINT, limit=limit)
        return EndpointUsage.rows(limited)

    @strawberry.field(
        description="The full usage report, for all keys or the key `keyId`." + PANEL_NOTE,
        permission_classes=ADMIN_ON_PAID_PLAN,
        graphql_type=UsageReport | None,
    )
    def usage(
        self,
        info: Info[Context, None],
        time_range: KeyTimeRange,
        key_id: KeyIdFilter = None,
        outcomes: OutcomeFilter = None,
    ) -> Awaitable[UsageReport | None]:
        # A coroutine from a plain function, as endpoint_usage above.
        return self._usage(info.context, time_range, key_id, outcomes)

    async def _usage(
        self,
        context: Context,
        time_range: TimeRangeInput,
        key_id: strawberry.ID | None,
        outcomes: OutcomeFilter,
    ) -> UsageReport | None:
        return UsageReport(scope=await self._scope(context, time_range, key_id, outcomes))

    @strawberry.field(
        description=(
            "Credit alerts, oldest first (at most 100): thresholds per organization or per "
            "key, delivered by signed webhooks."
        )
        + PANEL_NOTE,
        permission_classes=ADMIN_ON_PAID_PLAN,
    )
    async def alerts(self, info: Info[Context, None]) -> list[Alert] | None:
        return Alert.of(info.context, await alert_resolvers.list_alerts(info.context))

    async def _scope(
        self,
        context: Context,
        time_range: TimeRangeInput,
        key_id: strawberry.ID | None,
        outcomes: list[CallOutcome] | None,
    ) -> usage_resolvers.ReportScope:
        return await usage_resolvers.scope(
            context,
            self.record,
            time_range.to_args(),
            key_id=None if key_id is None else str(key_id),
            outcomes=outcomes,
        )
