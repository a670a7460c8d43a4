"""Input checks shared by every service.

PostgreSQL refuses NUL bytes in text and every column has a length: both must come back to
the caller as a typed user error on the field, never as a database exception.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, overload
from urllib.parse import urlsplit

from app.errors import DomainError, ErrorCode

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EMAIL = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
MAX_JSON_BYTES = 16 * 1024


def text(value: str | None, field: str, max_length: int, *, required: bool = False, strip: bool = True) -> str | None:
    """A clean string or None: no control characters, at most `max_length` characters."""
    if value is None:
        if required:
            raise DomainError(field, ErrorCode.REQUIRED, f"{field} is required")
        return None
    if _CONTROL_CHARS.search(value):
        raise DomainError(field, ErrorCode.INVALID_INPUT, f"{field} contains control characters")
    if strip:
        value = value.strip()
    if not value.strip():
        if required:
            raise DomainError(field, ErrorCode.REQUIRED, f"{field} is required")
        return None
    if len(value) > max_length:
        raise DomainError(field, ErrorCode.TOO_LONG, f"{field} is longer than {max_length} characters")
    return value


def required_text(value: str | None, field: str, max_length: int, *, strip: bool = True) -> str:
    result = text(value, field, max_length, required=True, strip=strip)
    assert result is not None
    return result


def email(value: str | None, field: str) -> str | None:
    value = text(value, field, 320)
    if value is not None and not _EMAIL.match(value):
        raise DomainError(field, ErrorCode.INVALID_EMAIL, f"{field} is not a valid email address")
    return value


def parse_id(value: str | uuid.UUID, field: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        if len(value) > 64:
            raise ValueError
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise DomainError(field, ErrorCode.INVALID_ID, f"{field} is not a valid id") from None


def http_url(value: str | None, field: str, max_length: int = 2000) -> str | None:
    value = text(value, field, max_length)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DomainError(field, ErrorCode.INVALID_URL, f"{field} must be an absolute http(s) URL")
    return value


@overload
def int_range(value: int, field: str, low: int, high: int) -> int: ...
@overload
def int_range(value: None, field: str, low: int, high: int) -> None: ...
@overload
def int_range(value: int | None, field: str, low: int, high: int) -> int | None: ...
def int_range(value: int | None, field: str, low: int, high: int) -> int | None:
    """`value` if it is within [low, high] (None stays None), else INVALID_INPUT on `field`."""
    if value is None:
        return None
    if not low <= value <= high:
        raise DomainError(field, ErrorCode.INVALID_INPUT, f"{field} must be between {low} and {high}")
    return value


@overload
def aware(value: datetime, field: str) -> datetime: ...
@overload
def aware(value: datetime | None, field: str) -> datetime | None: ...
def aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise DomainError(field, ErrorCode.INVALID_INPUT, f"{field} must include a timezone offset")
    return value


def json_object(value: Any, field: str) -> dict | None:
    """Free-form metadata: a JSON object of bounded size without NUL bytes anywhere."""
    import json

    if value is None:
        return None
    if not isinstance(value, dict):
        raise DomainError(field, ErrorCode.INVALID_INPUT, f"{field} must be a JSON object")
    encoded = json.dumps(value, ensure_ascii=False)
    if len(encoded.encode()) > MAX_JSON_BYTES:
        raise DomainError(field, ErrorCode.TOO_LONG, f"{field} is larger than {MAX_JSON_BYTES} bytes")
    if "\\u0000" in encoded or "\x00" in encoded:
        raise DomainError(field, ErrorCode.INVALID_INPUT, f"{field} contains NUL characters")
    return value
