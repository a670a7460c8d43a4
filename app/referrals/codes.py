"""Referral codes: short, human-friendly, unique per merchant, matched the way people type them.

A code is found by its key (`app.text.code_keys`): case, digits in any script (۴۷۲۹ = 4729),
full-width forms, spaces and dashes, and Arabic letter variants do not matter, so `K7M3 QX9P`
finds `K7M3QX9P` and `ريحانه-4729` finds `ریحانه-۴۷۲۹`; and the key is unique per merchant, so
look-alikes cannot be registered twice. Vanity codes in Arabic script need the merchant's
`arabicScriptCodes` setting (app.merchants.locale)."""

from __future__ import annotations

import copy
import re
import secrets
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import Select, and_, bindparam, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import text, validation
from app.db import (
    RowsOf,
    insert_ignoring_conflicts,
    keep_for_transaction,
    merchant_rows,
    new_id,
    one_of,
    utcnow,
)
from app.errors import DomainError, ErrorCode, NotFound
from app.merchants import locale
from app.referrals import customers, programs
from app.referrals.models import (
    CodeStyle,
    Customer,
    Program,
    ProgramStatus,
    ReferralCode,
)
from app.tenancy import merchant_is

# No 0/O, 1/I/L: codes are read aloud, typed from screenshots and printed on flyers.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_NAME_PART_LENGTH = 8
_NAME_SUFFIX_LENGTH = 4
_MAX_GENERATION_ATTEMPTS = 8
MAX_LENGTH = 32


def normalize(raw: str | None) -> str | None:
    """A code as someone typed it, cleaned (`app.text.typed_code`), or None if it cannot be one."""
    return text.typed_code(raw, MAX_LENGTH)


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


def validate_vanity(vanity: str | None, *, arabic_script: bool = False) -> str | None:
    """The vanity code as it will be shown: 4 to 32 letters, digits, '-' or '_', starting with a
    letter or digit; letters Latin, or (with `arabic_script`) Arabic and Persian, not mixed."""
    if vanity is None:
        return None
    given = validation.required_text(vanity, "vanity", 64)
    value = None if any(ch.isspace() for ch in given) else normalize(given)  # typed codes may have spaces; a new one not
    if value is None or not 4 <= len(value) <= MAX_LENGTH or not value[0].isalnum() or len(text.code_key(value)) < 3:
        raise DomainError(
            "vanity",
            ErrorCode.CODE_INVALID,
            "a vanity code is 4 to 32 letters, digits, '-' or '_', starting with a letter or digit",
        )
    letters = [ch for ch in value if ch.isalpha()]
    arabic = [ch for ch in letters if text.is_arabic_letter(ch)]
    if arabic and not arabic_script:
        raise DomainError(
            "vanity",
            ErrorCode.CODE_INVALID,
            "codes in Arabic script are off for this merchant (setLocaleSettings arabicScriptCodes)",
        )
    if arabic and len(arabic) != len(letters):
        raise DomainError("vanity", ErrorCode.CODE_INVALID, "a code is in Latin or in Arabic script, not both")
    if not all(text.is_latin_letter(ch) and ch.isascii() for ch in letters if not text.is_arabic_letter(ch)):
        raise DomainError("vanity", ErrorCode.CODE_INVALID, "a code's letters are A-Z, or Arabic and Persian letters")
    return value


def lookup_key(code: str, *, unify_teh_marbuta: bool = False) -> str:
    """The key a code is stored under: ة read as ه if the merchant unifies them."""
    strict, loose = text.code_keys(code)
    return loose if unify_teh_marbuta else strict


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
    settings = await locale.get_settings(session, merchant_id=merchant_id)
    vanity = validate_vanity(vanity, arabic_script=settings.arabic_script_codes)
    program = await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    if program.program_status is ProgramStatus.ARCHIVED:
        raise DomainError("programId", ErrorCode.PROGRAM_NOT_ACTIVE, "the program is archived")
    customer = await customers.upsert_customer(
        session, merchant_id=merchant_id, external_id=external_id, details=customers.CustomerDetails()
    )
    for _ in range(_MAX_GENERATION_ATTEMPTS):
        existing = await _active_code(session, merchant_id, program.id, customer.id)
        if existing is not None:
            if vanity is not None and text.code_keys(vanity)[1] != text.code_keys(existing.code)[1]:
                raise DomainError(
                    "vanity",
                    ErrorCode.CUSTOMER_HAS_CODE,
                    f"the customer already has the active code {existing.code}; deactivate it first",
                )
            return existing
        code = vanity or generate(program, customer)
        key = lookup_key(code, unify_teh_marbuta=settings.unify_teh_marbuta)
        if vanity is not None and settings.unify_teh_marbuta and await _look_alike(session, merchant_id, code):
            raise DomainError("vanity", ErrorCode.CODE_TAKEN, f"the code {vanity} is already taken (or one that reads the same)")
        inserted = await session.scalar(
            insert_ignoring_conflicts(session, ReferralCode)
            .values(
                id=new_id(),
                merchant_id=merchant_id,
                program_id=program.id,
                customer_id=customer.id,
                code=code,
                lookup_key=key,
                is_vanity=vanity is not None,
                active=True,
                created_at=utcnow(),
            )
            .returning(ReferralCode)
        )
        if inserted is not None:
            return inserted
        # Either the code is taken, or a concurrent call gave this customer a code first.
        if vanity is not None and await _active_code(session, merchant_id, program.id, customer.id) is None:
            raise DomainError("vanity", ErrorCode.CODE_TAKEN, f"the code {vanity} is already taken (or one that reads the same)")
    raise RuntimeError("could not generate a unique referral code")


async def _look_alike(session: AsyncSession, merchant_id: uuid.UUID, code: str) -> bool:
    """A code stored while ة and ه were apart that reads like `code` now that they are one."""
    return (
        await session.scalar(
            select(ReferralCode.id)
            .where(ReferralCode.merchant_id == merchant_id, ReferralCode.lookup_key.in_(text.code_look_alikes(code)))
            .limit(1)
        )
        is not None
    )


async def _active_code(
    session: AsyncSession, merchant_id: uuid.UUID, program_id: uuid.UUID, customer_id: uuid.UUID
) -> ReferralCode | None:
    return await session.scalar(
        select(ReferralCode).where(
            merchant_is(ReferralCode, merchant_id),
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
            ReferralCode.merchant_id == merchant_id,
            ReferralCode.program_id == program_id,
            ReferralCode.active.is_(True),
        )
    )


class Matching:
    """`query` narrowed to the merchant's code someone typed (`normalize`d), best match first:
    exactly as stored, then by its key with ة kept, then by the keys it reads like with ة as ه
    (`app.text.code_look_alikes`): one indexed query. A code from before keys whose key
    another code took is found exactly as stored. Built once; `statement_and_params` picks
    the statement for what was typed.

    Two statements: a code with one key (any code without ه, so nearly all) is looked up by
    scalar parameters only. PostgreSQL then plans the prepared statement once per connection:
    an array parameter (`lookup_key = ANY($n)`) is costed as ten values in the generic plan, so
    PostgreSQL planned the statement afresh on every execution, which cost it six times the
    lookup itself."""

    def __init__(self, query: Select[Any]) -> None:
        self.query = query
        self.one_key = self._matching(query, ReferralCode.lookup_key == bindparam("key"))
        self.look_alikes = self._matching(query, one_of(ReferralCode.lookup_key, "look_alikes"))

    @staticmethod
    def _matching(query: Select[Any], by_key: Any) -> Select[Any]:
        return (
            query.where(
                ReferralCode.merchant_id == bindparam("merchant_id"), or_(by_key, ReferralCode.code == bindparam("typed"))
            )
            .order_by(
                case((ReferralCode.code == bindparam("typed"), 0), (ReferralCode.lookup_key == bindparam("key"), 1), else_=2)
            )
            .limit(1)
        )

    def add_columns(self, *columns: Any) -> Matching:
        return Matching(self.query.add_columns(*columns))

    def around(self, build: Callable[[Select[Any]], Select[Any]]) -> Matching:
        """The same lookup inside a larger statement: `build` of each of the two (a statement
        that reads the found row as a CTE, say); its other parameters are the caller's."""
        wrapped = copy.copy(self)
        wrapped.one_key, wrapped.look_alikes = build(self.one_key), build(self.look_alikes)
        return wrapped

    def statement_and_params(self, merchant_id: uuid.UUID, typed: str) -> tuple[Select[Any], dict]:
        key = text.code_key(typed)
        look_alikes = text.code_look_alikes(typed)
        if look_alikes == {key}:
            return self.one_key, {"merchant_id": merchant_id, "typed": typed, "key": key}
        return self.look_alikes, {"merchant_id": merchant_id, "typed": typed, "key": key, "look_alikes": sorted(look_alikes)}


_CODE = Matching(select(ReferralCode))
# The code, its program and its owner (the referrer), as columns (`CODE_AND_OWNER.objects` makes
# them the session's objects); more columns may be added after them (app.actions).
CODE_AND_PROGRAM = RowsOf(ReferralCode, Program)
CODE_WITH_PROGRAM = Matching(
    select(*CODE_AND_PROGRAM.columns)
    .select_from(ReferralCode)
    .join(Program, and_(Program.id == ReferralCode.program_id, Program.merchant_id == ReferralCode.merchant_id))
)
CODE_AND_OWNER = RowsOf(ReferralCode, Program, Customer)
CODE_WITH_OWNER = Matching(
    select(*CODE_AND_OWNER.columns)
    .select_from(ReferralCode)
    .join(Program, and_(Program.id == ReferralCode.program_id, Program.merchant_id == ReferralCode.merchant_id))
    .join(Customer, and_(Customer.id == ReferralCode.customer_id, Customer.merchant_id == ReferralCode.merchant_id))
)


async def find_code(session: AsyncSession, *, merchant_id: uuid.UUID, code: str | None) -> ReferralCode | None:
    typed = normalize(code)
    if typed is None:
        return None
    return await session.scalar(*_CODE.statement_and_params(merchant_id, typed))


async def find_code_and_program(
    session: AsyncSession, *, merchant_id: uuid.UUID, code: str | None
) -> tuple[ReferralCode, Program] | None:
    """`find_code` and the code's program, in one query (the widget's read: its share link).
    A click reads them in the statement that writes it (app.referrals.clicks)."""
    row = await typed_code_row(session, CODE_WITH_PROGRAM, merchant_id, code)
    if row is None:
        return None
    found, program = CODE_AND_PROGRAM.objects(session, row)
    return found, program


async def typed_code_row(
    session: AsyncSession, matching: Matching, merchant_id: uuid.UUID, code: str | None, parameters: dict | None = None
) -> Any:
    """The first row of a `Matching` for the code someone typed, or None; `parameters` are
    those of a statement built `around` the lookup."""
    typed = normalize(code)
    if typed is None:
        return None
    statement, params = matching.statement_and_params(merchant_id, typed)
    return (await session.execute(statement, {**params, **parameters} if parameters else params)).first()


async def find_code_with_owner(session: AsyncSession, *, merchant_id: uuid.UUID, code: str | None) -> ReferralCode | None:
    """`find_code` for attribution: its program and its customer (the referrer) come
    in the same query and are kept in the session, so what follows reads them without another
    round trip."""
    row = await typed_code_row(session, CODE_WITH_OWNER, merchant_id, code)
    if row is None:
        return None
    found, program, owner = CODE_AND_OWNER.objects(session, row)
    keep_for_transaction(session, found, program, owner)  # the program and the referrer are read next
    return found


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
