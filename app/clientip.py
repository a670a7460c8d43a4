"""The visitor's IP address behind trusted proxies (rate limits, fraud evidence, CORS)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any


def client_ip(peer: str | None, forwarded_for: str, trusted_proxies: Sequence[Any]) -> str | None:
    """X-Forwarded-For is believed only when the direct peer is one of TRUSTED_PROXIES, and
    then read from the right past every trusted hop."""
    if peer is None or not _is_trusted(peer, trusted_proxies):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_proxies):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_trusted(address: str, trusted_proxies: Sequence[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted_proxies)


def _is_ip(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    # A zone id ("fe80::1%eth0") is unbounded in length and meaningless off the host.
    return getattr(ip, "scope_id", None) is None
