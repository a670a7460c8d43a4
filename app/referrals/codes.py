"""Referral codes: short, human-friendly, case-insensitive, unique per merchant."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from collections.abc import Sequence
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.db import insert_ignoring_conflicts, keep_for_transaction, merchant_rows, new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.referrals import customers, programs
from app.referrals.models import (
    CodeStyle,
    Customer,
    Program,
    ProgramStatus,
    ReferralCode,
)

# No 0/O, 1/I/L: codes are read aloud, typed from screenshots and printed on flyers.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_VANITY = re.compile(r"^[A-Z0-9][A-Z0-9_-]{3,31}$")
_LOOKUP = re.compile(r"^[A-Z0-9_-]{1,32}$")
_NAME_PART_LENGTH = 8
_NAME_SUFFIX_LENGTH = 4
_MAX_GENERATION_ATTEMPTS = 8


def normalize(raw: str | None) -> str | None:
    """The stored form of a code as typed by someone, or None if it cannot be a code."""
    if raw is None:
        return None
    code = raw.strip().upper()
    return code if _LOOKUP.match(code) else None


def random_part(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def generate(program: Program, customer: Customer) -> str:
    if CodeStyle(program.code_style) is CodeStyle.NAME and customer.name:
        ascii_name = unicodedata.normalize("NFKD", customer.name).encode("ascii", "ignore").decode()
        first_word = re.sub(r"[^A-Za-z]", "", ascii_name.split()[0] if ascii_name.split() else "")
        if len(first_word) >= 2:
            return f"{first_word[:_NAME_PART_LENGTH].upper()}-{random_part(_NAME_SUFFIX_LENGTH)}"
    return random_part(program.code_length)


def share_url(program: Program, code: str) -> str | None:
    if not program.share_url_template:
        return None
    return program.share_url_template.replace("{code}", quote(code, safe=""))


def validate_vanity(vanity: str | None) -> str | None:
    if vanity is None:
        return None
    value = validation.required_text(vanity, "vanity", 32).upper()
    if not _VANITY.match(value):
        raise DomainError(
            "vanity",
            ErrorCode.CODE_INVALID,
            "a vanity code is 4 to 32 letters, digits, '-' or '_', starting with a letter or digit",
        )
    return value


async def issue_referral_code(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    customer_external_id: str,
    vanity: str | None = None,
) -> ReferralCode:
    """The customer's active code in the program, created if needed.

    Idempotent: the same customer and program always get the same active code back, also
    when two calls race (a partial unique index allows one active code per pair).
    """
    external_id = customers.external_id(customer_external_id)
    vanity = validate_vanity(vanity)
    program = await programs.get_program(session, merchant_id=merchant_id, program_id=program_id)
    if program is None:
        raise NotFound("programId", "program")
    if program.program_status is ProgramStatus.ARCHIVED:
        raise DomainError("programId", ErrorCode.PROGRAM_NOT_ACTIVE, "the program is archived")
    customer = await customers.upsert_customer(
        session, merchant_id=merchant_id, external_id=external_id, details=customers.CustomerDetails()
    )
    for _ in range(_MAX_GENERATION_ATTEMPTS):
        existing = await _active_code(session, program.id, customer.id)
        if existing is not None:
            if vanity is not None and vanity != existing.code:
                raise DomainError(
                    "vanity",
                    ErrorCode.CUSTOMER_HAS_CODE,
                    f"the customer already has the active code {existing.code}; deactivate it first",
                )
            return existing
        code = vanity or generate(program, customer)
        inserted = await session.scalar(
            insert_ignoring_conflicts(session, ReferralCode)
            .values(
                id=new_id(),
                merchant_id=merchant_id,
                program_id=program.id,
                customer_id=customer.id,
                code=code,
                is_vanity=vanity is not None,
                active=True,
                created_at=utcnow(),
            )
            .returning(ReferralCode)
        )
        if inserted is not None:
            return inserted
        # Either the code is taken, or a concurrent call gave this customer a code first.
        if vanity is not None and await _active_code(session, program.id, customer.id) is None:
            raise DomainError("vanity", ErrorCode.CODE_TAKEN, f"the code {vanity} is already taken")
    raise RuntimeError("could not generate a unique referral code")


async def _active_code(session: AsyncSession, program_id: uuid.UUID, customer_id: uuid.UUID) -> ReferralCode | None:
    return await session.scalar(
        select(ReferralCode).where(
            ReferralCode.program_id == program_id,
            ReferralCode.customer_id == customer_id,
            ReferralCode.active.is_(True),
        )
    )


async def active_code_of(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, customer_external_id: str
) -> ReferralCode | None:
    """The customer's active code in the program, in one indexed query (None if they have none
    yet): the read path of the widget, which only issues a code on first use."""
    return await session.scalar(
        select(ReferralCode)
        .join(Customer, Customer.id == ReferralCode.customer_id)
        .where(
            Customer.merchant_id == merchant_id,
            Customer.external_id == customer_external_id,
            ReferralCode.program_id == program_id,
            ReferralCode.active.is_(True),
        )
    )


async def find_code(session: AsyncSession, *, merchant_id: uuid.UUID, code: str | None) -> ReferralCode | None:
    normalized = normalize(code)
    if normalized is None:
        return None
    return await session.scalar(
        select(ReferralCode).where(ReferralCode.merchant_id == merchant_id, ReferralCode.code == normalized)
    )


async def find_code_with_owner(session: AsyncSession, *, merchant_id: uuid.UUID, code: str | None) -> ReferralCode | None:
    """`find_code` for attribution: its program and its customer (the referrer) come in the same
    query and sit in the session, so what follows reads them without another round trip."""
    normalized = normalize(code)
    if normalized is None:
        return None
    row = (await session.execute(
        select(ReferralCode, Program, Customer)
        .join(Program, Program.id == ReferralCode.program_id)
        .join(Customer, Customer.id == ReferralCode.customer_id)
        .where(ReferralCode.merchant_id == merchant_id, ReferralCode.code == normalized)
    )).first()
    if row is None:
        return None
    keep_for_transaction(session, *row)  # the program and the referrer are read next
    return row[0]


async def deactivate_referral_code(session: AsyncSession, *, merchant_id: uuid.UUID, code: str) -> ReferralCode:
    """Stops the code attributing new referrals; referrals it already made stay."""
    referral_code = await find_code(session, merchant_id=merchant_id, code=code)
    if referral_code is None:
        raise NotFound("code", "referral code")
    if referral_code.active:
        referral_code.active = False
        referral_code.deactivated_at = utcnow()
        await session.flush()
    return referral_code


async def get_codes_by_ids(session: AsyncSession, *, merchant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[ReferralCode]:
    return await merchant_rows(session, ReferralCode, merchant_id, ReferralCode.id, ids)


async def get_codes_by_customer_ids(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_ids: Sequence[uuid.UUID]
) -> list[ReferralCode]:
    return await merchant_rows(session, ReferralCode, merchant_id, ReferralCode.customer_id, customer_ids)
