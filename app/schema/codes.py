"""Referral codes and clicks on referral links."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.referrals import clicks, codes
from app.referrals.models import Program as ProgramModel
from app.referrals.models import ReferralCode as ReferralCodeModel
from app.schema.errors import UserError, not_found
from app.schema.permissions import AnyKey, SecretKey
from app.schema.referral_types import ReferralCode
from app.schema.transactions import mutate, query


@strawberry.input
class IssueReferralCodeInput:
    program_id: strawberry.ID
    customer_external_id: str = strawberry.field(description="Created if the customer is new.")
    vanity: str | None = strawberry.field(default=None, description="A chosen code, e.g. JANE10 (4-32 letters, digits, - or _).")


@strawberry.type
class ReferralCodePayload:
    referral_code: ReferralCode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class TrackClickInput:
    code: str
    device_id: str | None = strawberry.field(default=None, description="The widget's device id, for fraud checks.")
    device_fingerprint: str | None = strawberry.field(
        default=None,
        description="The widget's coarse browser hash (user agent, screen, timezone, language); a weak fraud signal.",
    )
    landing_url: str | None = None
    channel: str | None = strawberry.field(
        default=None, description='Where the link was shared ("whatsapp", "email"): analytics split the funnel by it.'
    )
    occurred_at: datetime | None = strawberry.field(
        default=None, description="For imports of past clicks: when it happened (not in the future, at most 30 days back)."
    )
    sub_id: str | None = strawberry.field(
        default=None,
        description="The affiliate's tag on the link (?ref=CODE&sub=newsletter): up to 64 printable characters "
        "without spaces. Partner reports count clicks and conversions per sub-id.",
    )


@strawberry.type
class TrackClickPayload:
    attribution_token: str | None = strawberry.field(
        default=None, description="Pass it to recordAction (attributionToken) when the visitor signs up."
    )
    expires_at: datetime | None = None
    repeated: bool = strawberry.field(default=False, description="The same device clicked this code in the last 30 minutes.")
    referral_code: ReferralCode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CodeQuery:
    @strawberry.field(
        permission_classes=[AnyKey],
        description="Look a code up (case-insensitive). With a publishable key its customer is hidden.",
    )
    async def referral_code(self, info: Info, code: str) -> ReferralCode | None:
        async def lookup() -> tuple[ReferralCodeModel, ProgramModel] | None:
            return await query(
                info, lambda session: codes.find_code_and_program(session, merchant_id=info.context.merchant_id, code=code)
            )

        found = await info.context.code_lookup(lookup)  # publishable lookups are counted per IP
        if found is None:
            raise not_found("referral code")
        referral_code, program = found
        info.context.get_loaders().program.prime(program.id, program)  # the share link's template: no second read
        return ReferralCode.from_model(referral_code)


@strawberry.type
class CodeMutation:
    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="The customer's active code in the program; the same one on every call.",
    )
    async def issue_referral_code(self, info: Info, input: IssueReferralCodeInput) -> ReferralCodePayload:
        async def work(session: AsyncSession) -> ReferralCodePayload:
            code = await codes.issue_referral_code(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(input.program_id, "programId"),
                customer_external_id=input.customer_external_id,
                vanity=input.vanity,
            )
            return ReferralCodePayload(referral_code=ReferralCode.from_model(code))

        return await mutate(info, ReferralCodePayload, work)

    @strawberry.mutation(permission_classes=[SecretKey], description="The code stops creating new referrals.")
    async def deactivate_referral_code(self, info: Info, code: str) -> ReferralCodePayload:
        async def work(session: AsyncSession) -> ReferralCodePayload:
            found = await codes.deactivate_referral_code(session, merchant_id=info.context.merchant_id, code=code)
            return ReferralCodePayload(referral_code=ReferralCode.from_model(found))

        return await mutate(info, ReferralCodePayload, work)

    @strawberry.mutation(
        permission_classes=[AnyKey],
        description="Called by the widget when a visitor lands with ?ref=CODE. Publishable key.",
    )
    async def track_click(self, info: Info, input: TrackClickInput) -> TrackClickPayload:
        context = info.context

        async def work(session: AsyncSession) -> TrackClickPayload:
            tracked = await clicks.track_click(
                session,
                merchant_id=context.merchant_id,
                code=input.code,
                device_id=input.device_id,
                device_fingerprint=input.device_fingerprint,
                landing_url=input.landing_url,
                channel=input.channel,
                occurred_at=input.occurred_at,
                sub_id=input.sub_id,
                context=clicks.ClickContext(ip=context.client_ip, user_agent=context.request.headers.get("user-agent")),
            )
            return TrackClickPayload(
                attribution_token=tracked.click.attribution_token,
                expires_at=tracked.click.expires_at,
                repeated=tracked.repeated,
                referral_code=ReferralCode.from_model(tracked.referral_code),
            )

        return await mutate(info, TrackClickPayload, work)
