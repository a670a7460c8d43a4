"""Approving payouts: a FINANCE or OWNER admin, in a session, with a second factor.

The approval binds exactly what the approver saw: the payout ids and the total per currency
shown next to them. Amounts, currencies and destinations never change after a request, so
equal totals over the same ids are the same money to the same places; a payout that was
rejected, held, paid or approved since it was shown fails the approval, as does one whose
account is cooling off or whose customer is in fraud review now. Only then is the code
checked (a refused approval spends no code), and only then anything written.

Above the merchant's `dual_approval_minimums`, a payout needs two different approvers: the
first approval is recorded and the payout waits for the second.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money
from app.config import Settings
from app.db import utcnow
from app.errors import DomainError, ErrorCode
from app.merchants import audit, totp
from app.merchants.admins import get_admin
from app.merchants.models import AdminRole, AdminStatus
from app.payouts import accounts, holds
from app.payouts.models import Payout, PayoutAccount, PayoutApproval, PayoutStatus
from app.tenancy import scoped
from app.worker import outbox

MAX_PAYOUTS = 500
APPROVERS = (AdminRole.FINANCE, AdminRole.OWNER)
SEND_JOB = "payouts.send"


@dataclass
class Approval:
    payouts: list[Payout] = field(default_factory=list)
    approved: list[Payout] = field(default_factory=list)  # now APPROVED
    awaiting_second: list[Payout] = field(default_factory=list)  # approved once, a second approver is needed
    replayed: bool = False  # this admin had approved them all already: nothing changed, no code checked
    refused: DomainError | None = None  # the second factor was refused (the attempt is recorded: commit it)


def _ids(values: list[uuid.UUID]) -> list[uuid.UUID]:
    if not values:
        raise DomainError("ids", ErrorCode.REQUIRED, "name the payouts to approve")
    if len(values) > MAX_PAYOUTS:
        raise DomainError("ids", ErrorCode.TOO_MANY, f"at most {MAX_PAYOUTS} payouts per approval")
    if len(set(values)) != len(values):
        raise DomainError("ids", ErrorCode.INVALID_INPUT, "a payout is named twice")
    return sorted(values)


def _totals(expected: dict[str, int]) -> dict[str, int]:
    totals = {}
    for currency, amount in expected.items():
        code = money.currency(currency, "expectedTotals")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise DomainError("expectedTotals", ErrorCode.INVALID_AMOUNT, "totals are whole numbers of minor units")
        if code in totals:
            raise DomainError("expectedTotals", ErrorCode.INVALID_INPUT, f"{code} is given twice")
        totals[code] = amount
    return totals


def _fmt(totals: dict[str, int]) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in sorted(totals.items())) or "nothing"


async def approve(
    session: AsyncSession,
    *,
    settings: Settings,
    merchant_id: uuid.UUID,
    admin_id: uuid.UUID,
    payout_ids: list[uuid.UUID],
    expected_totals: dict[str, int],
    proof: totp.Proof,
    actor: audit.Actor,
) -> Approval:
    ids = _ids(payout_ids)
    expected = _totals(expected_totals)
    admin = await get_admin(session, merchant_id=merchant_id, admin_id=admin_id, lock=True, field="ids")
    if admin.status != AdminStatus.ACTIVE or admin.admin_role not in APPROVERS:
        raise DomainError("ids", ErrorCode.INVALID_INPUT, "only an active FINANCE or OWNER admin approves payouts")
    payouts = list(
        (
            await session.scalars(
                scoped(select(Payout).where(Payout.id.in_(ids)), merchant_id)
                .order_by(Payout.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
    )
    found = {p.id for p in payouts}
    for index, payout_id in enumerate(payout_ids):
        if payout_id not in found:
            raise DomainError(f"ids.{index}", ErrorCode.NOT_FOUND, "payout not found")
    mine = set(
        (
            await session.scalars(
                scoped(
                    select(PayoutApproval.payout_id).where(
                        PayoutApproval.payout_id.in_(ids), PayoutApproval.admin_id == admin.id
                    ),
                    merchant_id,
                )
            )
        ).all()
    )

    shown: dict[str, int] = defaultdict(int)
    for payout in payouts:
        shown[payout.currency] += payout.amount
    if dict(shown) != expected:
        raise DomainError(
            "expectedTotals",
            ErrorCode.PAYOUT_CHANGED,
            f"these payouts total {_fmt(shown)}, not {_fmt(expected)}: show them again before approving",
        )
    if mine == found:
        return Approval(payouts=payouts, replayed=True)
    for payout in payouts:
        where = f"ids.{payout_ids.index(payout.id)}"
        if payout.id in mine:
            raise DomainError(
                where, ErrorCode.ALREADY_APPROVED_BY_YOU, f"you approved {payout.reference} already: a second approver is needed"
            )
        if payout.status == PayoutStatus.ON_HOLD:
            raise DomainError(
                where,
                ErrorCode.PAYOUT_ON_HOLD,
                f"{payout.reference} is on hold: " + "; ".join(h["message"] for h in payout.hold_reasons),
            )
        if payout.status != PayoutStatus.PENDING_APPROVAL:
            raise DomainError(
                where, ErrorCode.PAYOUT_CHANGED, f"{payout.reference} is {payout.status.value} now: show the payouts again"
            )
    now = utcnow()
    destinations = {
        a.id: a
        for a in (
            await session.scalars(
                scoped(select(PayoutAccount).where(PayoutAccount.id.in_({p.payout_account_id for p in payouts})), merchant_id)
            )
        ).all()
    }
    lasting = await holds.evaluate(
        session,
        merchant_id=merchant_id,
        now=now,
        reasons=holds.DYNAMIC,
        subjects=[holds.Subject(p.customer_id, destinations[p.payout_account_id], p.currency) for p in payouts],
    )
    for payout, current in zip(payouts, lasting, strict=True):
        where = f"ids.{payout_ids.index(payout.id)}"
        for hold in current:
            code = ErrorCode.PAYOUT_ACCOUNT_COOLING_OFF if hold.code.value == "COOLING_OFF" else ErrorCode.PAYOUT_ON_HOLD
            raise DomainError(where, code, f"{payout.reference}: {hold.message}")

    refused = await totp.check(session, settings=settings, admin=admin, proof=proof, purpose="approve_payouts", actor=actor)
    if refused is not None:
        return Approval(payouts=payouts, refused=refused)

    minimums = (await accounts.payout_settings(session, merchant_id=merchant_id)).dual_approval_minimums or {}
    counts = dict(
        (
            await session.execute(
                scoped(select(PayoutApproval.payout_id, PayoutApproval.id).where(PayoutApproval.payout_id.in_(ids)), merchant_id)
            )
        ).all()
    )
    result = Approval(payouts=payouts)
    session.add_all(
        [
            PayoutApproval(
                merchant_id=merchant_id, payout_id=p.id, admin_id=admin.id, session_id=actor.session_id, created_at=now
            )
            for p in payouts
        ]
    )
    for payout in payouts:
        minimum = minimums.get(payout.currency)
        payout.approvals_required = 2 if minimum is not None and payout.amount >= minimum else 1
        approvals = 1 + (1 if payout.id in counts else 0)
        payout.updated_at = now
        if approvals >= payout.approvals_required:
            payout.status = PayoutStatus.APPROVED
            payout.approved_at = now
            result.approved.append(payout)
        else:
            result.awaiting_second.append(payout)
    await session.flush()
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="payout.approved",
        details={
            "payouts": [str(p.id) for p in payouts],
            "totals": dict(shown),
            "approved": len(result.approved),
            "awaiting_second_approval": [str(p.id) for p in result.awaiting_second],
        },
    )
    if result.approved:
        await outbox.enqueue(session, SEND_JOB, merchant_id=merchant_id, merchant=merchant_id)
    return result
