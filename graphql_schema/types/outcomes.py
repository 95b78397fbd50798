"""Usage per call outcome: what credits bought, and what they were spent on for nothing."""

from __future__ import annotations

import strawberry

from domain.outcomes import CallOutcome as _CallOutcome
from domain.records import Share
from graphql_schema.enums import CallOutcome
from graphql_schema.scalars import BigInt

PERCENT_DIGITS = 4
# One row per outcome at most: what the cost estimate may assume of the list.
MAX_OUTCOMES = len(_CallOutcome)


@strawberry.type(
    description=(
        "Calls and credits of one call outcome. Credits on anything but SUCCESS (calls "
        "without result, rate-limited or failed calls) are what an admin can optimise away."
    )
)
class OutcomeUsage:
    outcome: CallOutcome = strawberry.field(description="SUCCESS, NO_RESULT, … (from status).")
    calls: BigInt = strawberry.field(description="Number of calls.")
    credits_consumed: BigInt = strawberry.field(description="Credits consumed by these calls.")
    percent_of_total: float = strawberry.field(
        description=(
            "This outcome's share of the report's credits, in percent; rows sum to 100 "
            "(± rounding). When no call cost credits, the share of calls."
        )
    )

    @classmethod
    def of(cls, share: Share) -> OutcomeUsage:
        return cls(
            outcome=_CallOutcome(str(share.value)),
            calls=BigInt(share.calls),
            credits_consumed=BigInt(share.credits),
            percent_of_total=round(share.percent, PERCENT_DIGITS),
        )
