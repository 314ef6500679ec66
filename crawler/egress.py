"""The egress policy: which addresses a fetch may connect to, decided after DNS.

Responsible for one decision, :meth:`EgressPolicy.refusal`: may wirewatch open a TCP
connection to this IP address and port, for a request made on behalf of this source?
By default it refuses loopback, private (RFC 1918, ULA), carrier-grade NAT, link-local
(169.254/16, fe80::/10), multicast, unspecified and reserved addresses, including the
IPv4 addresses embedded in IPv6 (IPv4-mapped, 6to4, NAT64, Teredo), so that a public
feed cannot make wirewatch fetch the cloud metadata service or an admin panel and mail
the page to every subscriber.  ``[fetch] allow_private`` opens the networks an operator
chooses; a source whose own configured URL is at a private address may reach that same
host and port only.  It is applied to the address actually connected to (the Scrapy
handler in :mod:`crawler.egress_scrapy`, and the aiohttp poller), never to a name, so
DNS rebinding cannot get around it.  It must not resolve names or open sockets itself:
it is pure, so every client applies the same decision.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from monitor.config import FetchConfig

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Not global, but Python's ``is_global`` calls them global (3.11): checked by hand.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    allow_private: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_config(cls, fetch: FetchConfig) -> EgressPolicy:
        return cls(allow_private=tuple(fetch.allow_private))

    def refusal(self, ip: str, port: int, *, source_url: str | None = None, host: str | None = None) -> str | None:
        """None when connecting to ip:port is allowed, else the reason in words.

        ``source_url`` is the configured URL of the source the request is made for.  When
        its host is an IP literal, that address and port are allowed.  When its host is a
        name, the caller may pass ``host`` (the host name of the request's own URL): the
        same name and port are then allowed, whatever private address the name resolved
        to.  Without ``host``, a named source gets no exception (fail closed).
        """
        addr, kind = _classify(ip)
        if addr is None:
            return f"{ip!r} is not an IP address"
        if kind is None:
            return None
        effective = _embedded(addr) or addr
        for net in self.allow_private:
            if effective in net or addr in net:
                return None
        if source_url is not None and _same_origin(addr, port, source_url, host):
            return None
        return (
            f"{ip} is {kind}: refused by the egress policy "
            "(allow it with [fetch] allow_private, or configure it as the source's own URL)"
        )


# Every request's peer address is checked (the poller's connector, Scrapy's handler), and a
# process talks to few addresses: parsing and classifying each once is most of the check's cost.
@functools.lru_cache(maxsize=4096)
def _classify(ip: str) -> tuple[Address | None, str | None]:
    """``ip`` parsed (``None`` when it is no IP address) and its :func:`private_kind`."""
    try:
        addr: Address = ipaddress.ip_address(ip.strip("[]").split("%", 1)[0])
    except ValueError:
        return None, None
    return addr, private_kind(addr)


def private_kind(addr: Address) -> str | None:
    """What kind of non-public address ``addr`` is, in words, or ``None`` when public."""
    embedded = _embedded(addr)
    if embedded is not None:
        inner = private_kind(embedded)
        return None if inner is None else f"{inner} (embedded in IPv6 {addr})"
    if isinstance(addr, ipaddress.IPv6Address) and (addr in _NAT64 or addr in _NAT64_LOCAL):
        return "a NAT64 address"
    if addr.is_unspecified:
        return "an unspecified address"
    if addr.is_loopback:
        return "a loopback address"
    if addr.is_link_local:
        return "a link-local address"
    if addr.is_multicast:
        return "a multicast address"
    if addr.is_private:
        return "a private address"
    if addr.is_reserved or not addr.is_global:
        return "a reserved or non-public address"
    return None


def _embedded(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    # IPv4-compatible (deprecated, ::a.b.c.d): still routed to an IPv4 host by some stacks.
    if int(addr) >> 32 == 0 and int(addr) > 1:
        return ipaddress.IPv4Address(int(addr))
    return None


def _same_origin(addr: Address, port: int, source_url: str, host: str | None) -> bool:
    origin = _origin(source_url)
    if origin is None:
        return False
    source_host, source_port, source_addr = origin
    if source_port != port:
        return False
    if source_addr is None:
        return host is not None and host.lower().rstrip(".") == source_host.rstrip(".")
    return source_addr == (_embedded(addr) or addr)


# A source's URL is checked on each of its requests; a process has as many as it has sources.
@functools.lru_cache(maxsize=65536)
def _origin(source_url: str) -> tuple[str, int, Address | None] | None:
    """Host, port and (when the host is an IP literal) address of a source's URL; ``None`` when it has no host."""
    try:
        parts = urlsplit(source_url)
        source_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    source_host = (parts.hostname or "").lower()
    if not source_host:
        return None
    try:
        source_addr: Address = ipaddress.ip_address(source_host)
    except ValueError:
        return source_host, source_port, None
    return source_host, source_port, _embedded(source_addr) or source_addr
