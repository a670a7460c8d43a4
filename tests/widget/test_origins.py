"""Origin patterns: one spelling for patterns and Origin headers, so that a wildcard matches
subdomains only and nothing that merely ends like the shop's domain."""

from __future__ import annotations

import pytest

from app.errors import DomainError
from app.widget.origins import allows, normalize_origin, normalize_pattern


def pattern(raw: str, production: bool = False) -> str:
    return normalize_pattern(raw, "origins[0]", production=production)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("https://Shop.Example/", "https://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("http://shop.example:80", "http://shop.example"),
        ("https://*.shop.example", "https://*.shop.example"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_patterns_are_stored_in_one_spelling(raw, expected):
    assert pattern(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "*",
        "https://*",
        "https://*.com",
        "https://*.*.shop.example",
        "shop.example",
        "https://shop.example/checkout",
        "https://shop.example?x=1",
        "https://user@shop.example",
        "ftp://shop.example",
        "https://*.203.0.113.7",
        "https://shop.example:0",
        "https://shop.example:99999",
        "https://sh op.example",
        "null",
        "https://-shop.example",
    ],
)
def test_anything_but_an_origin_is_refused(raw):
    with pytest.raises(DomainError) as refused:
        pattern(raw)
    assert refused.value.code.value == "INVALID_ORIGIN" and refused.value.field == "origins[0]"


def test_production_takes_http_only_for_localhost():
    assert pattern("http://localhost:3000", production=True) == "http://localhost:3000"
    with pytest.raises(DomainError):
        pattern("http://shop.example", production=True)


@pytest.mark.parametrize(
    "origin, allowed",
    [
        ("https://eu.shop.example", True),
        ("https://a.b.shop.example", True),
        ("https://EU.Shop.Example", True),
        ("https://shop.example", False),  # the wildcard is for subdomains only
        ("https://evilshop.example", False),
        ("https://shop.example.evil.example", False),
        ("http://eu.shop.example", False),  # another scheme
        ("https://eu.shop.example:8443", False),  # another port
        ("http://localhost:3000", True),
        ("http://localhost:3001", False),
    ],
)
def test_an_origin_matches_exactly_or_as_a_subdomain_of_a_wildcard(origin, allowed):
    patterns = [pattern("https://*.shop.example"), pattern("http://localhost:3000")]
    canonical = normalize_origin(origin)
    assert canonical is not None and allows(patterns, canonical) is allowed


@pytest.mark.parametrize("header", ["null", "", "file://", "https://shop.example/path", "x" * 400])
def test_opaque_and_malformed_origin_headers_match_nothing(header):
    assert normalize_origin(header) is None
