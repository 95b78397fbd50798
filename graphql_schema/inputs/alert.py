"""The inputs of the alert mutations."""

from __future__ import annotations

import strawberry

from graphql_schema.scalars import BigInt
from graphql_schema.types.alert import AlertWindow
from resolvers.alerts import AlertEdit, NewAlert


@strawberry.input(
    description=(
        "A new alert: a threshold in credits or in percent of the allowance (exactly one), "
        "over a window, for the organization or one key."
    )
)
class CreateAlertInput:
    name: str = strawberry.field(description="Display name, 1 to 200 characters.")
    key_id: strawberry.ID | None = strawberry.field(
        default=None, description="Watch only this API key; default: every key."
    )
    window: AlertWindow = strawberry.field(description="The period credits are summed over.")
    threshold_credits: BigInt | None = strawberry.field(
        default=None, description="Fire when the window's credits reach this number."
    )
    threshold_percent_of_allowance: float | None = strawberry.field(
        default=None,
        description="Fire when the window's credits reach this percent of the allowance.",
    )
    webhook_url: str = strawberry.field(
        description="Where to POST the webhook: https, on a public address."
    )

    def to_new(self) -> NewAlert:
        return NewAlert(
            name=self.name,
            key_id=None if self.key_id is None else str(self.key_id),
            window=self.window,
            threshold_credits=self.threshold_credits,
            threshold_percent=self.threshold_percent_of_allowance,
            webhook_url=self.webhook_url,
        )


@strawberry.input(
    description=(
        "Changes to an alert; omitted fields stay as they are. Giving one kind of threshold "
        "replaces the other."
    )
)
class UpdateAlertInput:
    name: str | None = strawberry.field(default=None, description="New display name.")
    key_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Watch only this API key; null: every key of the organization.",
    )
    window: AlertWindow | None = strawberry.field(default=None, description="New window.")
    threshold_credits: BigInt | None = strawberry.field(
        default=None, description="New threshold in credits."
    )
    threshold_percent_of_allowance: float | None = strawberry.field(
        default=None, description="New threshold in percent of the allowance."
    )
    webhook_url: str | None = strawberry.field(default=None, description="New webhook URL.")
    enabled: bool | None = strawberry.field(
        default=None, description="false pauses the alert; true resumes it."
    )

    def to_edit(self) -> AlertEdit:
        key_given = self.key_id is not strawberry.UNSET
        return AlertEdit(
            name=self.name,
            key_id=str(self.key_id) if key_given and self.key_id is not None else None,
            organization_wide=key_given and self.key_id is None,
            window=self.window,
            threshold_credits=self.threshold_credits,
            threshold_percent=self.threshold_percent_of_allowance,
            webhook_url=self.webhook_url,
            enabled=self.enabled,
        )
