"""Recording the devices, cards, addresses and networks each customer is seen with.

One multi-row upsert per action: (merchant, kind, value's keyed hash, customer) is unique, a
repeat sighting moves `last_seen_at`; the value itself is stored encrypted (app.personal).
Times are when things happened (the action's occurredAt, the click's time), so backfilled
history is judged at its own time.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_of, dropped_at_transaction_end, new_id, table_of
from app.fraud.models import CustomerIdentifier, IdentifierKind
from app.personal import lookup_hash
from app.referrals.models import Action, Click
from app.worker import outbox

_ABBREVIATIONS = {
    "street": "st",
    "str": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "square": "sq",
    "highway": "hwy",
    "apartment": "apt",
    "suite": "ste",
    "unit": "apt",
    "flat": "apt",
    "floor": "fl",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
}
_ADDRESS_FIELDS = ("line1", "line2", "postalCode", "city", "country")


def normalized_address(address: dict[str, str | None] | None) -> str | None:
    """`12 Main Street, Apt. 4` and `12 main st apt 4` are one address. Region is left out
    (spelled out or abbreviated at random); the postal code pins the place."""
    if not address:
        return None
    parts = []
    for name in _ADDRESS_FIELDS:
        value = address.get(name)
        if not value:
            continue
        # casefold first: `Straße` is `strasse`, which NFKD alone would turn into `strae`
        plain = unicodedata.normalize("NFKD", value.casefold()).encode("ascii", "ignore").decode()
        plain = plain.replace("#", " apt ")
        words = re.sub(r"[^a-z0-9]+", " ", plain).split()
        if name == "postalCode":
            words = ["".join(words)]
        parts.append(" ".join(_ABBREVIATIONS.get(w, w) for w in words))
    text = "|".join(p for p in parts if p)
    if not text or not (address.get("line1") and (address.get("postalCode") or address.get("city"))):
        return None  # a country alone is not an address
    return text if len(text) <= 200 else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def normalized_ip(ip: str | None) -> str | None:
    """`2001:DB8:0::66` is `2001:db8::66`: one spelling per address, as blocklist entries are
    stored, so lists and shared-IP checks match however the merchant's server wrote it."""
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        return ip  # not an address: kept as given, still comparable with itself


def ip_with_user_agent(ip: str | None, user_agent: str | None) -> str | None:
    ip = normalized_ip(ip)
    if not ip or not user_agent:
        return None
    return f"{ip} ua:{hashlib.sha256(user_agent.encode()).hexdigest()[:16]}"


def _sightings(
    device_id: str | None,
    ip: str | None,
    user_agent: str | None,
    payment: str | None,
    address: dict[str, str | None] | None,
    fingerprint: str | None,
) -> list[tuple[IdentifierKind, str]]:
    ip = normalized_ip(ip)
    found = [
        (IdentifierKind.DEVICE, device_id),
        (IdentifierKind.FINGERPRINT, fingerprint),
        (IdentifierKind.PAYMENT, payment),
        (IdentifierKind.ADDRESS, normalized_address(address)),
        (IdentifierKind.IP, ip),
        (IdentifierKind.IP_UA, ip_with_user_agent(ip, user_agent)),
    ]
    return [(kind, value[:255]) for kind, value in found if value]


async def record_sightings(session: AsyncSession, *, action: Action) -> None:
    """What the action tells about its customer."""
    found = _sightings(
        action.device_id,
        action.ip,
        action.user_agent,
        action.payment_fingerprint,
        action.shipping_address,
        action.device_fingerprint,
    )
    if found:
        await _upsert(
            session,
            action.merchant_id,
            action.customer_id,
            {(k.value, v): action.occurred_at for k, v in found},
            at=action.occurred_at,
            action_id=action.id,
        )


async def record_click(session: AsyncSession, *, customer_id: uuid.UUID, click: Click) -> None:
    """The click that brought a referee was made by them: its device and network are theirs."""
    await record_visit(
        session,
        merchant_id=click.merchant_id,
        customer_id=customer_id,
        seen_at=click.created_at,
        device_id=click.device_id,
        device_fingerprint=click.device_fingerprint,
        ip=click.ip,
        user_agent=click.user_agent,
    )


async def record_visit(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID,
    seen_at: datetime,
    device_id: str | None,
    device_fingerprint: str | None,
    ip: str | None,
    user_agent: str | None,
) -> None:
    """A signed-in customer opened their share panel: the browser and network are theirs.
    A referrer's own device later clicking their link is the classic self-referral."""
    found = _sightings(device_id, ip, user_agent, None, None, device_fingerprint)
    if found:
        await _upsert(session, merchant_id, customer_id, {(k.value, v): seen_at for k, v in found}, at=seen_at)


async def record_payout_destination(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_id: uuid.UUID, fingerprint: str, at: datetime
) -> None:
    """A payout destination the customer gave (its fingerprint, never the destination)."""
    await _upsert(session, merchant_id, customer_id, {(IdentifierKind.PAYOUT_ACCOUNT.value, fingerprint): at}, at=at)


def _upsert_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE keeping the earliest first and latest last sighting;
    built once per dialect and run with one parameter set per identifier."""
    module = postgresql if dialect == "postgresql" else sqlite
    earliest, latest = (func.min, func.max) if dialect == "sqlite" else (func.least, func.greatest)
    table = table_of(CustomerIdentifier)
    statement = module.insert(table)  # of the table: an ORM insert takes its bulk path, at several times the CPU
    return statement.on_conflict_do_update(
        index_elements=["merchant_id", "kind", "value_hash", "customer_id"],
        set_={
            "first_seen_at": earliest(table.c.first_seen_at, statement.excluded.first_seen_at),
            "last_seen_at": latest(table.c.last_seen_at, statement.excluded.last_seen_at),
        },
    ).returning(table.c.id, table.c.kind, table.c.value_hash)  # a row keeping its old id was seen before


_UPSERTS = {dialect: _upsert_statement(dialect) for dialect in ("postgresql", "sqlite")}


# New evidence of these kinds re-screens the customer's referrals (app.fraud.rescreening);
# a bare IP or the coarse fingerprint alone says too little to be worth it.
RESCREEN_KINDS = frozenset(
    {
        IdentifierKind.DEVICE.value,
        IdentifierKind.PAYMENT.value,
        IdentifierKind.ADDRESS.value,
        IdentifierKind.IP_UA.value,
        IdentifierKind.PAYOUT_ACCOUNT.value,
    }
)
RESCREEN_JOB = "fraud.rescreen"


_SIGHTED = dropped_at_transaction_end("identifiers_sighted")


def sighted_in_transaction(session: AsyncSession, customer_id: uuid.UUID) -> dict[tuple[str, str], str]:
    """The identifiers this transaction has recorded for the customer, {(kind, value_hash):
    value}: the fraud check reads evidence about them in its first round trip
    (`Case.prefetch`), before it knows the customer's stored identifiers."""
    return session.info.get(_SIGHTED, {}).get(customer_id, {})


async def _upsert(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID,
    rows: dict,
    *,
    at: datetime,
    action_id: uuid.UUID | None = None,
) -> None:
    """Record the sightings; identifiers the customer was never seen with before enqueue a
    re-screening of the referrals they may change (same transaction: the outbox)."""
    dialect = dialect_of(session)
    params = [
        {
            "id": new_id(),
            "merchant_id": merchant_id,
            "customer_id": customer_id,
            "kind": kind,
            "value": value,
            "value_hash": lookup_hash(merchant_id, kind, value),
            "first_seen_at": seen,
            "last_seen_at": seen,
        }
        for (kind, value), seen in sorted(rows.items())  # a fixed order: concurrent upserts lock rows alike
    ]
    proposed = {p["id"] for p in params}
    stored = (await session.execute(_UPSERTS[dialect], params)).all()
    session.info.setdefault(_SIGHTED, {}).setdefault(customer_id, {}).update(
        {(p["kind"], p["value_hash"]): p["value"] for p in params}
    )
    new = sorted({(row.kind, row.value_hash) for row in stored if row.id in proposed and row.kind in RESCREEN_KINDS})
    if new:
        await _enqueue_rescreen(session, merchant_id, customer_id, new, at=at, action_id=action_id)


async def _enqueue_rescreen(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID,
    new: list[tuple[str, str]],
    *,
    at: datetime,
    action_id: uuid.UUID | None,
) -> None:
    await outbox.enqueue(
        session,
        RESCREEN_JOB,
        merchant_id=merchant_id,
        customer_id=customer_id,
        identifiers=";".join(f"{kind}:{value_hash}" for kind, value_hash in new),
        at=at.isoformat(),
        action_id=action_id or "",
    )
