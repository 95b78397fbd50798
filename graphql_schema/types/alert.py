"""Alerts, their webhook deliveries, and what creating one returns."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from domain.alerts import AlertRecord, AlertState, DeliveryRecord, DeliveryStatus
from domain.alerts import AlertWindow as _AlertWindow
from graphql_schema.enums import _describe_values
from graphql_schema.scalars import BigInt
from graphql_schema.types.api_key import ApiKey
from resolvers import alerts as alert_resolvers
from resolvers.context import Context

# strawberry.enum registers the domain classes themselves (see graphql_schema.enums); the
# inputs import them from here, so they are registered before any annotation names them.
_describe_values(
    strawberry.enum(
        _AlertWindow,
        description="The period an alert sums credits over, in the organization's time zone.",
    ),
    {
        "DAY": "The calendar day.",
        "WEEK": "The ISO week, from Monday.",
        "MONTH": "The calendar month.",
        "BILLING_CYCLE": "The organization's monthly billing cycle, from its anchor.",
    },
)
AlertWindow = _AlertWindow
_describe_values(
    strawberry.enum(AlertState, description="Whether an alert has fired in its current window."),
    {
        "OK": "Below the threshold, or not yet checked, in the current window.",
        "TRIGGERED": "Fired in the current window; it fires again in the next one.",
    },
)
_describe_values(
    strawberry.enum(
        DeliveryStatus, name="WebhookDeliveryStatus", description="Where a delivery stands."
    ),
    {
        "PENDING": "Not yet delivered: the next attempt is at nextAttemptAt.",
        "SUCCEEDED": "The receiver answered 2xx.",
        "FAILED": "Every attempt failed, for at least the retry period (24 hours); given up.",
    },
)


@strawberry.type(
    description=(
        "One webhook message and its delivery. Every attempt sends the same body with the "
        "same `webhook-id` header (this id)."
    )
)
class WebhookDelivery:
    record: strawberry.Private[DeliveryRecord]

    @strawberry.field(description="The message id, sent as the `webhook-id` header.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.record.public_id)

    @strawberry.field(description="The event type: `alert.triggered` or `alert.test`.")
    def event(self) -> str:
        return self.record.event

    @strawberry.field(description="Pending, succeeded or failed.")
    def status(self) -> DeliveryStatus:
        return self.record.status

    @strawberry.field(description="Attempts made so far, including one in progress.")
    def attempts(self) -> int:
        return self.record.attempts

    @strawberry.field(description="When the message was written (the crossing's instant).")
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field(description="When the newest attempt started; null before the first.")
    def last_attempt_at(self) -> datetime | None:
        return self.record.last_attempt_at

    @strawberry.field(description="When the next attempt is due; null once delivered or failed.")
    def next_attempt_at(self) -> datetime | None:
        return self.record.next_attempt_at

    @strawberry.field(description="The HTTP status of the newest answer; null if none came.")
    def response_status(self) -> int | None:
        return self.record.response_status

    @strawberry.field(description="Why the newest attempt failed; null after a success.")
    def last_error(self) -> str | None:
        return self.record.last_error


@strawberry.type(
    description=(
        "A credit threshold over a window, for the whole organization or one API key, "
        "delivered by a signed webhook (Standard Webhooks) once per window."
    )
)
class Alert:
    record: strawberry.Private[AlertRecord]
    loader: strawberry.Private[DataLoader[alert_resolvers.DeliveriesKey, list[DeliveryRecord]]]

    @classmethod
    def of(cls, context: Context, records: list[AlertRecord]) -> list[Alert]:
        """Alerts of one list share one loader: their deliveries load in one statement."""
        loader = alert_resolvers.deliveries_loader(context)
        return [cls(record=record, loader=loader) for record in records]

    @strawberry.field(description="The alert's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.record.id))

    @strawberry.field(description="Display name.")
    def name(self) -> str:
        return self.record.name

    @strawberry.field(description="The key it watches; null: every key of the organization.")
    def api_key(self) -> ApiKey | None:
        key = self.record.api_key
        return None if key is None else ApiKey(record=key)

    @strawberry.field(description="The period credits are summed over.")
    def window(self) -> AlertWindow:
        return self.record.window

    @strawberry.field(description="The threshold in credits; null when set as a percent.")
    def threshold_credits(self) -> BigInt | None:
        credits = self.record.threshold.credits
        return None if credits is None else BigInt(credits)

    @strawberry.field(
        description="The threshold as a percent of the allowance; null when set in credits."
    )
    def threshold_percent_of_allowance(self) -> float | None:
        return self.record.threshold.percent_of_allowance

    @strawberry.field(
        description=(
            "The threshold in credits now: a percent of the current allowance, rounded up."
        )
    )
    def effective_threshold_credits(self, info: Info[Context, None]) -> BigInt:
        allowance = info.context.organization.credit_allowance
        return BigInt(self.record.threshold.in_credits(allowance))

    @strawberry.field(description="Where the webhooks go.")
    def webhook_url(self) -> str:
        return self.record.webhook_url

    @strawberry.field(description="Whether the alert is checked as events arrive.")
    def enabled(self) -> bool:
        return self.record.enabled

    @strawberry.field(description="TRIGGERED once it has fired in the current window.")
    def state(self, info: Info[Context, None]) -> AlertState:
        return alert_resolvers.state(info.context, self.record)

    @strawberry.field(description="When it last fired; null if it never has.")
    def last_triggered_at(self) -> datetime | None:
        return self.record.last_triggered_at

    @strawberry.field(description="When the alert was created.")
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field(
        description=(
            "The newest `first` deliveries of its webhooks (default 10, at most 100), newest first."
        )
    )
    async def deliveries(
        self, info: Info[Context, None], first: int | None = alert_resolvers.DEFAULT_DELIVERIES
    ) -> list[WebhookDelivery]:
        count = alert_resolvers.check_first(info.context, first)
        records = await self.loader.load((self.record.id, count))
        return [WebhookDelivery(record=record) for record in records]


@strawberry.type(description="A new alert, and its signing secret.")
class CreateAlertPayload:
    alert: Alert = strawberry.field(description="The alert.")
    signing_secret: str = strawberry.field(
        description=(
            "The secret that signs its webhooks (`whsec_…`, Standard Webhooks). Shown only "
            "here: store it now; it cannot be read again."
        )
    )
