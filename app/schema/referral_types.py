"""GraphQL types of the referrals domain: programs, customers, codes, referrals and actions.
Each is built from a domain model by `from_model`; relations resolve through the request's DataLoaders.
Rewards and fraud decisions are types of modules that import this one: the fields that list them
refer to them lazily."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app.personal import opened
from app.referrals import codes as code_service
from app.referrals import models, queries
from app.rewards import queries as reward_queries
from app.schema.common import Money, UnitAmount, gid
from app.schema.context import loaded_or_later
from app.schema.pagination import Connection, to_connection
from app.schema.permissions import SecretKeyOrAdmin
from app.schema.scalars import JSON
from app.schema.transactions import query

if TYPE_CHECKING:  # resolved lazily by strawberry: reward_types and fraud_types import this module
    from app.schema.fraud_types import FraudDecision
    from app.schema.reward_types import Balance, LedgerEntry, Reward

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
ProgramStatus: TypeAlias = models.ProgramStatus
strawberry.enum(ProgramStatus, name="ProgramStatus")
CodeStyle: TypeAlias = models.CodeStyle
strawberry.enum(CodeStyle, name="CodeStyle")
ProgramType: TypeAlias = models.ProgramType
strawberry.enum(ProgramType, name="ProgramType")
ReferralSource: TypeAlias = models.ReferralSource
strawberry.enum(ReferralSource, name="ReferralSource")
ReferralStatus: TypeAlias = models.ReferralStatus
strawberry.enum(ReferralStatus, name="ReferralStatus")
AttributionStatus: TypeAlias = models.AttributionStatus
strawberry.enum(AttributionStatus, name="AttributionStatus")


@strawberry.type
class Program:
    id: strawberry.ID
    name: str
    status: ProgramStatus
    attribution_window_days: int
    claim_window_days: int = strawberry.field(
        description="Days after signup during which a referee may claim a code; 0 disables claims."
    )
    share_url_template: str | None
    code_style: CodeStyle
    code_length: int
    program_type: ProgramType
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: models.Program) -> Program:
        return cls(
            id=gid(m.id),
            name=m.name,
            status=m.program_status,
            attribution_window_days=m.attribution_window_days,
            claim_window_days=m.claim_window_days,
            share_url_template=m.share_url_template,
            code_style=models.CodeStyle(m.code_style),
            code_length=m.code_length,
            program_type=models.ProgramType(m.program_type),
            created_at=m.created_at,
            updated_at=m.updated_at,
        )

    @strawberry.field(
        description=("What fraud flags arriving after the money moved could not take back, per unit (see Referral.leakedAmount).")
    )
    async def leaked_amount(self, info: Info) -> list[UnitAmount]:
        async def work(session: AsyncSession) -> list[UnitAmount]:
            rows = await reward_queries.leaked_amounts(
                session, merchant_id=info.context.merchant_id, program_id=uuid.UUID(self.id)
            )
            return [UnitAmount(amount=amount, unit=unit) for unit, amount in rows]

        return await query(info, work)


@strawberry.type
class Customer:
    id: strawberry.ID
    external_id: str
    created_at: datetime
    erased_at: datetime | None = strawberry.field(description="When the customer was erased: externalId is then their pseudonym.")
    # The personal columns as read: plain from an ORM object, `Sealed` from a record (a page's
    # customers), opened only by the fields below when the query asks for them.
    stored_email: strawberry.Private[Any]
    stored_email_canonical: strawberry.Private[Any]
    stored_name: strawberry.Private[Any]
    stored_metadata: strawberry.Private[Any]

    @classmethod
    def from_model(cls, m: models.Customer | models.CustomerRecord) -> Customer:
        return cls(
            id=gid(m.id),
            external_id=m.external_id,
            created_at=m.created_at,
            erased_at=m.erased_at,
            stored_email=m.email,
            stored_email_canonical=m.email_canonical,
            stored_name=m.name,
            stored_metadata=m.metadata_,
        )

    @strawberry.field
    def email(self) -> str | None:
        return opened(self.stored_email)

    @strawberry.field(description="The mailbox behind aliases (dots and +tags folded).")
    def email_canonical(self) -> str | None:
        return opened(self.stored_email_canonical)

    @strawberry.field
    def name(self) -> str | None:
        return opened(self.stored_name)

    @strawberry.field
    def metadata(self) -> JSON | None:
        return opened(self.stored_metadata)

    @strawberry.field(description="The customer's codes in every program, active or not.")
    async def referral_codes(self, info: Info) -> list[ReferralCode]:
        rows = await info.context.get_loaders().codes_by_customer.load(uuid.UUID(self.id))
        return [ReferralCode.from_model(row) for row in rows]

    @strawberry.field(description="Referrals this customer made as the referrer, newest first.")
    async def referrals(self, info: Info, first: int | None = 20, after: str | None = None) -> Connection[Referral]:
        async def work(session: AsyncSession) -> Connection[Referral]:
            page = await queries.list_referrals(
                session, merchant_id=info.context.merchant_id, referrer_id=uuid.UUID(self.id), first=first, after=after
            )
            return to_connection(page, Referral.from_model)

        return await query(info, work)

    @strawberry.field(description="Credit, points and commission balances, per unit.")
    async def balances(self, info: Info) -> list[Annotated[Balance, strawberry.lazy("app.schema.reward_types")]]:
        from app.schema.reward_types import Balance

        async def work(session: AsyncSession) -> list[Annotated[Balance, strawberry.lazy("app.schema.reward_types")]]:
            rows = await reward_queries.balances(session, merchant_id=info.context.merchant_id, customer_id=uuid.UUID(self.id))
            return [Balance.from_domain(b) for b in rows]

        return await query(info, work)

    @strawberry.field(description="Rewards this customer received, newest first.")
    async def rewards(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Annotated[Reward, strawberry.lazy("app.schema.reward_types")]]:
        from app.schema.reward_types import Reward

        async def work(session: AsyncSession) -> Connection[Annotated[Reward, strawberry.lazy("app.schema.reward_types")]]:
            page = await reward_queries.list_rewards(
                session, merchant_id=info.context.merchant_id, customer_id=uuid.UUID(self.id), first=first, after=after
            )
            return to_connection(page, Reward.from_model)

        return await query(info, work)

    @strawberry.field(description="The customer's ledger entries, newest first.")
    async def ledger_entries(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Annotated[LedgerEntry, strawberry.lazy("app.schema.reward_types")]]:
        from app.schema.reward_types import LedgerEntry

        async def work(session: AsyncSession) -> Connection[Annotated[LedgerEntry, strawberry.lazy("app.schema.reward_types")]]:
            merchant_id = info.context.merchant_id
            page = await reward_queries.list_ledger_entries(
                session, merchant_id=merchant_id, customer_id=uuid.UUID(self.id), first=first, after=after
            )
            accounts = {
                a.id: a.account_type.value
                for a in await reward_queries.get_accounts_by_ids(
                    session, merchant_id=merchant_id, ids=list({e.account_id for e in page.items})
                )
            }
            return to_connection(page, lambda e: LedgerEntry.from_model(e, accounts[e.account_id]))

        return await query(info, work)

    @strawberry.field(description="Referrals in which this customer is the referee (at most one per program).")
    async def referred_by(self, info: Info) -> list[Referral]:
        rows = await info.context.get_loaders().referrals_by_referee.load(uuid.UUID(self.id))
        return [Referral.from_model(row) for row in rows]


@strawberry.type
class ReferralCode:
    id: strawberry.ID
    code: str
    active: bool
    is_vanity: bool
    created_at: datetime
    deactivated_at: datetime | None
    program_id: strawberry.Private[uuid.UUID]
    customer_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, m: models.ReferralCode) -> ReferralCode:
        return cls(
            id=gid(m.id),
            code=m.code,
            active=m.active,
            is_vanity=m.is_vanity,
            created_at=m.created_at,
            deactivated_at=m.deactivated_at,
            program_id=m.program_id,
            customer_id=m.customer_id,
        )

    @strawberry.field(description="The link to share, from the program's share URL template.")
    def share_url(self, info: Info) -> str | None:
        return loaded_or_later(info.context.get_loaders().program, self.program_id, self._share_url)

    def _share_url(self, program: models.Program | None) -> str | None:
        return code_service.share_url(program, self.code) if program else None

    @strawberry.field
    def program(self, info: Info) -> Program:
        return loaded_or_later(info.context.get_loaders().program, self.program_id, Program.from_model)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="The referrer. Not with a publishable key.")
    async def customer(self, info: Info) -> Customer:
        return Customer.from_model(await info.context.get_loaders().customer.load(self.customer_id))


@strawberry.type
class Referral:
    id: strawberry.ID
    source: ReferralSource
    status: ReferralStatus
    created_at: datetime
    referred_at: datetime = strawberry.field(
        description="When the referee arrived (the creating action's occurredAt, or the claim)."
    )
    qualified_at: datetime | None
    cleared_at: datetime | None = strawberry.field(
        description="When it was cleared: screened ALLOW after the evidence the program requires; its rewards may be spent."
    )
    program_id: strawberry.Private[uuid.UUID]
    referrer_id: strawberry.Private[uuid.UUID]
    referee_id: strawberry.Private[uuid.UUID]
    code_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, m: models.Referral | models.ReferralRecord) -> Referral:
        return cls(
            id=gid(m.id),
            source=models.ReferralSource(m.source),
            status=models.ReferralStatus(m.status),
            created_at=m.created_at,
            referred_at=m.referred_at,
            qualified_at=m.qualified_at,
            cleared_at=m.cleared_at,
            program_id=m.program_id,
            referrer_id=m.referrer_id,
            referee_id=m.referee_id,
            code_id=m.code_id,
        )

    # Answered at once when the list resolver preloaded them (`loaded_or_later`), else batched.
    @strawberry.field
    def program(self, info: Info) -> Program:
        return loaded_or_later(info.context.get_loaders().program, self.program_id, Program.from_model)

    @strawberry.field
    def referrer(self, info: Info) -> Customer:
        return loaded_or_later(info.context.get_loaders().customer, self.referrer_id, Customer.from_model)

    @strawberry.field
    def referee(self, info: Info) -> Customer:
        return loaded_or_later(info.context.get_loaders().customer, self.referee_id, Customer.from_model)

    @strawberry.field
    def code(self, info: Info) -> ReferralCode:
        return loaded_or_later(info.context.get_loaders().referral_code, self.code_id, ReferralCode.from_model)

    @strawberry.field(description="Rewards granted for this referral, to the referrer and the referee.")
    async def rewards(self, info: Info) -> list[Annotated[Reward, strawberry.lazy("app.schema.reward_types")]]:
        from app.schema.reward_types import Reward

        rows = await info.context.get_loaders().rewards_by_referral.load(uuid.UUID(self.id))
        return [Reward.from_model(row) for row in rows]

    @strawberry.field(
        description=(
            "What was spent, paid out or used of this referral's rewards before a fraud flag took them back, per unit: "
            "not recovered (owed by the customer at best)."
        )
    )
    async def leaked_amount(self, info: Info) -> list[UnitAmount]:
        rows = await info.context.get_loaders().rewards_by_referral.load(uuid.UUID(self.id))
        return [UnitAmount(amount=amount, unit=unit) for unit, amount in reward_queries.leaked_by_unit(rows)]

    @strawberry.field(description="Fraud checks of this referral with their evidence, oldest first.")
    async def fraud_decisions(self, info: Info) -> list[Annotated[FraudDecision, strawberry.lazy("app.schema.fraud_types")]]:
        from app.schema.fraud_types import FraudDecision

        rows = await info.context.get_loaders().fraud_decisions_by_referral.load(uuid.UUID(self.id))
        return [FraudDecision.from_model(row) for row in rows]

    @strawberry.field(description="The referee's actions attributed to this referral, oldest first.")
    async def actions(self, info: Info) -> list[Action]:
        rows = await info.context.get_loaders().actions_by_referral.load(uuid.UUID(self.id))
        return [Action.from_model(row) for row in rows]


@strawberry.type
class Action:
    id: strawberry.ID
    type: str
    idempotency_key: str
    amount: Money | None
    order_id: str | None
    occurred_at: datetime
    created_at: datetime
    attribution: AttributionStatus = strawberry.field(description="What became of the referral code or token the action carried.")
    metadata: JSON | None
    customer_id: strawberry.Private[uuid.UUID]
    referral_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_model(cls, m: models.Action) -> Action:
        return cls(
            id=gid(m.id),
            type=m.type,
            idempotency_key=m.idempotency_key,
            amount=Money(amount=m.amount, currency=m.currency) if m.currency and m.amount is not None else None,
            order_id=m.order_id,
            occurred_at=m.occurred_at,
            created_at=m.created_at,
            attribution=models.AttributionStatus(m.attribution_status),
            metadata=m.metadata_,
            customer_id=m.customer_id,
            referral_id=m.referral_id,
        )

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        return Customer.from_model(await info.context.get_loaders().customer.load(self.customer_id))

    @strawberry.field
    async def referral(self, info: Info) -> Referral | None:
        if self.referral_id is None:
            return None
        return Referral.from_model(await info.context.get_loaders().referral.load(self.referral_id))
