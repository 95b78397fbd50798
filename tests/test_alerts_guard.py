"""The SSRF guard refuses every non-public target, the signature follows Standard Webhooks,
and signing secrets are encrypted at rest. Nothing here sends traffic off the machine: the
guard is tried on literal addresses, on names that resolve locally (localhost, numeric
forms) and through injected resolvers."""

from __future__ import annotations

from ipaddress import ip_address

import httpx
import pytest

from app.settings import Settings
from app.webhooks.policy import GuardedWebhooks
from app.webhooks.secret_box import SecretBox, SecretUnreadable
from app.webhooks.sender import _pinned
from app.webhooks.signing import headers, sign
from app.webhooks.url_guard import UnsafeUrl, blocked_reason, parse, public_addresses
from domain.errors import InvalidInput
from tests.alerts_receiver import verify

BLOCKED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.10": "private",
    "169.254.169.254": "cloud metadata",
    "169.254.10.1": "link-local",
    "100.64.0.1": "shared (CGNAT)",
    "100.127.255.254": "shared (CGNAT)",
    "224.0.0.251": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "private",
    "198.51.100.7": "private",  # TEST-NET-2, documentation
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "unique local (IPv6 ULA)",
    "fd12:3456::1": "unique local (IPv6 ULA)",
    "fd00:ec2::254": "cloud metadata",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped cloud metadata",
    "::ffff:8.8.8.8": "IPv4-mapped IPv6",
    "2002:7f00:1::": "6to4 loopback",
    "2002:a00:1::": "6to4 private",
    "64:ff9b::a00:1": "NAT64 private",
    "64:ff9b::7f00:1": "NAT64 loopback",
    "2001:db8::1": "private",  # documentation
}
PUBLIC = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::200e"]


@pytest.mark.parametrize(("address", "reason"), BLOCKED.items(), ids=list(BLOCKED))
def test_every_non_public_address_is_blocked_with_its_reason(address, reason):
    assert blocked_reason(ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert blocked_reason(ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/x", "https://"),
        ("ftp://hooks.example.com/x", "https://"),
        ("hooks.example.com/x", "https://"),
        ("https:///path-only", "no host"),
        ("https://user:secret@hooks.example.com/x", "user name or password"),
        ("https://hooks.example.com/x#part", "fragment"),
        ("https://hooks.example.com/a b", "spaces or control"),
        ("https://hooks.example.com/\x00", "spaces or control"),
        ("https://hooks.example.com:99999/x", "not a valid URL"),
        ("https://[::1/x", "not a valid URL"),
        ("https://hooks.example.com/" + "a" * 2000, "longer than"),
    ],
    ids=[
        "http",
        "ftp",
        "no-scheme",
        "no-host",
        "credentials",
        "fragment",
        "space",
        "nul",
        "bad-port",
        "bad-ipv6",
        "too-long",
    ],
)
def test_malformed_or_insecure_urls_are_refused(url, message):
    with pytest.raises(UnsafeUrl, match=message):
        parse(url, allow_insecure=False)


def test_insecure_mode_allows_http_but_still_checks_the_form():
    assert parse("http://127.0.0.1:8080/x", allow_insecure=True).port == 8080
    with pytest.raises(UnsafeUrl):
        parse("ftp://127.0.0.1/x", allow_insecure=True)


async def _unused_resolver(host: str, port: int) -> list[str]:
    raise AssertionError("a literal address needs no lookup")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.0.0.8:8443/hook",
    ],
)
async def test_literal_addresses_are_checked_without_a_lookup(url):
    with pytest.raises(UnsafeUrl, match="public addresses only"):
        await public_addresses(parse(url, allow_insecure=False), resolver=_unused_resolver)


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost/hook",
        "https://LOCALHOST/hook",
        "https://2130706433/hook",
        "https://0x7f.1/hook",
        "https://127.1/hook",
    ],
    ids=["localhost", "upper-case", "decimal", "hex", "short"],
)
async def test_names_that_resolve_to_loopback_are_refused(url):
    """The system resolver, on names it answers from the machine itself."""
    with pytest.raises(UnsafeUrl, match="loopback"):
        await public_addresses(parse(url, allow_insecure=False))


def resolver_of(*addresses: str):
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


async def test_every_resolved_address_must_be_public():
    target = parse("https://hooks.customer.test/x", allow_insecure=False)
    assert await public_addresses(target, resolver=resolver_of("8.8.8.8", "1.1.1.1")) == [
        ip_address("8.8.8.8"),
        ip_address("1.1.1.1"),
    ]
    # One private address among public ones is enough to refuse (a split-horizon name).
    with pytest.raises(UnsafeUrl, match=r"10\.0\.0\.5, a private address"):
        await public_addresses(target, resolver=resolver_of("8.8.8.8", "10.0.0.5"))
    with pytest.raises(UnsafeUrl, match="fe80::1, a link-local"):
        await public_addresses(target, resolver=resolver_of("2606:4700::1", "fe80::1"))


async def test_a_name_that_does_not_resolve_is_refused():
    async def failing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    target = parse("https://hooks.customer.test/x", allow_insecure=False)
    with pytest.raises(UnsafeUrl, match="cannot be resolved"):
        await public_addresses(target, resolver=failing)
    with pytest.raises(UnsafeUrl, match="no address"):
        await public_addresses(target, resolver=resolver_of())


async def test_the_policy_turns_refusals_into_bad_user_input_naming_the_field():
    policy = GuardedWebhooks(Settings(), resolver=resolver_of("192.168.0.2"))
    with pytest.raises(InvalidInput) as refused:
        await policy.check_url("https://hooks.customer.test/x", field="input.webhookUrl")
    assert refused.value.field == "input.webhookUrl"
    assert "private" in refused.value.message
    public = GuardedWebhooks(Settings(), resolver=resolver_of("8.8.4.4"))
    url = "https://hooks.customer.test/x?team=1"
    assert await public.check_url(url, field="input.webhookUrl") == url
    insecure = GuardedWebhooks(Settings(webhook_allow_insecure=True), resolver=_unused_resolver)
    assert await insecure.check_url("http://localhost:9/x", field="f") == "http://localhost:9/x"


def test_a_checked_request_connects_to_the_checked_address_and_names_the_host():
    request = httpx.Request("POST", "https://hooks.customer.test:8443/in?x=1", content=b"{}")
    pinned = _pinned(request, ip_address("2606:4700::1"))
    assert str(pinned.url) == "https://[2606:4700::1]:8443/in?x=1"
    assert pinned.headers["host"] == "hooks.customer.test:8443"
    assert pinned.extensions["sni_hostname"] == "hooks.customer.test"


def test_the_signature_matches_the_standard_webhooks_test_vector():
    # The example of the Standard Webhooks reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_headers_verify_with_an_independent_implementation():
    from db.queries.alerts import new_signing_secret

    secret = new_signing_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"alert.test"}'
    sent = headers(secret, "msg_abc", 1_800_000_000, body)
    assert verify(secret, sent, body)
    assert not verify(secret, sent, body + b" ")
    assert not verify(new_signing_secret(), sent, body)


def test_secrets_are_encrypted_at_rest_and_keys_rotate():
    old = SecretBox("old-key")
    sealed = old.seal("whsec_c2VjcmV0")
    assert "c2VjcmV0" not in sealed
    assert old.open(sealed) == "whsec_c2VjcmV0"
    # Rotation: the new key first encrypts; the old one still decrypts older secrets.
    rotated = SecretBox("new-key, old-key")
    assert rotated.open(sealed) == "whsec_c2VjcmV0"
    assert SecretBox("new-key").open(rotated.seal("whsec_x")) == "whsec_x"
    with pytest.raises(SecretUnreadable):
        SecretBox("another-key").open(sealed)


def test_a_fernet_key_is_used_as_it_is():
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    sealed = SecretBox(key).seal("whsec_x")
    assert Fernet(key.encode()).decrypt(sealed.encode()) == b"whsec_x"
