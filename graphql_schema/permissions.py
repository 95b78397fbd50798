"""Who may read what. Every usage, key, pool and alert field lists ``ADMIN_ON_PAID_PLAN``.

The checks run in order: a member is told to ask an admin before anyone is told to upgrade,
because only an admin can act on the second message.

Every field that lists them is a nullable "panel" (shared/DESIGN.md, "GraphQL shape"): a
refused or failed panel is null with its coded error at its path, and the fields next to it
still answer, so a member's ``{ organization { name creditPool { consumed } } }`` gets the
name. ``tests/test_permissions.py`` walks the schema to keep both true.
"""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission
from strawberry.types import Info

from domain.errors import CreditLensError, Forbidden, PlanRequired
from domain.roles import Role
from resolvers.context import Context


class IsAdmin(BasePermission):
    message = (
        "Only admins of your organization can see usage, API keys and the credit pool. "
        "Ask an admin of your organization for access."
    )
    error_extensions = {"code": Forbidden.code}
    # The verdict reads only the context, never the object: a batchable field checks it
    # once for a whole list (graphql_schema/batching.py).
    source_free: ClassVar[bool] = True

    @staticmethod
    def allows(context: Context) -> bool:
        return context.viewer.role is Role.ADMIN

    def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        return self.allows(info.context)


class IsOnPaidPlan(BasePermission):
    message = (
        "Usage analytics are part of the paid plans (Starter, Pro, Enterprise). "
        "Upgrade your organization's plan to see them."
    )
    error_extensions = {"code": PlanRequired.code}
    source_free: ClassVar[bool] = True  # as IsAdmin's

    @staticmethod
    def allows(context: Context) -> bool:
        return context.organization.is_paid

    def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        return self.allows(info.context)


ADMIN_ON_PAID_PLAN: list[type[BasePermission]] = [IsAdmin, IsOnPaidPlan]


def usage_refusal(context: Context) -> CreditLensError | None:
    """Why the viewer may not read usage, as the panels would refuse it (the same classes,
    in the same order), or None: for the routes outside GraphQL (the CSV export)."""
    if not IsAdmin.allows(context):
        return Forbidden(IsAdmin.message)
    if not IsOnPaidPlan.allows(context):
        return PlanRequired(IsOnPaidPlan.message)
    return None


# Ends the description of every panel, so clients read in the schema why it may be null.
PANEL_NOTE = (
    " Null, with a coded error at this path, when refused (FORBIDDEN, PLAN_REQUIRED) or "
    "failed; the other fields still answer."
)
