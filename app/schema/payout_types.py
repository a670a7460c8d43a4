"""GraphQL types of payouts: accounts (masked), payouts with their holds and approvals,
batches, settings, schedules and runs, statements."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import strawberry

from app.errors import DomainError, ErrorCode
from app.payouts import models, statement
from app.payouts.service import Relations
from app.schema.common import gid
from app.schema.scalars import JSON, BigInt

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
PayoutMethod: TypeAlias = models.PayoutMethod
strawberry.enum(PayoutMethod, name="PayoutMethod")
PayoutStatus: TypeAlias = models.PayoutStatus
strawberry.enum(PayoutStatus, name="PayoutStatus")
HoldReason: TypeAlias = models.HoldReason
strawberry.enum(HoldReason, name="PayoutHoldReason")
PayoutProvider: TypeAlias = models.Provider
strawberry.enum(PayoutProvider, name="PayoutProvider")
PayoutFrequency: TypeAlias = models.Frequency
strawberry.enum(PayoutFrequency, name="PayoutFrequency")


@strawberry.input(description="An amount of minor units in a currency.")
class CurrencyAmountInput:
    currency: str
    amount: BigInt


@strawberry.type
class CurrencyAmount:
    currency: str
    amount: BigInt


def amounts(values: dict[str, int]) -> list[CurrencyAmount]:
    return [CurrencyAmount(currency=c, amount=a) for c, a in sorted(values.items())]


def to_dict(values: list[CurrencyAmountInput] | None, field: str) -> dict[str, int] | None:
    if values is None:
        return None
    found: dict[str, int] = {}
    for index, value in enumerate(values):
        key = value.currency.strip().upper()
        if key in found:
            raise DomainError(f"{field}.{index}", ErrorCode.INVALID_INPUT, f"{key} is given twice")
        found[key] = value.amount
    return found


@strawberry.type(description="Where a customer is paid. Details are stored encrypted and shown masked only.")
class PayoutAccount:
    id: strawberry.ID
    method: PayoutMethod
    custom_type: str | None
    masked: str = strawberry.field(description='e.g. "j•••@example.com", "DE89 ••••3000 (Jane Doe)"')
    cooling_off_until: datetime | None = strawberry.field(description="Payouts to it cannot be approved before then.")
    created_at: datetime

    @classmethod
    def from_model(cls, m: models.PayoutAccount) -> PayoutAccount:
        return cls(
            id=gid(m.id),
            method=models.PayoutMethod(m.method),
            custom_type=m.custom_type,
            masked=m.masked,
            cooling_off_until=m.cooling_off_until,
            created_at=m.created_at,
        )


@strawberry.type(description="Why a payout waits, with the evidence.")
class PayoutHold:
    code: HoldReason
    message: str
    evidence: list[str]
    details: JSON


@strawberry.type
class PayoutApproval:
    admin_id: strawberry.ID
    created_at: datetime


@strawberry.type
class Payout:
    id: strawberry.ID
    reference: str = strawberry.field(description="On batch files and the customer's bank statement.")
    status: PayoutStatus
    amount: BigInt
    currency: str
    customer_external_id: str | None
    account: PayoutAccount | None = strawberry.field(description="The destination it pays to (fixed at the request).")
    hold_reasons: list[PayoutHold]
    approvals_required: int
    approvals: list[PayoutApproval]
    provider: PayoutProvider | None
    batch_id: strawberry.ID | None
    provider_reference: str | None
    note: str | None = strawberry.field(description="Why it was rejected, failed or released.")
    program_id: strawberry.ID | None = strawberry.field(description="The program of the scheduled run that made it.")
    created_at: datetime
    approved_at: datetime | None
    sent_at: datetime | None
    paid_at: datetime | None
    ended_at: datetime | None

    @classmethod
    def from_model(cls, m: models.Payout, rel: Relations) -> Payout:
        account = rel.accounts.get(m.payout_account_id)
        return cls(
            id=gid(m.id),
            reference=m.reference,
            status=m.payout_status,
            amount=m.amount,
            currency=m.currency,
            customer_external_id=rel.external_ids.get(m.customer_id),
            account=PayoutAccount.from_model(account) if account is not None else None,
            hold_reasons=[
                PayoutHold(
                    code=models.HoldReason(h["code"]),
                    message=h["message"],
                    evidence=list(h.get("evidence") or []),
                    details=h.get("details") or {},
                )
                for h in m.hold_reasons or []
            ],
            approvals_required=m.approvals_required,
            approvals=[PayoutApproval(admin_id=gid(a.admin_id), created_at=a.created_at) for a in rel.approvals.get(m.id, [])],
            provider=models.Provider(m.provider) if m.provider else None,
            batch_id=gid(m.batch_id) if m.batch_id else None,
            provider_reference=m.provider_reference,
            note=m.note,
            program_id=gid(m.program_id) if m.program_id else None,
            created_at=m.created_at,
            approved_at=m.approved_at,
            sent_at=m.sent_at,
            paid_at=m.paid_at,
            ended_at=m.ended_at,
        )


@strawberry.type(description="A provider file's worth of payouts (one provider, one currency).")
class PayoutBatch:
    id: strawberry.ID
    provider: PayoutProvider
    currency: str
    payout_count: int
    total: BigInt
    created_at: datetime
    download_count: int = strawberry.field(description="Downloads through signed links.")
    last_downloaded_at: datetime | None
    filename: str | None = None
    csv: str | None = strawberry.field(default=None, description="The file itself (payoutBatch(id) only).")
    download_url: str | None = strawberry.field(default=None, description="A signed link to the file (payoutBatch(id) only).")
    download_url_expires_at: datetime | None = None

    @classmethod
    def from_model(cls, m: models.PayoutBatch, **extra: Any) -> PayoutBatch:
        return cls(
            id=gid(m.id),
            provider=models.Provider(m.provider),
            currency=m.currency,
            payout_count=m.payout_count,
            total=m.total,
            created_at=m.created_at,
            download_count=m.download_count,
            last_downloaded_at=m.last_downloaded_at,
            **extra,
        )


@strawberry.type
class PayoutSettings:
    cooling_off_hours: int = strawberry.field(description="A new or changed payout account waits this long (default 72).")
    dual_approval_minimums: list[CurrencyAmount] = strawberry.field(description="From these amounts, two different approvers.")
    merchant_executes_all: bool = strawberry.field(description="Every payout goes to your webhook (payout.approved), no files.")
    updated_at: datetime | None

    @classmethod
    def from_model(cls, m: models.PayoutSettings) -> PayoutSettings:
        return cls(
            cooling_off_hours=m.cooling_off_hours,
            dual_approval_minimums=amounts(m.dual_approval_minimums or {}),
            merchant_executes_all=m.merchant_executes_all,
            updated_at=m.updated_at,
        )


@strawberry.type
class PayoutSchedule:
    program_id: strawberry.ID
    frequency: PayoutFrequency
    day: int = strawberry.field(description="1 (Monday) to 7 weekly, 1 to 28 monthly; UTC days.")
    minimums: list[CurrencyAmount] = strawberry.field(
        description="Balances from these amounts are paid; other currencies are not."
    )
    enabled: bool
    updated_at: datetime

    @classmethod
    def from_model(cls, m: models.PayoutSchedule) -> PayoutSchedule:
        return cls(
            program_id=gid(m.program_id),
            frequency=models.Frequency(m.frequency),
            day=m.day,
            minimums=amounts(m.minimums),
            enabled=m.enabled,
            updated_at=m.updated_at,
        )


@strawberry.type
class PayoutRun:
    id: strawberry.ID
    period: str
    status: str
    payouts_created: int
    customers_without_account: int = strawberry.field(description="Skipped: they have no payout account yet.")
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_model(cls, m: models.PayoutRun) -> PayoutRun:
        return cls(
            id=gid(m.id),
            period=m.period,
            status=m.status,
            payouts_created=m.payouts_created,
            customers_without_account=m.customers_without_account,
            started_at=m.started_at,
            finished_at=m.finished_at,
        )


@strawberry.type
class StatementBalances:
    held: BigInt
    available: BigInt = strawberry.field(description="Negative after a clawback: it nets against future earnings.")
    payout_pending: BigInt = strawberry.field(description="Set aside for payouts not paid yet.")
    total: BigInt


@strawberry.type(description="One currency's ledger view of the period; the totals come from the ledger entries.")
class StatementTotals:
    currency: str
    opening: StatementBalances
    closing: StatementBalances
    earned: BigInt
    voided: BigInt
    reversed: BigInt
    paid_out: BigInt
    returned: BigInt = strawberry.field(description="Payments that came back after they were marked paid.")
    reconciles: bool = strawberry.field(description="opening + earned - voided - reversed - paidOut + returned = closing")


@strawberry.type
class StatementRefund:
    action_id: strawberry.ID
    type: str
    order_id: str | None
    amount: BigInt | None
    currency: str | None
    occurred_at: datetime


@strawberry.type
class StatementMovement:
    kind: str = strawberry.field(description="VOID (while held) or REVERSAL (after it was available)")
    amount: BigInt
    at: datetime


@strawberry.type
class StatementPaidPart:
    payout_id: strawberry.ID
    reference: str
    status: PayoutStatus
    amount: BigInt


@strawberry.type(description="A commission reward and what happened to it.")
class StatementReward:
    reward_id: strawberry.ID
    program_id: strawberry.ID
    referral_id: strawberry.ID | None
    status: str
    amount: BigInt
    reversed_amount: BigInt
    remaining: BigInt = strawberry.field(description="Still available to pay out.")
    currency: str
    granted_at: datetime
    available_at: datetime | None
    order_id: str | None
    held_because: str | None = strawberry.field(description="HOLD_PERIOD (the refund window) or FRAUD_REVIEW, while HELD.")
    held_until: datetime | None
    review_id: strawberry.ID | None
    end_reason: str | None
    reversals: list[StatementMovement]
    refunds: list[StatementRefund] = strawberry.field(description="Refunds and cancellations of the order that earned it.")
    paid: list[StatementPaidPart] = strawberry.field(description="The payouts that took (part of) it.")

    @classmethod
    def from_domain(cls, line: statement.RewardLine) -> StatementReward:
        r = line.reward
        return cls(
            reward_id=gid(r.id),
            program_id=gid(r.program_id),
            referral_id=gid(r.referral_id) if r.referral_id else None,
            status=r.status.value,
            amount=r.amount,
            reversed_amount=r.reversed_amount,
            remaining=r.remaining,
            currency=r.unit,
            granted_at=line.granted_at,
            available_at=r.available_at,
            order_id=line.order_id,
            held_because=line.held_because,
            held_until=line.held_until,
            review_id=gid(line.review_id) if line.review_id else None,
            end_reason=r.end_reason,
            reversals=[StatementMovement(kind=m.kind, amount=m.amount, at=m.at) for m in line.reversals],
            refunds=[
                StatementRefund(
                    action_id=gid(f.action_id),
                    type=f.type,
                    order_id=f.order_id,
                    amount=f.amount,
                    currency=f.currency,
                    occurred_at=f.occurred_at,
                )
                for f in line.refunds
            ],
            paid=[
                StatementPaidPart(
                    payout_id=gid(p.payout_id), reference=p.reference, status=models.PayoutStatus(p.status), amount=p.amount
                )
                for p in line.paid
            ],
        )


@strawberry.type(description="Everything about a customer's commission in a period, reconciled with the ledger.")
class PayoutStatement:
    customer_external_id: str
    from_: datetime = strawberry.field(name="from")
    to: datetime
    rewards: list[StatementReward]
    payouts: list[Payout]
    totals: list[StatementTotals]
    truncated: bool = strawberry.field(description="More than 1,000 rewards: narrow the period.")

    @classmethod
    def from_domain(cls, s: statement.Statement, rel: Relations) -> PayoutStatement:
        def balances(b: statement.Balances) -> StatementBalances:
            return StatementBalances(held=b.held, available=b.available, payout_pending=b.payout_pending, total=b.total)

        return cls(
            customer_external_id=s.customer.external_id,
            from_=s.start,
            to=s.end,
            rewards=[StatementReward.from_domain(line) for line in s.rewards],
            payouts=[Payout.from_model(p, rel) for p in s.payouts],
            totals=[
                StatementTotals(
                    currency=t.currency,
                    opening=balances(t.opening),
                    closing=balances(t.closing),
                    earned=t.earned,
                    voided=t.voided,
                    reversed=t.reversed,
                    paid_out=t.paid_out,
                    returned=t.returned,
                    reconciles=t.reconciles,
                )
                for t in s.totals
            ],
            truncated=s.truncated,
        )
