"""Payouts over GraphQL: accounts, requests, approvals (session + second factor), holds,
providers' batch files, settings and schedules, statements."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.merchants import totp
from app.payouts import accounts, approvals, downloads, providers, runs, service, statement
from app.payouts.models import Payout as PayoutModel
from app.schema.auth import admin_of
from app.schema.errors import UserError, not_found
from app.schema.pagination import Connection, to_connection
from app.schema.payout_types import (
    CurrencyAmountInput,
    Payout,
    PayoutAccount,
    PayoutBatch,
    PayoutFrequency,
    PayoutMethod,
    PayoutRun,
    PayoutSchedule,
    PayoutSettings,
    PayoutStatement,
    PayoutStatus,
    to_dict,
)
from app.schema.permissions import Finance, HoldReleaser, Owner, SecretKey, SecretKeyOrAdmin, SecretKeyOrFinance
from app.schema.scalars import JSON, BigInt
from app.schema.transactions import mutate, query


@strawberry.input(
    description="Where to pay a customer. PAYPAL: paypalEmail. BANK_TRANSFER: iban and holderName. "
    "STORE_CREDIT: nothing. CUSTOM: customType and customDetails (a `destination` key, if any, "
    "is what makes two accounts the same)."
)
class PayoutAccountInput:
    customer_external_id: str
    method: PayoutMethod
    paypal_email: str | None = None
    iban: str | None = None
    holder_name: str | None = None
    custom_type: str | None = None
    custom_details: JSON | None = None


@strawberry.input
class RequestPayoutInput:
    customer_external_id: str
    currency: str
    amount: BigInt | None = strawberry.field(default=None, description="Minor units; leave out for the whole available balance.")
    idempotency_key: str


@strawberry.input
class PayoutSettingsInput:
    cooling_off_hours: int | None = None
    dual_approval_minimums: list[CurrencyAmountInput] | None = None
    merchant_executes_all: bool | None = None


@strawberry.input
class PayoutScheduleInput:
    frequency: PayoutFrequency
    day: int
    minimums: list[CurrencyAmountInput]
    enabled: bool = True


@strawberry.type
class PayoutAccountPayload:
    account: PayoutAccount | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PayoutPayload:
    payout: Payout | None = None
    replayed: bool = strawberry.field(default=False, description="A retry: the first result, nothing changed.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ApprovePayoutsPayload:
    payouts: list[Payout] = strawberry.field(default_factory=list)
    approved_count: int = 0
    awaiting_second_approval_count: int = 0
    replayed: bool = strawberry.field(default=False, description="You had approved them all already: nothing changed.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PayoutSettingsPayload:
    settings: PayoutSettings | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PayoutSchedulePayload:
    schedule: PayoutSchedule | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _id(value: strawberry.ID | str, field: str) -> uuid.UUID:
    return validation.parse_id(value, field)


async def _payouts(session: AsyncSession, info: Info, rows: list[PayoutModel]) -> list[Payout]:
    rel = await service.relations(session, merchant_id=info.context.merchant_id, payouts=list(rows))
    return [Payout.from_model(p, rel) for p in rows]


async def _payload(session: AsyncSession, info: Info, changed: service.Changed | service.Requested) -> PayoutPayload:
    [payout] = await _payouts(session, info, [changed.payout])
    return PayoutPayload(payout=payout, replayed=changed.replayed)


@strawberry.type
class PayoutQuery:
    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="The customer's current payout account (masked).")
    async def payout_account(self, info: Info, customer_external_id: str) -> PayoutAccount | None:
        async def work(session: AsyncSession) -> PayoutAccount | None:
            _, account = await accounts.account_of(
                session, merchant_id=info.context.merchant_id, customer_external_id=customer_external_id
            )
            return PayoutAccount.from_model(account) if account is not None else None

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="Newest first.")
    async def payouts(
        self,
        info: Info,
        status: PayoutStatus | None = None,
        customer_external_id: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Payout]:
        async def work(session: AsyncSession) -> Connection[Payout]:
            page = await service.list_payouts(
                session,
                merchant_id=info.context.merchant_id,
                status=status,
                customer_external_id=customer_external_id,
                first=first,
                after=after,
            )
            converted = dict(zip([p.id for p in page.items], await _payouts(session, info, page.items), strict=True))
            return to_connection(page, lambda p: converted[p.id])

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin])
    async def payout(self, info: Info, id: strawberry.ID) -> Payout | None:
        async def work(session: AsyncSession) -> Payout | None:
            found = await service.payouts_by_ids(session, merchant_id=info.context.merchant_id, ids=[_id(id, "id")])
            if not found:
                raise not_found("payout")
            return (await _payouts(session, info, found))[0]

        return await query(info, work)

    @strawberry.field(permission_classes=[Finance], description="Batch files: newest first.")
    async def payout_batches(self, info: Info, first: int | None = 20, after: str | None = None) -> Connection[PayoutBatch]:
        async def work(session: AsyncSession) -> Connection[PayoutBatch]:
            page = await providers.list_batches(session, merchant_id=info.context.merchant_id, first=first, after=after)
            return to_connection(page, PayoutBatch.from_model)

        return await query(info, work)

    @strawberry.field(
        permission_classes=[Finance],
        description="A batch with its file (PayPal Payouts or Wise batch CSV) and a signed, expiring download link.",
    )
    async def payout_batch(self, info: Info, id: strawberry.ID) -> PayoutBatch | None:
        async def work(session: AsyncSession) -> PayoutBatch | None:
            batch = await providers.get_batch(session, merchant_id=info.context.merchant_id, batch_id=_id(id, "id"))
            file = await providers.batch_file(
                session, settings=info.context.settings, merchant_id=info.context.merchant_id, batch_id=batch.id
            )
            url, expires_at = downloads.signed_url(info.context.settings, batch)
            return PayoutBatch.from_model(
                batch, filename=file.filename, csv=file.content, download_url=url, download_url_expires_at=expires_at
            )

        return await query(info, work)

    @strawberry.field(
        permission_classes=[SecretKeyOrAdmin],
        description="A customer's commission in a period: rewards and what became of them, payouts, ledger totals.",
    )
    async def payout_statement(
        self,
        info: Info,
        customer_external_id: str,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> PayoutStatement:
        async def work(session: AsyncSession) -> PayoutStatement:
            found = await statement.statement(
                session, merchant_id=info.context.merchant_id, customer_external_id=customer_external_id, start=from_, end=to
            )
            rel = await service.relations(session, merchant_id=info.context.merchant_id, payouts=found.payouts)
            return PayoutStatement.from_domain(found, rel)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin])
    async def payout_settings(self, info: Info) -> PayoutSettings:
        async def work(session: AsyncSession) -> PayoutSettings:
            return PayoutSettings.from_model(await accounts.payout_settings(session, merchant_id=info.context.merchant_id))

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="The program's scheduled payout run, if any.")
    async def payout_schedule(self, info: Info, program_id: strawberry.ID) -> PayoutSchedule | None:
        async def work(session: AsyncSession) -> PayoutSchedule | None:
            found = await runs.get_schedule(
                session, merchant_id=info.context.merchant_id, program_id=_id(program_id, "programId")
            )
            return PayoutSchedule.from_model(found) if found is not None else None

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="The program's scheduled runs, newest first.")
    async def payout_runs(self, info: Info, program_id: strawberry.ID) -> list[PayoutRun]:
        async def work(session: AsyncSession) -> list[PayoutRun]:
            found = await runs.list_runs(session, merchant_id=info.context.merchant_id, program_id=_id(program_id, "programId"))
            return [PayoutRun.from_model(r) for r in found]

        return await query(info, work)


@strawberry.type
class PayoutMutation:
    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="A new or changed destination cools off (payoutSettings.coolingOffHours) and is announced (payout_account.changed).",
    )
    async def set_payout_account(self, info: Info, input: PayoutAccountInput) -> PayoutAccountPayload:
        async def work(session: AsyncSession) -> PayoutAccountPayload:
            account = await accounts.set_account(
                session,
                settings=info.context.settings,
                merchant_id=info.context.merchant_id,
                customer_external_id=input.customer_external_id,
                actor=info.context.actor,
                data=accounts.AccountInput(
                    method=input.method,
                    paypal_email=input.paypal_email,
                    iban=input.iban,
                    holder_name=input.holder_name,
                    custom_type=input.custom_type,
                    custom_details=input.custom_details,
                ),
            )
            return PayoutAccountPayload(account=PayoutAccount.from_model(account))

        return await mutate(info, PayoutAccountPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="Set the available commission aside for a payout (PENDING_APPROVAL, or ON_HOLD with the reasons).",
    )
    async def request_payout(self, info: Info, input: RequestPayoutInput) -> PayoutPayload:
        async def work(session: AsyncSession) -> PayoutPayload:
            requested = await service.request_payout(
                session,
                merchant_id=info.context.merchant_id,
                customer_external_id=input.customer_external_id,
                currency=input.currency,
                amount=input.amount,
                idempotency_key=input.idempotency_key,
                actor=info.context.actor,
            )
            return await _payload(session, info, requested)

        return await mutate(info, PayoutPayload, work)

    @strawberry.mutation(
        permission_classes=[Finance],
        description="Approve exactly these payouts, totalling expectedTotals per currency (what you were shown), with a "
        "code from your authenticator app (or a recovery code). FINANCE or OWNER session only.",
    )
    async def approve_payouts(
        self,
        info: Info,
        ids: list[strawberry.ID],
        expected_totals: list[CurrencyAmountInput],
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> ApprovePayoutsPayload:
        async def work(session: AsyncSession) -> ApprovePayoutsPayload:
            caller = admin_of(info.context)
            result = await approvals.approve(
                session,
                settings=info.context.settings,
                merchant_id=caller.merchant_id,
                admin_id=caller.admin_id,
                payout_ids=[_id(value, f"ids.{n}") for n, value in enumerate(ids)],
                expected_totals=to_dict(expected_totals, "expectedTotals") or {},
                proof=totp.Proof(totp_code=totp_code, recovery_code=recovery_code),
                actor=info.context.actor,
            )
            if result.refused is not None:  # committed: a wrong code counts toward the lockout
                return ApprovePayoutsPayload(user_errors=[UserError.from_domain(result.refused)])
            return ApprovePayoutsPayload(
                payouts=await _payouts(session, info, result.payouts),
                approved_count=len(result.approved),
                awaiting_second_approval_count=len(result.awaiting_second),
                replayed=result.replayed,
            )

        return await mutate(info, ApprovePayoutsPayload, work)

    @strawberry.mutation(permission_classes=[SecretKeyOrFinance], description="Not paying it: the funds return to the balance.")
    async def reject_payout(self, info: Info, id: strawberry.ID, reason: str) -> PayoutPayload:
        async def work(session: AsyncSession) -> PayoutPayload:
            changed = await service.reject(
                session, merchant_id=info.context.merchant_id, payout_id=_id(id, "id"), reason=reason, actor=info.context.actor
            )
            return await _payload(session, info, changed)

        return await mutate(info, PayoutPayload, work)

    @strawberry.mutation(permission_classes=[SecretKeyOrFinance], description="The provider paid it. Idempotent.")
    async def mark_payout_paid(self, info: Info, id: strawberry.ID, provider_reference: str) -> PayoutPayload:
        async def work(session: AsyncSession) -> PayoutPayload:
            changed = await service.mark_paid(
                session,
                merchant_id=info.context.merchant_id,
                payout_id=_id(id, "id"),
                provider_reference=provider_reference,
                actor=info.context.actor,
            )
            return await _payload(session, info, changed)

        return await mutate(info, PayoutPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKeyOrFinance],
        description="The provider could not pay it, or the payment came back: the funds return to the balance. Idempotent.",
    )
    async def mark_payout_failed(self, info: Info, id: strawberry.ID, reason: str) -> PayoutPayload:
        async def work(session: AsyncSession) -> PayoutPayload:
            changed = await service.mark_failed(
                session, merchant_id=info.context.merchant_id, payout_id=_id(id, "id"), reason=reason, actor=info.context.actor
            )
            return await _payload(session, info, changed)

        return await mutate(info, PayoutPayload, work)

    @strawberry.mutation(
        permission_classes=[HoldReleaser],
        description="You looked at the evidence: the payout may be approved. Not while a review is open or the account cools off.",
    )
    async def release_payout_hold(self, info: Info, id: strawberry.ID, note: str) -> PayoutPayload:
        async def work(session: AsyncSession) -> PayoutPayload:
            changed = await service.release_hold(
                session, merchant_id=info.context.merchant_id, payout_id=_id(id, "id"), note=note, actor=info.context.actor
            )
            return await _payload(session, info, changed)

        return await mutate(info, PayoutPayload, work)

    @strawberry.mutation(permission_classes=[Owner], description="The merchant's payout controls (OWNER session; audited).")
    async def set_payout_settings(self, info: Info, input: PayoutSettingsInput) -> PayoutSettingsPayload:
        async def work(session: AsyncSession) -> PayoutSettingsPayload:
            row = await accounts.set_payout_settings(
                session,
                merchant_id=info.context.merchant_id,
                cooling_off_hours=input.cooling_off_hours,
                dual_approval_minimums=to_dict(input.dual_approval_minimums, "dualApprovalMinimums"),
                merchant_executes_all=input.merchant_executes_all,
                actor=info.context.actor,
            )
            return PayoutSettingsPayload(settings=PayoutSettings.from_model(row))

        return await mutate(info, PayoutSettingsPayload, work)

    @strawberry.mutation(permission_classes=[SecretKeyOrAdmin], description="The program's scheduled payout run.")
    async def set_payout_schedule(
        self, info: Info, program_id: strawberry.ID, input: PayoutScheduleInput
    ) -> PayoutSchedulePayload:
        async def work(session: AsyncSession) -> PayoutSchedulePayload:
            schedule = await runs.set_schedule(
                session,
                merchant_id=info.context.merchant_id,
                program_id=_id(program_id, "programId"),
                frequency=input.frequency,
                day=input.day,
                minimums=to_dict(input.minimums, "minimums") or {},
                enabled=input.enabled,
                actor=info.context.actor,
            )
            return PayoutSchedulePayload(schedule=PayoutSchedule.from_model(schedule))

        return await mutate(info, PayoutSchedulePayload, work)
