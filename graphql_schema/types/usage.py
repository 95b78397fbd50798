"""Usage figures: breakdown rows, series buckets and the report that holds them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from domain.breakdowns import Limited, Rest
from domain.dimensions import Dimension
from domain.records import Share
from graphql_schema.enums import CallOutcome, ComparisonAlignment, Granularity, TimeRangePreset
from graphql_schema.record_rows import RowView, Source, constant
from graphql_schema.scalars import BigInt
from resolvers import usage as usage_resolvers
from resolvers.context import Context
from resolvers.usage import Bucket, ReportScope

if TYPE_CHECKING:
    from graphql_schema.types.api_key import ApiKey
    from graphql_schema.types.outcomes import OutcomeUsage
    from graphql_schema.types.spikes import UsageSpike
    from graphql_schema.types.viewer import User

PERCENT_DIGITS = 4

# The argument every breakdown list takes (docs/reports.md, "Bounded breakdowns").
# Both name their argument, so strawberry does not camel-case it on every field it is
# passed to (once per key of a page; bench/PROPOSALS.md, R20); the schema is unchanged.
RowLimit = Annotated[
    int | None,
    strawberry.argument(
        name="limit",
        description=(
            "At most this many rows, from 1 to the server's page size (max_page_size, 100 "
            "unless configured), which is also the default. The rows after them are summed "
            "into one last row with `isOther: true`."
        ),
    ),
]


# The filter every report-creating field takes (Organization and ApiKey: usage,
# endpointUsage); the report's scope carries it to every figure read from it.
OutcomeFilter = Annotated[
    list[CallOutcome] | None,
    strawberry.argument(
        name="outcomes",
        description=(
            "Only calls with these outcomes: every figure of the report (totals, each "
            "breakdown, series, previous, change, spikes) counts only them. Leave it out "
            "for all calls; an empty list is refused (BAD_USER_INPUT)."
        ),
    ),
]

# Nullable, as shared/DESIGN.md spells it: an explicit null is the default, FULL_PERIOD.
Alignment = Annotated[
    ComparisonAlignment | None,
    strawberry.argument(
        description=(
            "FULL_PERIOD (the default) compares with the whole previous period; TO_DATE, on "
            "a running period, with the same elapsed local wall time of it."
        )
    ),
]


def _percent(share: Share | Rest) -> float:
    return round(share.percent, PERCENT_DIGITS)


@strawberry.interface(
    description=(
        "Calls and credits of one row of a breakdown. A breakdown lists at most `limit` "
        "rows; when there are more, one last row with `isOther: true` sums the rest."
    )
)
class UsageShare:
    calls: BigInt = strawberry.field(description="Number of calls.")
    credits_consumed: BigInt = strawberry.field(
        description="Credits drawn from the organization's pool by these calls."
    )
    percent_of_total: float = strawberry.field(
        description=(
            "This row's share of the report's credits, in percent; rows sum to 100 "
            "(± rounding), the `isOther` row included. When no call cost credits, the share "
            "of calls."
        )
    )
    is_other: bool = strawberry.field(
        default=False,
        description=(
            "True on the one row that sums every row after `limit`; it comes last, whatever "
            'its figures, and its name fields are empty (endpoint, source: ""; user, '
            "apiKey: null)."
        ),
    )
    other_row_count: int | None = strawberry.field(
        default=None,
        description="On the `isOther` row, how many rows it sums; null on every other row.",
    )


def _rest(rest: Rest) -> dict[str, Any]:
    """The fields every kind of row sets for the row that sums the rest."""
    return {
        "calls": rest.calls,
        "credits_consumed": rest.credits,
        "percent_of_total": _percent(rest),
        "is_other": True,
        "other_row_count": rest.rows,
    }


@strawberry.type(description="One endpoint of the analysed API and what its calls cost.")
class EndpointUsage(UsageShare):
    endpoint: str = strawberry.field(
        description="Path or name, e.g. /v2/person; empty on the `isOther` row."
    )

    @classmethod
    def rows(cls, limited: Limited[Share]) -> Sequence[EndpointUsage]:
        """The listed rows, then the row that sums the rest (if any)."""
        tail = () if limited.rest is None else (cls(endpoint="", **_rest(limited.rest)),)
        return ENDPOINT_ROWS.rows(limited.rows, tail)


@strawberry.type(description="One source (origin) of calls, e.g. api or crm_integration.")
class SourceUsage(UsageShare):
    source: str = strawberry.field(
        description="Origin of the calls, lower case; empty on the `isOther` row."
    )


@strawberry.type(description="One user's calls; `user` is null for calls made without a user.")
class UserUsage(UsageShare):
    user: Annotated[User, strawberry.lazy("graphql_schema.types.viewer")] | None = strawberry.field(
        description=(
            "Who made the calls; null for calls not attributed to a user, and on the `isOther` row."
        )
    )


@strawberry.type(description="One API key's calls; `apiKey` is null for calls made without a key.")
class ApiKeyUsage(UsageShare):
    api_key: Annotated[ApiKey, strawberry.lazy("graphql_schema.types.api_key")] | None = (
        strawberry.field(
            description=(
                "The key used; null for calls made without a key, and on the `isOther` row."
            )
        )
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


# How a listed row of a breakdown is made from its Share, for each kind of row
# (graphql_schema/record_rows.py: the rows' path completes them from the Share). An
# endpoint's or a source's name is the Share's value as stored: always text.
_SHARE_FIELDS: dict[str, Source] = {
    "calls": "calls",
    "credits_consumed": "credits",
    "percent_of_total": _percent,
    "is_other": constant(False),
    "other_row_count": constant(None),
}
ENDPOINT_ROWS: RowView[Share, EndpointUsage] = RowView(
    EndpointUsage, {"endpoint": "value", **_SHARE_FIELDS}
)
SOURCE_ROWS: RowView[Share, SourceUsage] = RowView(
    SourceUsage, {"source": "value", **_SHARE_FIELDS}
)


def _bucket_calls(bucket: Bucket) -> int:
    return bucket.tally.calls


def _bucket_credits(bucket: Bucket) -> int:
    return bucket.tally.credits


BUCKET_ROWS: RowView[Bucket, UsageBucket] = RowView(
    UsageBucket,
    {
        "start": "start",
        "end": "end",
        "calls": _bucket_calls,
        "credits_consumed": _bucket_credits,
    },
)


def _aligned(alignment: ComparisonAlignment | None) -> ComparisonAlignment:
    return ComparisonAlignment.FULL_PERIOD if alignment is None else alignment


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
        return BigInt((await usage_resolvers.totals(info.context, self.scope)).calls)

    @strawberry.field(description="Credits consumed in the range.")
    async def credits_consumed(self, info: Info[Context, None]) -> BigInt:
        return BigInt((await usage_resolvers.totals(info.context, self.scope)).credits)

    @strawberry.field(
        description=(
            "Calls and credits per endpoint: the first `limit` rows, then one `isOther` row "
            "summing the rest."
        )
    )
    async def by_endpoint(
        self, info: Info[Context, None], limit: RowLimit = None
    ) -> Sequence[EndpointUsage]:
        limited = await usage_resolvers.breakdown(
            info.context, self.scope, Dimension.ENDPOINT, limit=limit
        )
        return EndpointUsage.rows(limited)

    @strawberry.field(
        description=(
            "Calls and credits per source: the first `limit` rows, then one `isOther` row "
            "summing the rest."
        )
    )
    async def by_source(
        self, info: Info[Context, None], limit: RowLimit = None
    ) -> Sequence[SourceUsage]:
        limited = await usage_resolvers.breakdown(
            info.context, self.scope, Dimension.SOURCE, limit=limit
        )
        tail = () if limited.rest is None else (SourceUsage(source="", **_rest(limited.rest)),)
        return SOURCE_ROWS.rows(limited.rows, tail)

    @strawberry.field(
        description=(
            "Calls and credits per user, one row for calls without a user: the first `limit` "
            "rows, then one `isOther` row summing the rest."
        )
    )
    async def by_user(self, info: Info[Context, None], limit: RowLimit = None) -> list[UserUsage]:
        from graphql_schema.types.viewer import User

        limited = await usage_resolvers.by_user(info.context, self.scope, limit=limit)
        rows = [
            UserUsage(
                user=None if user is None else User.of(user),
                calls=BigInt(share.calls),
                credits_consumed=BigInt(share.credits),
                percent_of_total=_percent(share),
            )
            for share, user in limited.rows
        ]
        if limited.rest is not None:
            rows.append(UserUsage(user=None, **_rest(limited.rest)))
        return rows

    @strawberry.field(
        description=(
            "Calls and credits per API key, one row for calls without a key: the first "
            "`limit` rows, then one `isOther` row summing the rest."
        )
    )
    async def by_api_key(
        self, info: Info[Context, None], limit: RowLimit = None
    ) -> list[ApiKeyUsage]:
        from graphql_schema.types.api_key import ApiKey

        limited = await usage_resolvers.by_api_key(info.context, self.scope, limit=limit)
        rows = [
            ApiKeyUsage(
                api_key=None if key is None else ApiKey(record=key),
                calls=BigInt(share.calls),
                credits_consumed=BigInt(share.credits),
                percent_of_total=_percent(share),
            )
            for share, key in limited.rows
        ]
        if limited.rest is not None:
            rows.append(ApiKeyUsage(api_key=None, **_rest(limited.rest)))
        return rows

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
    ) -> Sequence[UsageBucket]:
        return BUCKET_ROWS.rows(await usage_resolvers.series(info.context, self.scope, granularity))

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
            "billing cycle for a cycle, else the same wall-clock length in the zone. With "
            "`alignment: TO_DATE` on a running period (TODAY, THIS_WEEK, THIS_MONTH, "
            "THIS_BILLING_CYCLE), only as much of it as has elapsed of this one, in local "
            "wall time; on any other range TO_DATE is FULL_PERIOD."
        )
    )
    def previous(
        self, info: Info[Context, None], alignment: Alignment = ComparisonAlignment.FULL_PERIOD
    ) -> UsageReport:
        return UsageReport(scope=self.scope.previous(info.context.freshness, _aligned(alignment)))

    @strawberry.field(description="Change of calls and credits against `previous(alignment)`.")
    async def change(
        self, info: Info[Context, None], alignment: Alignment = ComparisonAlignment.FULL_PERIOD
    ) -> UsageChange:
        now = await usage_resolvers.totals(info.context, self.scope)
        before = await usage_resolvers.totals(
            info.context, self.scope.previous(info.context.freshness, _aligned(alignment))
        )
        return UsageChange(
            calls_percent=_change(now.calls, before.calls),
            credits_percent=_change(now.credits, before.credits),
        )

    @strawberry.field(
        description=(
            "Buckets of the series whose credits stand out from a robust baseline of the "
            "buckets before them (the same weekday for DAY, the same weekday and hour for "
            "HOUR), with what drove them. Method and parameters: docs/spikes.md."
        )
    )
    async def spikes(
        self, info: Info[Context, None], granularity: Granularity
    ) -> list[Annotated[UsageSpike, strawberry.lazy("graphql_schema.types.spikes")]]:
        from graphql_schema.types.spikes import UsageSpike
        from resolvers.spikes import analyse

        analysis = await analyse(info.context, self.scope, granularity)
        return [UsageSpike(analysis=analysis, row=row) for row in analysis.spikes]

    @strawberry.field(
        description=(
            "Calls and credits per call outcome (SUCCESS, NO_RESULT, RATE_LIMITED, "
            "CLIENT_ERROR, SERVER_ERROR), one row per outcome with calls: credits on calls "
            "without result or that failed are what integrations can save."
        ),
        # One row per outcome at most (graphql_schema.types.outcomes.MAX_OUTCOMES; a test
        # checks they agree): what the cost estimate may assume.
        metadata={"max_length": 5},
    )
    async def by_outcome(
        self, info: Info[Context, None]
    ) -> list[Annotated[OutcomeUsage, strawberry.lazy("graphql_schema.types.outcomes")]]:
        from graphql_schema.types.outcomes import OutcomeUsage
        from resolvers.outcomes import by_outcome

        return [OutcomeUsage.of(share) for share in await by_outcome(info.context, self.scope)]
