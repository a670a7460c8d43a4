"""Money is an integer amount in minor units plus an ISO 4217 currency code; never a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, overload

from babel.numbers import format_currency, format_decimal, format_percent, get_currency_precision
from sqlalchemy import BigInteger, cast, func
from sqlalchemy.sql.elements import ColumnElement

from app.calendars import numbering_system
from app.errors import DomainError, ErrorCode
from app.text import localized_digits

# Active ISO 4217 codes (2026). Minor-unit exponents matter for display only, not for storage.
ISO_4217 = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CRC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "UYU",
        "UZS",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XCD",
        "XCG",
        "XOF",
        "XPF",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
    ]
)

MAX_AMOUNT = 10**15  # a quadrillion minor units: far above any real order, far below BIGINT


@overload
def currency(value: str, field: str) -> str: ...
@overload
def currency(value: str | None, field: str) -> str | None: ...
def currency(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if code not in ISO_4217:
        raise DomainError(field, ErrorCode.INVALID_CURRENCY, f"{field} must be an ISO 4217 currency code")
    return code


def amount_with_currency(
    amount: int | None, code: str | None, amount_field: str, currency_field: str
) -> tuple[int | None, str | None]:
    """Both or neither; the amount a non-negative integer of minor units."""
    code = currency(code, currency_field)
    if amount is None and code is None:
        return None, None
    if amount is None:
        raise DomainError(amount_field, ErrorCode.REQUIRED, f"{amount_field} is required when {currency_field} is given")
    if code is None:
        raise DomainError(currency_field, ErrorCode.REQUIRED, f"{currency_field} is required when {amount_field} is given")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_AMOUNT:
        raise DomainError(
            amount_field,
            ErrorCode.INVALID_AMOUNT,
            f"{amount_field} must be a whole number of minor units between 0 and {MAX_AMOUNT}",
        )
    return amount, code


def total(amounts: Any) -> ColumnElement[int]:
    """`SUM(amounts)` as a BIGINT, 0 over no rows.

    PostgreSQL sums BIGINT into NUMERIC, which asyncpg hands back as `Decimal`: a float-like
    value in money code, and one `json` refuses (a webhook payload carrying it failed a
    partial refund). Every sum of minor units goes through here, so it comes back an int."""
    return cast(func.coalesce(func.sum(amounts), 0), BigInteger)


# ISO 4217 minor units where they are not 2 (for writing amounts in files: "12.50", "1250" JPY).
_EXPONENTS = {
    **{
        code: 0
        for code in [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ]
    },
    **{code: 3 for code in ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"]},
}


def exponent(code: str) -> int:
    return _EXPONENTS.get(code, 2)


def decimal_string(amount: int, code: str) -> str:
    """`1250` USD -> "12.50"; `1250` JPY -> "1250"; exact (no float on the way)."""
    places = exponent(code)
    sign, value = ("-" if amount < 0 else ""), abs(amount)
    if places == 0:
        return f"{sign}{value}"
    whole, fraction = divmod(value, 10**places)
    return f"{sign}{whole}.{fraction:0{places}d}"


def formatted(amount: int, unit: str, locale: str) -> str:
    """An amount as people of `locale` read it, in their digits: `$12.50`, `‏١٢٫٥٠ US$`,
    `‎$۱۲٫۵۰`, points as a plain number, basis points as a percentage. For people only: files and
    APIs keep the integer and ASCII digits."""
    if unit in ISO_4217:
        value = Decimal(amount).scaleb(-get_currency_precision(unit))
        shown = format_currency(value, unit, locale=locale, numbering_system="default")
    elif unit == "PERCENT":
        shown = format_percent(Decimal(amount) / 10000, locale=locale, numbering_system="default")
    else:
        shown = format_decimal(amount, locale=locale, numbering_system="default")
    return localized_digits(shown, numbering_system(locale))
