"""Outgoing webhooks for alerts: signing, the SSRF guard, secrets at rest, the dispatcher.

signing.py      Standard Webhooks headers and ``v1,<base64>`` HMAC-SHA256 signatures
secret_box.py   signing secrets encrypted at rest (Fernet, CREDITLENS_WEBHOOK_SECRET_KEY)
url_guard.py    https only, every resolved address public (SSRF); the pinned address
sender.py       one POST with httpx: pinned, no redirects, bounded in time
dispatcher.py   the loop that claims, sends, retries; run by ``serve`` and ``webhooks run``
policy.py       what the GraphQL resolvers get: URL checks and secret sealing
"""
