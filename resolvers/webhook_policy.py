"""What the alert resolvers need from the service to accept a webhook: the URL check and
the sealing of signing secrets. The app provides both (``app.webhooks.policy``) from its
settings; the resolvers see only this protocol."""

from __future__ import annotations

from typing import Protocol

from domain.errors import InvalidInput


class WebhookPolicy(Protocol):
    async def check_url(self, url: str, *, field: str) -> str:
        """The URL to store, or ``InvalidInput`` naming ``field`` and what is wrong."""
        ...

    def seal(self, secret: str) -> str:
        """The signing secret encrypted for storage."""
        ...


class NoWebhooks:
    """The policy of a context built without one: every webhook URL is refused."""

    async def check_url(self, url: str, *, field: str) -> str:
        raise InvalidInput("This server does not deliver webhooks.", field=field)

    def seal(self, secret: str) -> str:
        raise InvalidInput("This server does not deliver webhooks.")
