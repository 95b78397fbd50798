"""The SSRF guard: webhooks go over https to public addresses only.

A webhook URL is chosen by a customer and fetched by the service, from inside its network.
So the URL must be ``https``, without credentials or fragment, and **every** address its
host resolves to must be public: loopback, private, link-local (cloud metadata
169.254.169.254 among them), shared CGNAT space, multicast, reserved and unspecified
addresses are refused, in IPv4 and IPv6 (unique local fc00::/7, link-local fe80::/10,
fd00:ec2::254), and so are IPv6 addresses that embed an IPv4 one (IPv4-mapped, 6to4,
NAT64, Teredo) whose embedded address is not public.

The check runs when an alert is saved (a clear BAD_USER_INPUT) and again before every
attempt, because DNS can change in between (DNS rebinding); the attempt then connects to
the address that was checked (``sender``), so a second lookup cannot swap it.

``CREDITLENS_WEBHOOK_ALLOW_INSECURE=true`` lifts the guard, for development and tests:
``http`` and any address are allowed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

from domain.alerts import MAX_URL_LENGTH

IPAddress = IPv4Address | IPv6Address
# host, port -> the addresses it resolves to (as text). Injectable: tests resolve nothing
# outside the machine.
Resolver = Callable[[str, int], Awaitable[list[str]]]
RESOLVE_TIMEOUT = 5.0

METADATA = {
    ip_address("169.254.169.254"): "cloud metadata",  # AWS, GCP, Azure, OpenStack
    ip_address("169.254.170.2"): "cloud metadata",  # AWS ECS task metadata
    ip_address("fd00:ec2::254"): "cloud metadata",  # AWS IMDS over IPv6
    ip_address("100.100.100.200"): "cloud metadata",  # Alibaba Cloud
}
CGNAT = IPv4Network("100.64.0.0/10")
UNIQUE_LOCAL = IPv6Network("fc00::/7")
NAT64 = IPv6Network("64:ff9b::/96")


class UnsafeUrl(Exception):
    """A webhook URL the guard refuses; the message says why and is safe to show."""


@dataclass(frozen=True, slots=True)
class WebhookUrl:
    url: str
    scheme: str
    host: str  # as in the URL, lower case, IPv6 without brackets
    port: int


def parse(url: str, *, allow_insecure: bool) -> WebhookUrl:
    """Check the form of a webhook URL (no network)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"The webhook URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UnsafeUrl("The webhook URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrl("The webhook URL is not a valid URL.") from error
    schemes = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme.lower() not in schemes:
        raise UnsafeUrl("The webhook URL must start with https://.")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("The webhook URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("The webhook URL may not contain a user name or password.")
    if parts.fragment:
        raise UnsafeUrl("The webhook URL may not contain a #fragment.")
    scheme = parts.scheme.lower()
    return WebhookUrl(url, scheme, host, port or (443 if scheme == "https" else 80))


def _embedded(address: IPv6Address) -> list[tuple[IPv4Address, str]]:
    """IPv4 addresses an IPv6 address carries, with the name of the scheme."""
    found: list[tuple[IPv4Address, str]] = []
    if address.ipv4_mapped is not None:
        found.append((address.ipv4_mapped, "IPv4-mapped"))
    if address.sixtofour is not None:
        found.append((address.sixtofour, "6to4"))
    if address.teredo is not None:
        server, client = address.teredo
        found.extend([(server, "Teredo"), (client, "Teredo")])
    if address in NAT64:
        found.append((IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"))
    return found


def blocked_reason(address: IPAddress) -> str | None:
    """Why a webhook may not go to ``address`` (a kind of address), or None if it is public."""
    if address in METADATA:
        return METADATA[address]
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            inner = blocked_reason(address.ipv4_mapped)
            return f"IPv4-mapped {inner or 'IPv6'}"
        for inner_address, scheme in _embedded(address):
            inner = blocked_reason(inner_address)
            if inner is not None:
                return f"{scheme} {inner}"
        if address in UNIQUE_LOCAL:
            return "unique local (IPv6 ULA)"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, IPv4Address) and address in CGNAT:
        return "shared (CGNAT)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-public"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system resolver (A and AAAA)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _literal(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


async def public_addresses(
    target: WebhookUrl, *, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """Every address of the URL's host, all of them public; ``UnsafeUrl`` otherwise."""
    literal = _literal(target.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                found = await resolver(target.host, target.port)
        except (OSError, TimeoutError, UnicodeError) as error:
            raise UnsafeUrl(f"The webhook host {target.host!r} cannot be resolved.") from error
        addresses = list(dict.fromkeys(ip_address(text) for text in found))
        if not addresses:
            raise UnsafeUrl(f"The webhook host {target.host!r} has no address.")
    for address in addresses:
        reason = blocked_reason(address)
        if reason is not None:
            shown = "" if literal is not None else f"{target.host!r} resolves to "
            raise UnsafeUrl(
                f"The webhook URL points to {shown}{address}, a {reason} address: webhooks "
                "go to public addresses only."
            )
    return addresses
