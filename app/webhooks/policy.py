"""The webhook policy the GraphQL resolvers get: the SSRF guard and the secret box, set up
from the settings (``resolvers.webhook_policy`` says what they expect)."""

from __future__ import annotations

from app.settings import Settings
from app.webhooks.secret_box import SecretBox
from app.webhooks.url_guard import Resolver, UnsafeUrl, parse, public_addresses, system_resolver
from domain.errors import InvalidInput


class GuardedWebhooks:
    """Checks URLs when an alert is saved (form, then every resolved address) and seals
    signing secrets with the service's key."""

    def __init__(self, settings: Settings, *, resolver: Resolver = system_resolver) -> None:
        self.allow_insecure = settings.webhook_allow_insecure
        self.box = SecretBox(settings.webhook_secret_key.get_secret_value())
        self.resolver = resolver

    async def check_url(self, url: str, *, field: str) -> str:
        """The URL, or BAD_USER_INPUT naming ``field`` and why the guard refuses it."""
        try:
            target = parse(url, allow_insecure=self.allow_insecure)
            if not self.allow_insecure:
                await public_addresses(target, resolver=self.resolver)
        except UnsafeUrl as refusal:
            raise InvalidInput(str(refusal), field=field) from refusal
        return url

    def seal(self, secret: str) -> str:
        """The signing secret encrypted for storage."""
        return self.box.seal(secret)
