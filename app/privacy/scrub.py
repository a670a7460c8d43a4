"""Rewriting personal values inside free text and JSON (fraud evidence, webhook payloads, audit
details, notes): a customer's values replaced at erasure, IP addresses coarsened at retention.

A value is replaced where it stands alone: as a whole JSON string, or in text between spaces,
quotes, commas, brackets or parentheses, so `jane` inside `jane.doe@example.com` or a year
inside a date is left alone, and `jane` in "used by referrer jane (seen ...)" is not.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import SQLColumnExpression, Text, cast, false, or_
from sqlalchemy.sql.elements import ColumnElement

_EDGE = r"""\s"'(),;\[\]{}"""
_TOKEN = re.compile(rf"[^{_EDGE}]+")
MIN_TOKEN_LENGTH = 3  # shorter values are replaced only as whole JSON strings


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """`value` (JSON: dicts, lists, strings, numbers) with every string passed through `change`."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [map_strings(item, change) for item in value]
    if isinstance(value, dict):
        return {key: map_strings(item, change) for key, item in value.items()}
    return value


def replacer(replacements: dict[str, str]) -> Callable[[str], str]:
    """A function replacing each of `replacements`' keys where it stands alone in a string."""
    tokens = {k: v for k, v in replacements.items() if len(k) >= MIN_TOKEN_LENGTH}
    pattern = (
        re.compile(rf"(?<![^{_EDGE}])(?:{'|'.join(re.escape(k) for k in sorted(tokens, key=len, reverse=True))})(?![^{_EDGE}])")
        if tokens
        else None
    )

    def change(text: str) -> str:
        if text in replacements:
            return replacements[text]
        return pattern.sub(lambda m: tokens[m.group(0)], text) if pattern is not None else text

    return change


def mentions(column: SQLColumnExpression[Any], values: list[str]) -> ColumnElement[bool]:
    """SQL: the column's text (JSON as stored: raw, or with \\u escapes) contains one of
    `values`. A cheap filter before `replacer` decides in Python."""
    forms = {form for v in values if len(v) >= MIN_TOKEN_LENGTH for form in (v, json.dumps(v)[1:-1])}
    text = cast(column, Text)
    return or_(*(text.like(f"%{_escape_like(form)}%", escape="\\") for form in sorted(forms))) if forms else false()


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def coarse_ip(value: str) -> str | None:
    """An address as its network: IPv4 to /24, IPv6 to /48 (`203.0.113.0/24`). None if not an IP."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def coarsen_ips(text: str) -> str:
    """Every IP address standing alone in `text` replaced by its network."""
    return _TOKEN.sub(lambda m: coarse_ip(m.group(0)) or m.group(0), text)


def id_floor(moment: datetime) -> uuid.UUID:
    """The smallest UUIDv7 made at `moment` or later (app.db.new_id): `id >= id_floor(t)` is an
    index range scan over the rows created since t."""
    return uuid.UUID(int=max(0, int(moment.timestamp() * 1000)) << 80)
