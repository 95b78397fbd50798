"""The root mutation type: the alert mutations. Mutations run only over POST (the HTTP layer
answers 405 to a mutation sent with GET)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_schema.inputs.alert import CreateAlertInput, UpdateAlertInput
from graphql_schema.permissions import ADMIN_ON_PAID_PLAN
from graphql_schema.types.alert import Alert, CreateAlertPayload, WebhookDelivery
from resolvers import alerts as alert_resolvers
from resolvers.context import Context


@strawberry.type(description="Changes to the viewer's organization. Admins on a paid plan only.")
class Mutation:
    @strawberry.mutation(
        description=(
            "Create an alert. The payload carries the webhook signing secret, shown only this once."
        ),
        permission_classes=ADMIN_ON_PAID_PLAN,
    )
    async def create_alert(
        self, info: Info[Context, None], input: CreateAlertInput
    ) -> CreateAlertPayload:
        record, secret = await alert_resolvers.create_alert(info.context, input.to_new())
        [alert] = Alert.of(info.context, [record])
        return CreateAlertPayload(alert=alert, signing_secret=secret)

    @strawberry.mutation(
        description="Change an alert; NOT_FOUND unless it is one of the organization's.",
        permission_classes=ADMIN_ON_PAID_PLAN,
    )
    async def update_alert(
        self, info: Info[Context, None], id: strawberry.ID, input: UpdateAlertInput
    ) -> Alert:
        record = await alert_resolvers.update_alert(info.context, str(id), input.to_edit())
        [alert] = Alert.of(info.context, [record])
        return alert

    @strawberry.mutation(
        description="Delete an alert and its delivery records; true once deleted.",
        permission_classes=ADMIN_ON_PAID_PLAN,
    )
    async def delete_alert(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        return await alert_resolvers.delete_alert(info.context, str(id))

    @strawberry.mutation(
        description=(
            "Queue an `alert.test` webhook for the alert, with its current window and "
            "consumption; it is delivered (and retried) like a real one."
        ),
        permission_classes=ADMIN_ON_PAID_PLAN,
    )
    async def send_test_webhook(
        self, info: Info[Context, None], alert_id: strawberry.ID
    ) -> WebhookDelivery:
        record = await alert_resolvers.send_test_webhook(info.context, str(alert_id))
        return WebhookDelivery(record=record)
