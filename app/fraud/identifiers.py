"""Recording the devices, cards, addresses and networks each customer is seen with.

One multi-row upsert per action: (merchant, kind, value's keyed hash, customer) is unique, a
repeat sighting moves `last_seen_at`; the value itself is stored encrypted (app.personal).
Identifiers new to the customer call for a re-screening of their referrals, a job in the
outbox; on PostgreSQL the upsert writes it in the same statement.
Times are when things happened (the action's occurredAt, the click's time), so backfilled
history is judged at its own time.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import unicodedata
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Uuid, bindparam, func, or_, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app import prepared
from app.db import UTCDateTime, dialect_of, dropped_at_transaction_end, new_id, table_of, utcnow
from app.fraud.models import CustomerIdentifier, IdentifierKind
from app.personal import lookup_hash
from app.referrals.models import Action, Click, Referral, ReferralStatus
from app.tenancy import merchant_is
from app.worker import outbox
from app.worker.models import JobStatus, OutboxJob

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


def _sqlite_upsert() -> Any:
    """INSERT ... ON CONFLICT DO UPDATE keeping the earliest first and latest last sighting;
    built once and run with one parameter set per identifier (PostgreSQL: `_UPSERT_AND_RESCREEN`)."""
    table = table_of(CustomerIdentifier)
    statement = sqlite.insert(table)  # of the table: an ORM insert takes its bulk path, at several times the CPU
    return statement.on_conflict_do_update(
        index_elements=["merchant_id", "kind", "value_hash", "customer_id"],
        set_={
            "first_seen_at": func.min(table.c.first_seen_at, statement.excluded.first_seen_at),
            "last_seen_at": func.max(table.c.last_seen_at, statement.excluded.last_seen_at),
        },
    ).returning(table.c.id, table.c.kind, table.c.value_hash)  # a row keeping its old id was seen before


_SQLITE_UPSERT = _sqlite_upsert()


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
RESCREEN_LOOKBACK = timedelta(days=90)  # referrals older than this are not judged again


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
    session.info.setdefault(_SIGHTED, {}).setdefault(customer_id, {}).update(
        {(p["kind"], p["value_hash"]): p["value"] for p in params}
    )
    rescreen: dict[str, Any] = {"merchant_id": merchant_id, "customer_id": customer_id, "at": at, "action_id": action_id}
    if dialect_of(session) == "postgresql":
        await _upsert_with_rescreen_job(session, params, **rescreen)
        return
    proposed = {p["id"] for p in params}
    stored = (await session.execute(_SQLITE_UPSERT, params)).all()
    new = _new_to_rescreen(stored, proposed)
    if new:
        job = outbox.job_row(RESCREEN_JOB, merchant_id, _rescreen_args(new, **rescreen))
        parameters = {
            **job,
            "customer_id": customer_id,
            "anyway": action_id is None,
            "since": at - RESCREEN_LOOKBACK,
            "at": at,
            **{f"kind_{i}": kind for i, (kind, _hash) in enumerate(new)},
            **{f"value_hash_{i}": value_hash for i, (_kind, value_hash) in enumerate(new)},
        }
        if (await session.execute(_rescreen_job_unless_nothing_to_find(len(new)), parameters)).first() is not None:
            outbox.written(session, job)


@functools.cache
def _rescreen_job_unless_nothing_to_find(count: int) -> Any:
    """SQLite: the re-screening job for `count` new identifiers, written unless it could find
    nothing the recording action does not check itself: when no other customer was seen with
    any of them and the customer has no referral in the job's window yet, the only referral it
    could find is the one this action makes and screens with this evidence, which it skips.
    SQLite's writers take turns, so no other sighting is committing meanwhile; a customer seen
    with the identifiers later has a job of their own, which checks this customer's referrals
    too. (On PostgreSQL such a sighting may be committing alongside: the job is always written
    there, and the worker decides.) A new referee's first purchase thus writes no job, whose
    run in the embedded worker cost more than the purchase. Sightings outside an action
    (`anyway`) always write it. Built once per count; RETURNING the id when written."""
    jobs = table_of(OutboxJob)
    merchant, customer = bindparam("merchant_id", type_=Uuid()), bindparam("customer_id", type_=Uuid())
    seen_by_others = [others_seen_with(index).exists() for index in range(count)]
    window = rescreened_in_window(bindparam("since", type_=UTCDateTime()), bindparam("at", type_=UTCDateTime()))
    referred = [  # one each, so that each reads its own index (the merchant only filters)
        select(Referral.id).where(party == customer, merchant_is(Referral, merchant, use_index=False), *window).exists()
        for party in (Referral.referrer_id, Referral.referee_id)
    ]
    columns = list(outbox.job_row(RESCREEN_JOB, None, {}))
    values = [bindparam(name, type_=jobs.c[name].type) for name in columns]
    return (
        jobs.insert()
        .from_select(columns, select(*values).where(or_(bindparam("anyway", type_=Boolean()), *seen_by_others, *referred)))
        .returning(jobs.c.id)
    )


def others_seen_with(index: int) -> Any:
    """The other customers seen with the job's identifier number `index` (`kind_<i>`,
    `value_hash_<i>`; the customer is `customer_id`): what a re-screening reads of each."""
    return select(CustomerIdentifier.kind, CustomerIdentifier.value_hash, CustomerIdentifier.customer_id).where(
        CustomerIdentifier.merchant_id == bindparam("merchant_id", type_=Uuid()),
        CustomerIdentifier.kind == bindparam(f"kind_{index}"),
        CustomerIdentifier.value_hash == bindparam(f"value_hash_{index}"),
        CustomerIdentifier.customer_id != bindparam("customer_id", type_=Uuid()),
    )


def rescreened_in_window(since: Any, at: Any) -> list[Any]:
    """What a re-screening at `at` asks of a party's referral besides its parties: not rejected,
    referred from `since` (`at` less RESCREEN_LOOKBACK) up to `at`."""
    return [Referral.status != ReferralStatus.REJECTED, Referral.referred_at >= since, Referral.referred_at <= at]


def _new_to_rescreen(stored: Any, proposed: set[uuid.UUID]) -> list[tuple[str, str]]:
    """Of the upsert's rows, the (kind, value_hash) inserted now (they kept the id proposed)
    and worth a re-screening, sorted."""
    return sorted({(row.kind, row.value_hash) for row in stored if row.id in proposed and row.kind in RESCREEN_KINDS})


def _rescreen_args(
    new: list[tuple[str, str]], *, merchant_id: uuid.UUID, customer_id: uuid.UUID, at: datetime, action_id: uuid.UUID | None
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "identifiers": ";".join(f"{kind}:{value_hash}" for kind, value_hash in new),
        "at": at.isoformat(),
        "action_id": action_id or "",
    }


# PostgreSQL: the upsert and, when it inserted identifiers worth it, the re-screening job, in
# one statement (one round trip fewer per action). The job's arguments are `_rescreen_args`,
# built from the same rows: the identifiers in Python's order ("C" collation), ';'-joined.
_UPSERT_AND_RESCREEN = text(
    f"""
WITH sighted AS (
    INSERT INTO customer_identifiers
        (id, merchant_id, customer_id, kind, value, value_hash, first_seen_at, last_seen_at)
    SELECT i.id, CAST(:merchant_id AS UUID), CAST(:customer_id AS UUID), i.kind, i.value, i.value_hash, i.seen, i.seen
    FROM unnest(
        CAST(:ids AS UUID[]), CAST(:kinds AS VARCHAR[]), CAST(:values AS TEXT[]), CAST(:value_hashes AS VARCHAR[]),
        CAST(:seen AS TIMESTAMP WITH TIME ZONE[])
    ) WITH ORDINALITY AS i(id, kind, value, value_hash, seen, n)
    ORDER BY i.n
    ON CONFLICT (merchant_id, kind, value_hash, customer_id) DO UPDATE SET
        first_seen_at = least(customer_identifiers.first_seen_at, excluded.first_seen_at),
        last_seen_at = greatest(customer_identifiers.last_seen_at, excluded.last_seen_at)
    RETURNING id, kind, value_hash
), job AS (
    INSERT INTO outbox_jobs (id, merchant_id, actor, args, status, attempts, created_at)
    SELECT CAST(:job_id AS UUID), CAST(:merchant_id AS UUID), '{RESCREEN_JOB}',
        jsonb_build_object(
            'customer_id', CAST(:customer_id_text AS VARCHAR),
            'identifiers', string_agg(s.kind || ':' || s.value_hash, ';' ORDER BY s.kind COLLATE "C", s.value_hash COLLATE "C"),
            'at', CAST(:at AS VARCHAR),
            'action_id', CAST(:action_id AS VARCHAR)
        ),
        '{JobStatus.PENDING.value}', 0, CAST(:now AS TIMESTAMP WITH TIME ZONE)
    FROM sighted AS s
    WHERE s.id = ANY(CAST(:ids AS UUID[])) AND s.kind = ANY(CAST(:rescreen_kinds AS VARCHAR[]))
    HAVING count(*) > 0
)
SELECT id, kind, value_hash FROM sighted
"""
)
_RESCREEN_KINDS = sorted(RESCREEN_KINDS)
_ENCRYPTED_VALUE: Any = table_of(CustomerIdentifier).c.value.type


async def _upsert_with_rescreen_job(
    session: AsyncSession,
    params: list[dict[str, Any]],
    *,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID,
    at: datetime,
    action_id: uuid.UUID | None,
) -> None:
    job_id, now = new_id(), utcnow()
    stored = await prepared.run_text(
        session,
        _UPSERT_AND_RESCREEN,
        ["id", "kind", "value_hash"],
        {
            "merchant_id": merchant_id,
            "customer_id": customer_id,
            "ids": [p["id"] for p in params],
            "kinds": [p["kind"] for p in params],
            "values": [_ENCRYPTED_VALUE.process_bind_param(p["value"], None) for p in params],
            "value_hashes": [p["value_hash"] for p in params],
            "seen": [p["first_seen_at"] for p in params],
            "job_id": job_id,
            "customer_id_text": str(customer_id),
            "at": at.isoformat(),
            "action_id": str(action_id or ""),
            "now": now,
            "rescreen_kinds": _RESCREEN_KINDS,
        },
    )
    new = _new_to_rescreen(stored, {p["id"] for p in params})
    if new:  # the statement wrote the job: the session sends it after commit, like any other
        args = _rescreen_args(new, merchant_id=merchant_id, customer_id=customer_id, at=at, action_id=action_id)
        outbox.written(session, outbox.job_row(RESCREEN_JOB, merchant_id, args, job_id=job_id, now=now))
