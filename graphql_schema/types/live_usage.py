"""Live usage over WebSocket: the ``Subscription`` root and its ``UsageTick``."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.types import Info

from domain.records import UsageTickRecord
from graphql_schema.permissions import ADMIN_ON_PAID_PLAN
from graphql_schema.scalars import BigInt
from resolvers.context import Context
from resolvers.live_usage import usage_ticks


@strawberry.type(description="The organization's usage now, pushed after each ingest.")
class UsageTick:
    at: datetime = strawberry.field(description="When these figures were read.")
    cycle_consumed: BigInt = strawberry.field(
        description="Credits consumed from the organization's pool this billing cycle."
    )
    today_calls: BigInt = strawberry.field(
        description="Calls today, in the organization's time zone (of the key, if given)."
    )
    today_credits: BigInt = strawberry.field(
        description="Credits consumed today, in the organization's time zone (of the key, "
        "if given)."
    )
    last_event_at: datetime | None = strawberry.field(
        description="The newest event (of the key, if given); null if none yet."
    )

    @classmethod
    def of(cls, record: UsageTickRecord) -> UsageTick:
        return cls(
            at=record.at,
            cycle_consumed=BigInt(record.cycle_consumed),
            today_calls=BigInt(record.today_calls),
            today_credits=BigInt(record.today_credits),
            last_event_at=record.last_event_at,
        )


@strawberry.type(description="Live updates, over WebSocket (graphql-transport-ws) on /graphql.")
class Subscription:
    @strawberry.subscription(
        description="A tick now, then one within a second of each ingest that touches the "
        "organization (at most one a second). Admins on a paid plan.",
        permission_classes=ADMIN_ON_PAID_PLAN,
    )
    async def usage_updates(
        self, info: Info[Context, None], key_id: strawberry.ID | None = None
    ) -> AsyncGenerator[UsageTick, None]:
        async for record in usage_ticks(info.context, key_id):
            yield UsageTick.of(record)
