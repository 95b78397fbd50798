"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is the
base64 HMAC-SHA256 of it under the key that the secret ``whsec_<base64>`` encodes, sent as
``webhook-signature: v1,<base64>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from db.queries.alerts import SECRET_PREFIX


def signing_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret encodes."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a signing secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one attempt: the id is the message's, the timestamp the attempt's."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": "creditlens-webhooks/1",
    }
