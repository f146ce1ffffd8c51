"""Where a webhook may point: the guard against server-side request forgery (SSRF).

A trader names a URL and the platform POSTs to it from inside its network, so an unchecked
URL would let anyone make the platform call its own database, the cloud's metadata service
(169.254.169.254) or a neighbour's admin port. The policy:

- ``https`` only, but ``http`` to a loopback host when ``allow_loopback`` (local runs and
  tests, whose receivers listen on ``http://127.0.0.1:<port>``);
- no user name or password in the URL, a host, at most 2048 characters;
- every address the host resolves to must be a public one (``ipaddress``'s ``is_global``),
  else refused: loopback only when ``allow_loopback``, private networks (RFC 1918, unique
  local IPv6, shared address space) only when ``allow_private`` (a deployment whose traders
  are on its own network); link-local (the metadata service), multicast, reserved and
  unspecified addresses never.

The check runs when a webhook is registered and again before each delivery (a name may
point elsewhere later: DNS rebinding). The delivery then lets httpx resolve the name again,
so a resolver that answers differently within that instant is not caught; a deployment
that must close that gap puts the delivery service behind an egress proxy that applies the
same rule (on Kubernetes, its NetworkPolicy already allows it nothing inside the cluster).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Awaitable[Sequence[str]]]
MAX_URL_CHARS = 2048
LOOPBACK_NAMES = frozenset({"localhost"})


class RefusedDestination(ValueError):
    """The URL may not be called; the message says why (fit for the trader)."""


async def resolve(host: str) -> list[str]:
    """The addresses ``host`` resolves to (the system's resolver, without blocking)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RefusedDestination(f"the host {host!r} does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _address(text: str) -> IPAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # no IPv6 zone
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _private(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        shared = address in ipaddress.IPv4Network("100.64.0.0/10")
        return shared or any(
            address in ipaddress.IPv4Network(n)
            for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
        )
    return address in ipaddress.IPv6Network("fc00::/7")


@dataclass(frozen=True)
class DestinationPolicy:
    """What a webhook URL may be (see the module's notes)."""

    allow_loopback: bool = False
    allow_private: bool = False
    resolver: Resolver = resolve

    def refusal(self, address: IPAddress) -> str | None:
        """Why the platform may not call ``address``, or None."""
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address"
        if address.is_link_local:
            return "a link-local address"
        if address.is_multicast or address.is_unspecified or address.is_reserved:
            return "not a unicast address"
        if _private(address):
            return None if self.allow_private else "a private address"
        if not address.is_global:
            return "not a public address"
        return None

    def check_syntax(self, url: str) -> tuple[str, str]:
        """The scheme and host of an acceptable ``url`` (before any resolution)."""
        if len(url) > MAX_URL_CHARS:
            raise RefusedDestination(f"the URL is longer than {MAX_URL_CHARS} characters")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - a port that is no number raises here
        except ValueError as exc:
            raise RefusedDestination(f"not a URL: {exc}") from None
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not host:
            raise RefusedDestination("the URL must be https://<host>/...")
        if parts.username is not None or parts.password is not None:
            raise RefusedDestination("the URL may not hold a user name or password")
        if parts.fragment:
            raise RefusedDestination("the URL may not hold a fragment")
        if parts.scheme == "http" and not (self.allow_loopback and self._loopback_host(host)):
            raise RefusedDestination("the URL must use https")
        return parts.scheme, host

    @staticmethod
    def _loopback_host(host: str) -> bool:
        if host in LOOPBACK_NAMES:
            return True
        try:
            return _address(host).is_loopback
        except ValueError:
            return False

    async def check(self, url: str) -> None:
        """RefusedDestination unless the platform may call ``url`` (its host resolved)."""
        _, host = self.check_syntax(url)
        try:
            addresses = [_address(host)]
        except ValueError:
            resolved = await self.resolver(host)
            try:
                addresses = [_address(a) for a in resolved]
            except ValueError:
                raise RefusedDestination(f"the host {host!r} does not resolve") from None
        if not addresses:
            raise RefusedDestination(f"the host {host!r} does not resolve")
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                raise RefusedDestination(f"the host {host!r} is {why} ({address})")
