"""Spikes of a usage report and what drove them (docs/spikes.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from domain.dimensions import UsageDimension as _UsageDimension
from domain.spikes import DRIVERS_PER_DIMENSION
from graphql_schema.scalars import BigInt
from resolvers.context import Context
from resolvers.spikes import MAX_DRIVER_BUCKETS, DriverRow, SpikeAnalysis, SpikeRow

if TYPE_CHECKING:
    from graphql_schema.types.api_key import ApiKey
    from graphql_schema.types.viewer import User

# Registered here rather than in graphql_schema/enums.py, next to the one type that uses it.
strawberry.enum(
    _UsageDimension,
    name="UsageDimension",
    description="What usage is grouped by: API keys, endpoints, sources or users.",
)
UsageDimension = _UsageDimension

# What the cost estimate may assume of a list that is bounded by construction
# (graphql_schema/limits/cost.py reads ``max_length`` from a field's metadata).
MAX_DRIVERS = DRIVERS_PER_DIMENSION * len(_UsageDimension)


@strawberry.type(
    description=(
        "One value of a dimension (an API key, endpoint, source or user) whose credits in "
        "a spike's bucket grew against its own baseline."
    )
)
class SpikeDriver:
    row: strawberry.Private[DriverRow]

    @strawberry.field(description="API_KEY, ENDPOINT, SOURCE or USER.")
    def dimension(self) -> UsageDimension:
        return self.row.dimension

    @strawberry.field(
        description=(
            "The endpoint or source; the key's or user's id for API_KEY and USER; empty for "
            "calls made without a key or user."
        )
    )
    def value(self) -> str:
        return self.row.label

    @strawberry.field(description="The key, for API_KEY drivers; null for keyless calls.")
    def api_key(self) -> Annotated[ApiKey, strawberry.lazy("graphql_schema.types.api_key")] | None:
        from graphql_schema.types.api_key import ApiKey

        return None if self.row.api_key is None else ApiKey(record=self.row.api_key)

    @strawberry.field(description="The user, for USER drivers; null for calls without a user.")
    def user(self) -> Annotated[User, strawberry.lazy("graphql_schema.types.viewer")] | None:
        from graphql_schema.types.viewer import User

        return None if self.row.user is None else User.of(self.row.user)

    @strawberry.field(description="This value's credits in the spike's bucket.")
    def credits_consumed(self) -> BigInt:
        return BigInt(self.row.driver.credits)

    @strawberry.field(
        description="This value's baseline: the median of its credits in the spike's baseline."
    )
    def expected_credits(self) -> BigInt:
        return BigInt(self.row.driver.expected)

    @strawberry.field(description="creditsConsumed - expectedCredits (always positive).")
    def excess_credits(self) -> BigInt:
        return BigInt(self.row.driver.excess)

    @strawberry.field(
        description=(
            "excessCredits over the spike's excessCredits. Drivers of one dimension may sum "
            "above 1 when other values of it fell at the same time."
        )
    )
    def share_of_excess(self) -> float:
        return round(self.row.driver.share_of_excess, 4)


@strawberry.type(
    description=(
        "A bucket of the series whose credits stand out from a robust baseline of the "
        "buckets before it (docs/spikes.md)."
    )
)
class UsageSpike:
    analysis: strawberry.Private[SpikeAnalysis]
    row: strawberry.Private[SpikeRow]

    @strawberry.field(description="First instant of the bucket (UTC).")
    def start(self) -> datetime:
        return self.row.start

    @strawberry.field(description="First instant after the bucket (UTC).")
    def end(self) -> datetime:
        return self.row.end

    @strawberry.field(description="Credits consumed in the bucket.")
    def credits_consumed(self) -> BigInt:
        return BigInt(self.row.spike.credits)

    @strawberry.field(
        description=(
            "The baseline: the median of the credits of the same-phase buckets before it "
            "(same weekday for days, same weekday and hour for hours), scaled to its length."
        )
    )
    def expected_credits(self) -> BigInt:
        return BigInt(self.row.spike.expected)

    @strawberry.field(description="creditsConsumed - expectedCredits.")
    def excess_credits(self) -> BigInt:
        return BigInt(self.row.spike.excess)

    @strawberry.field(
        description=(
            f"Per dimension (API_KEY, ENDPOINT, SOURCE, USER), the up to "
            f"{DRIVERS_PER_DIMENSION} values whose own credits grew most against their own "
            "baseline, by excess credits; dimensions in that order. Read for the spikes "
            f"with the largest excess, as long as their buckets and baselines number at most "
            f"{MAX_DRIVER_BUCKETS} (5 daily or 9 hourly spikes); empty for the others."
        ),
        metadata={"max_length": MAX_DRIVERS},
    )
    async def drivers(self, info: Info[Context, None]) -> list[SpikeDriver]:
        rows = await self.analysis.drivers(info.context, self.row)
        return [SpikeDriver(row=row) for row in rows]
