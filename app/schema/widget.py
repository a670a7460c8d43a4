"""The widget: the share panel's session (publishable key + signed customer) and the
merchant's widget settings (secret key)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.referrals.models import Program
from app.rewards.queries import RewardTotal
from app.schema.common import gid
from app.schema.errors import UserError
from app.schema.permissions import AnyKey, SecretKey
from app.schema.reward_types import RewardKind
from app.schema.scalars import BigInt
from app.schema.transactions import mutate, query
from app.widget import models, panel, service
from app.widget.identity import SignedCustomer


@strawberry.type(description="A program's widget texts in one locale.")
class WidgetText:
    locale: str = strawberry.field(description='A language tag: "en", "ar", "fa", "pt-BR"...')
    title: str | None
    description: str | None
    share_message: str | None = strawberry.field(description="Prefilled text of shares by email, WhatsApp, Telegram and X.")


@strawberry.type(description="Colours as #rrggbb; unset ones use the widget's defaults.")
class WidgetColors:
    primary: str | None = strawberry.field(description="Buttons and links (text on them is black or white, for contrast).")
    background: str | None
    text: str | None


@strawberry.type(description="What the share panel shows of a program. Public: readable with the publishable key.")
class WidgetProgram:
    id: strawberry.ID
    name: str
    texts: list[WidgetText]
    colors: WidgetColors

    @classmethod
    def of(cls, program: Program, widget: models.ProgramWidget | None) -> WidgetProgram:
        texts = widget.texts if widget else {}
        colors = widget.colors if widget else {}
        return cls(
            id=gid(program.id),
            name=program.name,
            texts=[
                WidgetText(
                    locale=locale, title=t.get("title"), description=t.get("description"), share_message=t.get("shareMessage")
                )
                for locale, t in sorted(texts.items())
            ],
            colors=WidgetColors(primary=colors.get("primary"), background=colors.get("background"), text=colors.get("text")),
        )


@strawberry.type(description="A customer's rewards of one kind and unit in the program.")
class WidgetRewardTotal:
    kind: RewardKind
    unit: str = strawberry.field(description="ISO 4217 currency, POINTS, or PERCENT (discount coupons: see count).")
    count: int
    earned: BigInt = strawberry.field(description="Reached the customer (minor units or points), less clawbacks.")
    pending: BigInt = strawberry.field(description="Still held (refund window or a check).")

    @classmethod
    def of(cls, total: RewardTotal) -> WidgetRewardTotal:
        return cls(kind=total.kind, unit=total.unit, count=total.count, earned=total.earned, pending=total.pending)


@strawberry.type(description="The share panel of one signed-in customer.")
class WidgetSession:
    code: str
    share_url: str | None
    successful_referrals: int = strawberry.field(description="Referred customers who bought or subscribed.")
    pending_referrals: int = strawberry.field(description="Referred customers who signed up and have not bought yet.")
    rewards: list[WidgetRewardTotal]
    program: WidgetProgram
    expires_at: datetime = strawberry.field(description="The signature is accepted until then (24 hours after it was made).")


@strawberry.type
class WidgetSessionPayload:
    session: WidgetSession | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="Browser access and customer signing for the widget.")
class WidgetSettings:
    allowed_origins: list[str] = strawberry.field(
        description="Origins whose pages may call the API with the publishable key (CORS)."
    )
    secret_configured: bool
    secret_last4: str | None
    secret_created_at: datetime | None
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="After a rotation, the old secret also verifies until then."
    )

    @classmethod
    def of(cls, m: models.WidgetSettings | None) -> WidgetSettings:
        if m is None:
            return cls(
                allowed_origins=[],
                secret_configured=False,
                secret_last4=None,
                secret_created_at=None,
                previous_secret_expires_at=None,
            )
        return cls(
            allowed_origins=list(m.allowed_origins or []),
            secret_configured=m.secret_encrypted is not None,
            secret_last4=m.secret_last4,
            secret_created_at=m.secret_created_at,
            previous_secret_expires_at=m.previous_secret_expires_at,
        )


@strawberry.type
class WidgetSettingsPayload:
    settings: WidgetSettings | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WidgetSecretPayload:
    settings: WidgetSettings | None = None
    secret: str | None = strawberry.field(default=None, description='"wsec_...": shown this once; keep it on your server.')
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class WidgetTextInput:
    locale: str
    title: str | None = strawberry.field(default=None, description="Up to 80 characters.")
    description: str | None = strawberry.field(default=None, description="Up to 300 characters.")
    share_message: str | None = strawberry.field(default=None, description="Up to 280 characters.")


@strawberry.input
class WidgetColorsInput:
    primary: str | None = None
    background: str | None = None
    text: str | None = None


@strawberry.input
class ProgramWidgetInput:
    texts: list[WidgetTextInput] = strawberry.field(default_factory=list, description="Replaces all texts.")
    colors: WidgetColorsInput | None = None


@strawberry.type
class ProgramWidgetPayload:
    widget: WidgetProgram | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WidgetQuery:
    @strawberry.field(permission_classes=[SecretKey])
    async def widget_settings(self, info: Info) -> WidgetSettings:
        async def work(session: AsyncSession) -> WidgetSettings:
            return WidgetSettings.of(await service.get_settings(session, merchant_id=info.context.merchant_id))

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKey], description="The program's widget texts and colours.")
    async def program_widget(self, info: Info, program_id: strawberry.ID) -> WidgetProgram:
        async def work(session: AsyncSession) -> WidgetProgram:
            program, widget = await service.program_with_widget(
                session, merchant_id=info.context.merchant_id, program_id=validation.parse_id(program_id, "programId")
            )
            return WidgetProgram.of(program, widget)

        return await query(info, work)


@strawberry.type
class WidgetMutation:
    @strawberry.mutation(
        permission_classes=[AnyKey],
        description="The share panel of a customer signed by the shop's server: HMAC-SHA256 of "
        '"{customerExternalId}.{timestamp}" with the widget secret, hex, valid 24 hours. Publishable key. '
        "Issues the customer's code on first use.",
    )
    async def widget_session(
        self,
        info: Info,
        customer_external_id: str,
        timestamp: BigInt,
        signature: str,
        program_id: strawberry.ID | None = None,
        device_id: str | None = None,
        device_fingerprint: str | None = None,
    ) -> WidgetSessionPayload:
        context = info.context

        async def work(session: AsyncSession) -> WidgetSessionPayload:
            opened = await panel.open_panel(
                session,
                merchant_id=context.merchant_id,
                customer=SignedCustomer(external_id=customer_external_id, timestamp=timestamp, signature=signature),
                program_id=validation.parse_id(program_id, "programId") if program_id else None,
                visit=panel.Visit(
                    device_id=device_id,
                    device_fingerprint=device_fingerprint,
                    ip=context.client_ip,
                    user_agent=context.request.headers.get("user-agent"),
                ),
                app_settings=context.settings,
            )
            return WidgetSessionPayload(
                session=WidgetSession(
                    code=opened.code.code,
                    share_url=opened.share_url,
                    successful_referrals=opened.successful_referrals,
                    pending_referrals=opened.pending_referrals,
                    rewards=[WidgetRewardTotal.of(total) for total in opened.rewards],
                    program=WidgetProgram.of(opened.program, opened.widget),
                    expires_at=opened.expires_at,
                )
            )

        return await mutate(info, WidgetSessionPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKey],
        description='Replace the browser origins allowed to call the API with the publishable key, e.g. "https://shop.example", '
        '"https://*.shop.example".',
    )
    async def set_widget_allowed_origins(self, info: Info, origins: list[str]) -> WidgetSettingsPayload:
        context = info.context

        async def work(session: AsyncSession) -> WidgetSettingsPayload:
            settings = await service.set_allowed_origins(
                session,
                merchant_id=context.merchant_id,
                origins_given=origins,
                production=context.settings.is_production,
                actor=context.actor,
            )
            return WidgetSettingsPayload(settings=WidgetSettings.of(settings))

        return await mutate(info, WidgetSettingsPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="A new secret for signing customer ids (the first, or a replacement). The old one keeps "
        "verifying for overlapHours (0-168).",
    )
    async def rotate_widget_secret(self, info: Info, overlap_hours: int = 24) -> WidgetSecretPayload:
        context = info.context

        async def work(session: AsyncSession) -> WidgetSecretPayload:
            rotated = await service.rotate_secret(
                session,
                merchant_id=context.merchant_id,
                app_settings=context.settings,
                overlap_hours=overlap_hours,
                actor=context.actor,
            )
            return WidgetSecretPayload(settings=WidgetSettings.of(rotated.settings), secret=rotated.secret)

        return await mutate(info, WidgetSecretPayload, work)

    @strawberry.mutation(permission_classes=[SecretKey], description="Set the program's widget texts (per locale) and colours.")
    async def set_program_widget(self, info: Info, program_id: strawberry.ID, input: ProgramWidgetInput) -> ProgramWidgetPayload:
        async def work(session: AsyncSession) -> ProgramWidgetPayload:
            colors = input.colors or WidgetColorsInput()
            program, widget = await service.set_program_widget(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                texts=[service.WidgetText(t.locale, t.title, t.description, t.share_message) for t in input.texts],
                colors=service.WidgetColors(primary=colors.primary, background=colors.background, text=colors.text),
            )
            return ProgramWidgetPayload(widget=WidgetProgram.of(program, widget))

        return await mutate(info, ProgramWidgetPayload, work)
