"""The caller's IP address behind Azure's front end, and IP allow/deny lists.

In Azure Functions the worker never sees the TCP peer: the App Service front end appends the
address it accepted the connection from to ``X-Forwarded-For`` (``ip:port``). Each trusted
proxy in front of the app appends one entry, so with ``hops`` trusted proxies the client is the
``hops``-th entry from the right; entries further left were written by the client and are not
trusted (OWASP: "X-Forwarded-For spoofing"). Parsing uses the stdlib :mod:`ipaddress`.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Mapping

from shared_code.platform.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"


def parse_forwarded_entry(entry: str) -> IPAddress | None:
    """One ``X-Forwarded-For`` entry as an address: ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``
    or ``[2001:db8::1]:443``. IPv4-mapped IPv6 becomes IPv4. ``None`` when it is not an address."""
    text = entry.strip()
    if text.startswith("["):
        text, bracket, _port = text[1:].partition("]")
        if not bracket:
            return None
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(headers: Mapping[str, str], trusted_hops: int) -> IPAddress | None:
    """The client address per ``X-Forwarded-For`` and ``trusted_hops`` trusted proxies.

    ``None`` (unknown) when ``trusted_hops`` is 0, the header is absent, it has fewer entries
    than ``trusted_hops`` (the request did not come through the proxies), or the chosen entry is
    not an address. ``headers`` is looked up case-insensitively as ``func.HttpRequest.headers`` is.
    """
    if trusted_hops <= 0:
        return None
    header = headers.get("x-forwarded-for") or ""
    entries = [entry for entry in header.split(",") if entry.strip()]
    if len(entries) < trusted_hops:
        return None
    return parse_forwarded_entry(entries[-trusted_hops])


def is_allowed(address: IPAddress | None, allow: Iterable[IPNetwork], deny: Iterable[IPNetwork]) -> bool:
    """Whether ``address`` may pass: not in any ``deny`` range, and in an ``allow`` range when
    ``allow`` is not empty. Deny wins; an unknown address fails a non-empty allow list."""
    allow = tuple(allow)
    if address is not None and any(address in network for network in deny):
        return False
    if not allow:
        return True
    return address is not None and any(address in network for network in allow)


def address_label(address: IPAddress | None) -> str:
    """``address`` as text for logs (``"unknown"`` for ``None``); limits count :func:`rate_limit_key`."""
    return UNKNOWN if address is None else str(address)


def caller_label(headers: Mapping[str, str]) -> str:
    """The :func:`address_label` of the request's client per ``TRUSTED_PROXY_HOPS``: what limits
    count and the audit log records (as a salted digest there)."""
    from shared_code.platform.config import get_settings

    return address_label(client_address(headers, get_settings().trusted_proxy_hops))


def rate_limit_key(label: str, ipv6_prefix: int) -> str:
    """What a per-client limit counts a client label (from :func:`address_label`) under: an IPv4
    address itself, an IPv6 address's ``/ipv6_prefix`` network (``2001:db8:1:2::/64``).

    One IPv6 subscriber is normally given a whole /64 or more (RFC 6177, RFC 8981 temporary
    addresses change within it), so counting single IPv6 addresses would let one client take
    2^64 slots; rate limiters (nginx ``limit_req`` keys, Cloudflare, AWS WAF) aggregate the same
    way. ``"unknown"`` stays one shared key.
    """
    try:
        address = ipaddress.ip_address(label)
    except ValueError:
        return label
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return label
