"""Canonical email addresses: the one mailbox behind an alias.

Self-referral under a second address is the commonest referral fraud, and most of it is a
provider's alias feature: `jane.doe+x@gmail.com` and `janedoe@googlemail.com` are one inbox.
"""

from __future__ import annotations

_GMAIL = {"gmail.com", "googlemail.com"}
_PLUS_TAG = {
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "hotmail.co.uk",
    "outlook.co.uk",
    "icloud.com",
    "me.com",
    "mac.com",
    "fastmail.com",
    "fastmail.fm",
}
_DASH_TAG = {"yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de"}


def canonical_email(address: str) -> str:
    local, _, domain = address.strip().lower().rpartition("@")
    if domain in _GMAIL:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    elif domain in _PLUS_TAG:
        local = local.split("+", 1)[0]
    elif domain in _DASH_TAG:
        local = local.split("-", 1)[0]
    return f"{local}@{domain}"
