"""Usage figures: breakdown rows, series buckets and the report that holds them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from domain.dimensions import Dimension
from domain.records import Share
from graphql_schema.enums import Granularity, TimeRangePreset
from graphql_schema.scalars import BigInt
from resolvers import usage as usage_resolvers
from resolvers.context import Context
from resolvers.usage import ReportScope

if TYPE_CHECKING:
    from graphql_schema.types.api_key import ApiKey
    from graphql_schema.types.viewer import User

PERCENT_DIGITS = 4


def _percent(share: Share) -> float:
    return round(share.percent, PERCENT_DIGITS)


@strawberry.interface(description="Calls and credits of one row of a breakdown.")
class UsageShare:
    calls: BigInt = strawberry.field(description="Number of calls.")
    credits_consumed: BigInt = strawberry.field(
        description="Credits drawn from the organization's pool by these calls."
    )
    percent_of_total: float = strawberry.field(
        description=(
            "This row's share of the report's credits, in percent; rows sum to 100 "
            "(± rounding). When no call cost credits, the share of calls."
        )
    )


@strawberry.type(description="One endpoint of the analysed API and what its calls cost.")
class EndpointUsage(UsageShare):
    endpoint: str = strawberry.field(description="Path or name, e.g. /v2/person.")

    @classmethod
    def of(cls, share: Share) -> EndpointUsage:
        return cls(
            endpoint=str(share.value),
            calls=share.calls,
            credits_consumed=share.credits,
            percent_of_total=_percent(share),
        )


@strawberry.type(description="One source (origin) of calls, e.g. api or crm_integration.")
class SourceUsage(UsageShare):
    source: str = strawberry.field(description="Origin of the calls, lower case.")


@strawberry.type(description="One user's calls; `user` is null for calls made without a user.")
class UserUsage(UsageShare):
    user: Annotated[User, strawberry.lazy("graphql_schema.types.viewer")] | None = strawberry.field(
        description="Who made the calls; null for calls not attributed to a user."
    )


@strawberry.type(description="One API key's calls; `apiKey` is null for calls made without a key.")
class ApiKeyUsage(UsageShare):
    api_key: Annotated[ApiKey, strawberry.lazy("graphql_schema.types.api_key")] | None = (
        strawberry.field(description="The key used; null for calls made without a key.")
    )


@strawberry.type(description="Calls and credits in one period of a series.")
class UsageBucket:
    start: datetime = strawberry.field(description="First instant of the period (UTC).")
    end: datetime = strawberry.field(description="First instant after the period (UTC).")
    calls: BigInt = strawberry.field(description="Number of calls.")
    credits_consumed: BigInt = strawberry.field(description="Credits consumed.")


@strawberry.type(description="The exact instants and time zone a report covers.")
class ResolvedTimeRange:
    start: datetime = strawberry.field(description="First instant included (UTC).")
    end: datetime = strawberry.field(description="First instant excluded (UTC).")
    timezone: str = strawberry.field(description="IANA zone of the calendar periods.")
    preset: TimeRangePreset | None = strawberry.field(
        description="The preset it came from, if any."
    )


@strawberry.type(description="How a report's figures changed against the previous period.")
class UsageChange:
    calls_percent: float | None = strawberry.field(
        description="Change in calls, in percent; null when the previous period had none."
    )
    credits_percent: float | None = strawberry.field(
        description="Change in credits, in percent; null when the previous period had none."
    )


def _change(now: int, before: int) -> float | None:
    return None if before == 0 else round(100.0 * (now - before) / before, PERCENT_DIGITS)


@strawberry.type(
    description=(
        "Where the credits of a time range went, for the organization or one API key. "
        "Every list is ordered by credits, then calls, then name (a user's or key's display "
        "name; the row without a user or key last)."
    )
)
class UsageReport:
    scope: strawberry.Private[ReportScope]

    @strawberry.field(description="The exact range and zone used.")
    def range(self) -> ResolvedTimeRange:
        resolved = self.scope.range
        return ResolvedTimeRange(
            start=resolved.start,
            end=resolved.end,
            timezone=resolved.timezone,
            preset=resolved.preset,
        )

    @strawberry.field(description="Number of calls in the range.")
    async def calls(self, info: Info[Context, None]) -> BigInt:
        return (await usage_resolvers.totals(info.context, self.scope)).calls

    @strawberry.field(description="Credits consumed in the range.")
    async def credits_consumed(self, info: Info[Context, None]) -> BigInt:
        return (await usage_resolvers.totals(info.context, self.scope)).credits

    @strawberry.field(description="Calls and credits per endpoint.")
    async def by_endpoint(self, info: Info[Context, None]) -> list[EndpointUsage]:
        shares = await usage_resolvers.breakdown(info.context, self.scope, Dimension.ENDPOINT)
        return [EndpointUsage.of(share) for share in shares]

    @strawberry.field(description="Calls and credits per source.")
    async def by_source(self, info: Info[Context, None]) -> list[SourceUsage]:
        shares = await usage_resolvers.breakdown(info.context, self.scope, Dimension.SOURCE)
        return [
            SourceUsage(
                source=str(share.value),
                calls=share.calls,
                credits_consumed=share.credits,
                percent_of_total=_percent(share),
            )
            for share in shares
        ]

    @strawberry.field(description="Calls and credits per user; one row for calls without a user.")
    async def by_user(self, info: Info[Context, None]) -> list[UserUsage]:
        from graphql_schema.types.viewer import User

        rows = await usage_resolvers.by_user(info.context, self.scope)
        return [
            UserUsage(
                user=None if user is None else User.of(user),
                calls=share.calls,
                credits_consumed=share.credits,
                percent_of_total=_percent(share),
            )
            for share, user in rows
        ]

    @strawberry.field(description="Calls and credits per API key; one row for calls without a key.")
    async def by_api_key(self, info: Info[Context, None]) -> list[ApiKeyUsage]:
        from graphql_schema.types.api_key import ApiKey

        rows = await usage_resolvers.by_api_key(info.context, self.scope)
        return [
            ApiKeyUsage(
                api_key=None if key is None else ApiKey(record=key),
                calls=share.calls,
                credits_consumed=share.credits,
                percent_of_total=_percent(share),
            )
            for share, key in rows
        ]

    @strawberry.field(
        description=(
            "Calls and credits per calendar period in the report's zone, empty periods "
            "included as zeros. The first and last buckets are cut to the range."
        )
    )
    async def series(
        self,
        info: Info[Context, None],
        granularity: Granularity,
    ) -> list[UsageBucket]:
        buckets = await usage_resolvers.series(info.context, self.scope, granularity)
        return [
            UsageBucket(
                start=bucket.start,
                end=bucket.end,
                calls=bucket.tally.calls,
                credits_consumed=bucket.tally.credits,
            )
            for bucket in buckets
        ]

    @strawberry.field(
        description=(
            "When the newest event (of this key, when filtered) arrived, whatever the range: "
            "tells 'no spend' from 'no data arriving'. Null if none ever did."
        )
    )
    async def last_event_at(self, info: Info[Context, None]) -> datetime | None:
        return await usage_resolvers.last_event_at(info.context, self.scope)

    @strawberry.field(
        description=(
            "The same report for the period of the same calendar length that ends where "
            "this one starts: last week for a week, last month for a month, the previous "
            "billing cycle for a cycle, else the same wall-clock length in the zone."
        )
    )
    def previous(self) -> UsageReport:
        return UsageReport(scope=self.scope.previous())

    @strawberry.field(description="Change of calls and credits against `previous`.")
    async def change(self, info: Info[Context, None]) -> UsageChange:
        now = await usage_resolvers.totals(info.context, self.scope)
        before = await usage_resolvers.totals(info.context, self.scope.previous())
        return UsageChange(
            calls_percent=_change(now.calls, before.calls),
            credits_percent=_change(now.credits, before.credits),
        )
