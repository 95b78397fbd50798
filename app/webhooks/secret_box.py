"""Signing secrets at rest: encrypted, because they must stay usable for signing.

An access token can be stored as a hash because the service only checks it; a webhook
signing secret must be read back to sign every message, so it is encrypted instead, with
Fernet (AES-128-CBC and HMAC-SHA256, authenticated) under a key from the setting
``CREDITLENS_WEBHOOK_SECRET_KEY``. A database dump alone then yields no usable secret.

The setting holds one key or several separated by commas: the first encrypts, all decrypt,
so a key is rotated by putting the new one first (docs/alerts.md). Each key is a Fernet key
(``Fernet.generate_key()``) or any other string, which is stretched to one with SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

DEVELOPMENT_KEY = "creditlens-development-webhook-key-do-not-use-in-production"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


def _fernet(key: str) -> Fernet:
    try:
        if len(base64.urlsafe_b64decode(key.encode())) == 32:
            return Fernet(key.encode())
    except (binascii.Error, ValueError):
        pass
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


class SecretBox:
    """Encrypts secrets for storage and decrypts them for signing."""

    def __init__(self, keys: str) -> None:
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise ValueError("CREDITLENS_WEBHOOK_SECRET_KEY is empty")
        self._fernet = MultiFernet([_fernet(part) for part in parts])

    def seal(self, secret: str) -> str:
        """``secret`` encrypted (and authenticated) with the first key."""
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret again, with whichever key sealed it; ``SecretUnreadable`` if none."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as error:
            raise SecretUnreadable(
                "the signing secret cannot be decrypted with CREDITLENS_WEBHOOK_SECRET_KEY"
            ) from error
