"""The second factor of admins: TOTP (RFC 6238, via pyotp) and single-use recovery codes.

- Enrollment: a 160-bit seed, shown once as an `otpauth://` URI and an SVG QR code, kept
  pending (encrypted) until a code from the app confirms it; confirming gives ten recovery
  codes, stored as hashes and shown once.
- Checking (`check`): codes of the current 30-second step and one step either side are
  accepted, each at most once per admin: the accepted step is stored and only a conditional
  UPDATE to a later step succeeds, so two concurrent uses of one code give one success.
- Lockout: every code checked is recorded (`SecondFactorAttempt`); the fifth wrong one
  within 15 minutes locks the admin's second factor (so every money action) for 15 minutes,
  whatever aliases, requests, sessions or addresses the codes came through. Checks of one
  admin queue on the admin's row, so concurrent guesses are counted one by one.
- Changing the device or resetting needs a current code or a recovery code; it is audited and
  announced with the `admin.totp_changed` webhook to the merchant.

A refused code must still be recorded, so `check` returns the refusal instead of raising:
the caller commits the attempt and reports the error (see `app.schema.admins`).
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app import crypto
from app.config import Settings
from app.db import changed_rows, plain, utcnow
from app.errors import DomainError, ErrorCode
from app.merchants import audit
from app.merchants.admins import get_admin
from app.merchants.models import Admin, AdminRecoveryCode, AdminRole, AdminStatus, Merchant, SecondFactorAttempt
from app.tenancy import merchant_is, scoped
from app.webhooks import events
from app.webhooks.service import emit

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1  # a code of the previous or next step is accepted too
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation
PENDING_FOR = timedelta(minutes=15)  # an enrollment not confirmed by then starts over
MAX_WRONG = 5
WRONG_WINDOW = timedelta(minutes=15)
LOCKED_FOR = timedelta(minutes=15)
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # 31 symbols, none easily confused
_RECOVERY_LENGTH = 16  # ~79 bits


def current_time() -> datetime:
    """The clock second factors are checked against (tests move it)."""
    return utcnow()


class Method(enum.Enum):
    TOTP = "TOTP"
    RECOVERY_CODE = "RECOVERY_CODE"


class Change(enum.Enum):
    ENROLLED = "ENROLLED"
    CHANGED = "CHANGED"  # a new device replaced the old one
    RESET = "RESET"  # removed; the admin must enroll again before any money action


@dataclass(frozen=True)
class Proof:
    """What a caller offers as the second factor: a code from the app or a recovery code."""

    totp_code: str | None = None
    recovery_code: str | None = None

    @property
    def given(self) -> bool:
        return bool((self.totp_code or "").strip() or (self.recovery_code or "").strip())


@dataclass(frozen=True)
class Enrollment:
    secret: str  # base32, for typing in by hand
    provisioning_uri: str
    qr_svg: str
    expires_at: datetime


@dataclass(frozen=True)
class Confirmed:
    recovery_codes: list[str] | None = None  # shown once
    refused: DomainError | None = None


def _context(admin_id: uuid.UUID, pending: bool = False) -> str:
    return f"{'totp_pending' if pending else 'totp'}:{admin_id}"


def _step(at: datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


def _matching_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step (within the allowed drift) whose code this is, or None."""
    code = code.strip().replace(" ", "")
    if not re.fullmatch(rf"\d{{{DIGITS}}}", code):
        return None
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now = _step(at)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if secrets.compare_digest(otp.generate_otp(step), code):
            return step
    return None


def _recovery_hash(code: str) -> str:
    normalized = re.sub(r"[\s-]", "", code).lower()
    return hashlib.sha256(normalized.encode()).hexdigest()


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4))


async def start_enrollment(
    session: AsyncSession, *, settings: Settings, merchant_id: uuid.UUID, admin_id: uuid.UUID
) -> Enrollment:
    """A new seed for the admin's authenticator app; nothing changes until it is confirmed."""
    admin = await get_admin(session, merchant_id=merchant_id, admin_id=admin_id, lock=True)
    merchant = await session.get_one(Merchant, merchant_id)
    secret = pyotp.random_base32(length=SECRET_BYTES * 8 // 5)
    admin.totp_pending_encrypted = crypto.keyring(settings).encrypt(secret, context=_context(admin.id, pending=True))
    admin.totp_pending_expires_at = utcnow() + PENDING_FOR
    await session.flush()
    issuer = f"Referral {merchant.name}".replace(":", " ")[:100]
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=admin.email, issuer_name=issuer)
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=2)
    return Enrollment(secret=secret, provisioning_uri=uri, qr_svg=svg, expires_at=admin.totp_pending_expires_at)


async def confirm_enrollment(
    session: AsyncSession,
    *,
    settings: Settings,
    merchant_id: uuid.UUID,
    admin_id: uuid.UUID,
    code: str,
    proof: Proof,
    actor: audit.Actor,
) -> Confirmed:
    """Activate the pending seed with a code from it. Replacing an enrolled device also needs
    a code of the old one or a recovery code (`proof`), checked only once the new code is
    right, so a typo never spends a recovery code."""
    admin = await get_admin(session, merchant_id=merchant_id, admin_id=admin_id, lock=True)
    ring = crypto.keyring(settings)
    if admin.totp_pending_encrypted is None or admin.totp_pending_expires_at is None or admin.totp_pending_expires_at <= utcnow():
        raise DomainError(None, ErrorCode.ENROLLMENT_NOT_STARTED, "start the enrollment again (startTotpEnrollment)")
    pending = ring.decrypt(admin.totp_pending_encrypted, context=_context(admin.id, pending=True))
    step = _matching_step(pending, code or "", current_time())
    if step is None:
        return Confirmed(refused=DomainError("code", ErrorCode.SECOND_FACTOR_INVALID, "this code does not match the new seed"))
    changing = admin.totp_enabled_at is not None
    if changing:
        refused = await check(session, settings=settings, admin=admin, proof=proof, purpose="change_totp", actor=actor)
        if refused is not None:
            return Confirmed(refused=refused)
    admin.totp_secret_encrypted = ring.encrypt(pending, context=_context(admin.id))
    admin.totp_enabled_at = utcnow()
    admin.totp_last_step = step  # the confirming code is used
    admin.totp_pending_encrypted = None
    admin.totp_pending_expires_at = None
    codes = await _replace_recovery_codes(session, admin)
    await _announce(session, admin, Change.CHANGED if changing else Change.ENROLLED, actor)
    return Confirmed(recovery_codes=codes)


async def reset(
    session: AsyncSession, *, settings: Settings, merchant_id: uuid.UUID, admin_id: uuid.UUID, proof: Proof, actor: audit.Actor
) -> DomainError | None:
    """Remove the second factor (a lost phone, with a recovery code); money actions need a new
    enrollment. Returns the refusal, if any (the checked code is recorded either way)."""
    admin = await get_admin(session, merchant_id=merchant_id, admin_id=admin_id, lock=True)
    refused = await check(session, settings=settings, admin=admin, proof=proof, purpose="reset_totp", actor=actor)
    if refused is not None:
        return refused
    await _remove(session, admin)
    await _announce(session, admin, Change.RESET, actor)
    return None


async def confirm(
    session: AsyncSession,
    *,
    settings: Settings,
    merchant_id: uuid.UUID,
    admin_id: uuid.UUID,
    proof: Proof,
    purpose: str,
    actor: audit.Actor,
) -> DomainError | None:
    """Check the second factor of an admin about to do something a stolen session must not
    (issue or revoke API keys). Returns the refusal, if any (the checked code is recorded)."""
    admin = await get_admin(session, merchant_id=merchant_id, admin_id=admin_id, lock=True)
    return await check(session, settings=settings, admin=admin, proof=proof, purpose=purpose, actor=actor)


async def operator_reset(session: AsyncSession, *, merchant_id: uuid.UUID, admin_id: uuid.UUID) -> Admin:
    """`referral admins reset-totp`: the deployment's operator, for an admin who lost both the
    device and the recovery codes. Audited and announced like any reset."""
    admin = await get_admin(session, merchant_id=merchant_id, admin_id=admin_id, lock=True)
    await _remove(session, admin)
    await _announce(session, admin, Change.RESET, audit.SYSTEM, note="reset by the operator (command line)")
    return admin


async def _remove(session: AsyncSession, admin: Admin) -> None:
    admin.totp_secret_encrypted = None
    admin.totp_enabled_at = None
    admin.totp_last_step = None
    admin.totp_pending_encrypted = None
    admin.totp_pending_expires_at = None
    await session.execute(scoped(delete(AdminRecoveryCode).where(AdminRecoveryCode.admin_id == admin.id), admin.merchant_id))
    await session.flush()


async def _replace_recovery_codes(session: AsyncSession, admin: Admin) -> list[str]:
    await session.execute(scoped(delete(AdminRecoveryCode).where(AdminRecoveryCode.admin_id == admin.id), admin.merchant_id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    now = utcnow()
    session.add_all(
        [
            AdminRecoveryCode(merchant_id=admin.merchant_id, admin_id=admin.id, code_hash=_recovery_hash(c), created_at=now)
            for c in codes
        ]
    )
    await session.flush()
    return codes


async def unused_recovery_codes(session: AsyncSession, *, merchant_id: uuid.UUID, admin_id: uuid.UUID) -> int:
    return (
        await session.scalar(
            scoped(
                select(func.count())
                .select_from(AdminRecoveryCode)
                .where(AdminRecoveryCode.admin_id == admin_id, AdminRecoveryCode.used_at.is_(None)),
                merchant_id,
            )
        )
        or 0
    )


async def _announce(session: AsyncSession, admin: Admin, change: Change, actor: audit.Actor, note: str | None = None) -> None:
    """Audit, and tell the merchant (`admin.totp_changed`) with the other owners and admins
    to notify: a second factor that changes without its owner knowing is an account takeover."""
    await audit.record(
        session,
        merchant_id=admin.merchant_id,
        actor=actor,
        action=f"admin.totp_{change.value.lower()}",
        subject_id=admin.id,
        note=note,
        details={"email": admin.email},
    )
    others = (
        await session.scalars(
            select(Admin)
            .where(
                merchant_is(Admin, admin.merchant_id),
                Admin.id != admin.id,
                Admin.status == AdminStatus.ACTIVE,
                Admin.role.in_([AdminRole.OWNER, AdminRole.ADMIN]),
            )
            .order_by(Admin.id)
        )
    ).all()
    await emit(
        session,
        admin.merchant_id,
        events.ADMIN_TOTP_CHANGED,
        {
            "adminId": str(admin.id),
            "email": admin.email,
            "role": plain(admin.role),
            "change": change.value,
            "byAdminId": str(actor.admin_id) if actor.admin_id else None,
            "note": note,
            "at": utcnow().isoformat(),
            "notify": [{"adminId": str(o.id), "email": o.email, "role": o.role.value} for o in others],
        },
    )


async def check(
    session: AsyncSession, *, settings: Settings, admin: Admin, proof: Proof, purpose: str, actor: audit.Actor
) -> DomainError | None:
    """Check the admin's second factor once. `admin` must be locked by the caller (FOR
    UPDATE), which queues concurrent checks of one admin. Returns None when accepted, else
    the refusal; every code checked is recorded and the caller must commit that."""
    field = "recoveryCode" if (proof.recovery_code or "").strip() and not (proof.totp_code or "").strip() else "totpCode"
    if admin.totp_enabled_at is None or admin.totp_secret_encrypted is None:
        return DomainError(field, ErrorCode.SECOND_FACTOR_NOT_ENROLLED, "enroll a second factor first (startTotpEnrollment)")
    if not proof.given:
        return DomainError(
            field, ErrorCode.SECOND_FACTOR_REQUIRED, "a code from your authenticator app (or a recovery code) is required"
        )
    now = current_time()
    if admin.second_factor_locked_until is not None and admin.second_factor_locked_until > now:
        return _locked(admin, field)
    if (proof.totp_code or "").strip():
        method = Method.TOTP
        secret = crypto.keyring(settings).decrypt(admin.totp_secret_encrypted, context=_context(admin.id))
        step = _matching_step(secret, proof.totp_code or "", now)
        reason = "WRONG" if step is None else "ACCEPTED" if await _advance_step(session, admin, step) else "REPLAYED"
    else:
        method = Method.RECOVERY_CODE
        used = await session.execute(
            update(AdminRecoveryCode)
            .where(
                merchant_is(AdminRecoveryCode, admin.merchant_id),
                AdminRecoveryCode.admin_id == admin.id,
                AdminRecoveryCode.code_hash == _recovery_hash(proof.recovery_code or ""),
                AdminRecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
        )
        reason = "ACCEPTED" if changed_rows(used) == 1 else "WRONG"
    session.add(
        SecondFactorAttempt(
            merchant_id=admin.merchant_id,
            admin_id=admin.id,
            session_id=actor.session_id,
            ip=actor.ip,
            method=method.value,
            purpose=purpose,
            accepted=reason == "ACCEPTED",
            reason=reason,
            created_at=now,
        )
    )
    await session.flush()
    if reason == "ACCEPTED":
        return None
    wrong = (
        await session.scalar(
            select(func.count())
            .select_from(SecondFactorAttempt)
            .where(
                merchant_is(SecondFactorAttempt, admin.merchant_id),
                SecondFactorAttempt.admin_id == admin.id,
                SecondFactorAttempt.accepted.is_(False),
                SecondFactorAttempt.created_at > now - WRONG_WINDOW,
            )
        )
        or 0
    )
    if wrong >= MAX_WRONG:
        admin.second_factor_locked_until = now + LOCKED_FOR
        await session.flush()
        await audit.record(
            session,
            merchant_id=admin.merchant_id,
            actor=actor,
            action="admin.second_factor_locked",
            subject_id=admin.id,
            details={"wrong_codes": wrong, "until": admin.second_factor_locked_until.isoformat()},
        )
        return _locked(admin, field)
    message = "this code was already used" if reason == "REPLAYED" else "this code is not right"
    return DomainError(field, ErrorCode.SECOND_FACTOR_INVALID, message)


def _locked(admin: Admin, field: str) -> DomainError:
    until = admin.second_factor_locked_until
    return DomainError(
        field,
        ErrorCode.SECOND_FACTOR_LOCKED,
        f"too many wrong codes: money actions are locked until {until:%Y-%m-%d %H:%M:%S} UTC" if until else "locked",
    )


async def _advance_step(session: AsyncSession, admin: Admin, step: int) -> bool:
    """Accept `step` if it is later than the last accepted one: the UPDATE's condition makes
    this atomic, whatever else runs at the same time."""
    result = await session.execute(
        update(Admin)
        .where(
            merchant_is(Admin, admin.merchant_id),
            Admin.id == admin.id,
            or_(Admin.totp_last_step.is_(None), Admin.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if changed_rows(result) != 1:
        return False
    set_committed_value(admin, "totp_last_step", step)
    return True
