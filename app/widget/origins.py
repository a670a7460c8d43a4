"""Browser origins a merchant lets call the API with its publishable key.

A pattern is `scheme://host[:port]` (`https://shop.example`), or `scheme://*.domain[:port]`
for every subdomain of a domain (`https://*.shop.example` matches `https://eu.shop.example`, not
`https://shop.example` itself). Patterns and Origin headers are brought to one spelling
(lower case, punycode, no default port), so matching is a string comparison.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from app import validation
from app.errors import DomainError, ErrorCode

MAX_ORIGINS = 50
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def _host(raw: str) -> str | None:
    """The host in canonical form (punycode, lower case; IPv6 in brackets), or None."""
    if raw.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(raw[1:-1])}]" if raw.endswith("]") else None
        except ValueError:
            return None
    try:
        host = raw.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = host.split(".")
    return host if all(_LABEL.match(label) for label in labels) else None


def _parse(raw: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port other than the default) of `scheme://host[:port]`, or None."""
    parts = urlsplit(raw)
    if (
        parts.scheme not in _DEFAULT_PORTS
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or not parts.hostname
    ):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    if port == 0:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, host, None if port == _DEFAULT_PORTS[parts.scheme] else port


def _origin(scheme: str, host: str, port: int | None) -> str:
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def normalize_origin(header: str | None) -> str | None:
    """An Origin header in canonical form; None for `null` (sandboxed frames, files) and junk."""
    if not header or len(header) > 300:
        return None
    parsed = _parse(header.strip())
    if parsed is None:
        return None
    scheme, raw_host, port = parsed
    host = _host(raw_host)
    return _origin(scheme, host, port) if host else None


def normalize_pattern(raw: str, field: str, *, production: bool) -> str:
    value = validation.required_text(raw, field, 300)
    parsed = _parse(value)
    if parsed is None:
        raise DomainError(
            field, ErrorCode.INVALID_ORIGIN, f"{value!r} is not an origin: scheme://host[:port], e.g. https://shop.example"
        )
    scheme, host, port = parsed
    wildcard = host.startswith("*.")
    canonical = _host(host[2:] if wildcard else host)
    if canonical is None:
        raise DomainError(field, ErrorCode.INVALID_ORIGIN, f"{value!r} does not name a valid host")
    if wildcard and (canonical.count(".") < 1 or canonical.startswith("[") or _is_ip(canonical)):
        raise DomainError(
            field, ErrorCode.INVALID_ORIGIN, "a wildcard stands for subdomains of a domain, e.g. https://*.shop.example"
        )
    if production and scheme == "http" and canonical not in _LOCAL_HOSTS:
        raise DomainError(field, ErrorCode.INVALID_ORIGIN, "shops call the API over https (http only for localhost)")
    return _origin(scheme, ("*." if wildcard else "") + canonical, port)


def normalize_patterns(raws: list[str], field: str, *, production: bool) -> list[str]:
    if len(raws) > MAX_ORIGINS:
        raise DomainError(field, ErrorCode.TOO_MANY, f"at most {MAX_ORIGINS} origins")
    patterns: list[str] = []
    for index, raw in enumerate(raws):
        pattern = normalize_pattern(raw, f"{field}[{index}]", production=production)
        if pattern not in patterns:
            patterns.append(pattern)
    return patterns


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_and_port(authority: str) -> tuple[str, str]:
    if authority.startswith("["):
        host, _, port = authority.partition("]")
        return host + "]", port.removeprefix(":")
    host, _, port = authority.partition(":")
    return host, port


def allows(patterns: list[str], origin: str) -> bool:
    """Whether a canonical origin (from `normalize_origin`) matches one of the patterns."""
    if origin in patterns:
        return True
    scheme, _, authority = origin.partition("://")
    host, port = _host_and_port(authority)
    for pattern in patterns:
        pattern_scheme, _, pattern_authority = pattern.partition("://")
        if pattern_scheme == scheme and pattern_authority.startswith("*."):
            domain, pattern_port = _host_and_port(pattern_authority[2:])
            if pattern_port == port and host.endswith("." + domain):
                return True
    return False
