"""Merchant admins: login and sessions, the admin list, the second factor (TOTP)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.db import utcnow
from app.errors import ErrorCode
from app.merchants import admins as service
from app.merchants import models, sessions, totp
from app.schema.auth import admin_of
from app.schema.common import gid
from app.schema.errors import PublicError, UserError
from app.schema.permissions import AnyAdmin, Owner
from app.schema.transactions import mutate, query

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
AdminRole: TypeAlias = models.AdminRole
strawberry.enum(AdminRole, name="AdminRole")
AdminStatus: TypeAlias = models.AdminStatus
strawberry.enum(AdminStatus, name="AdminStatus")


@strawberry.type(description="A person who works for the merchant.")
class Admin:
    id: strawberry.ID
    email: str
    role: AdminRole
    status: AdminStatus
    totp_enabled: bool = strawberry.field(description="Has a second factor: may take money actions (FINANCE/OWNER).")
    second_factor_locked_until: datetime | None = strawberry.field(
        description="Too many wrong codes: money actions wait till then."
    )
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def from_model(cls, m: models.Admin) -> Admin:
        locked = (
            m.second_factor_locked_until if m.second_factor_locked_until and m.second_factor_locked_until > utcnow() else None
        )
        return cls(
            id=gid(m.id),
            email=m.email,
            role=m.admin_role,
            status=models.AdminStatus(m.status),
            totp_enabled=m.totp_enabled_at is not None,
            second_factor_locked_until=locked,
            created_at=m.created_at,
            disabled_at=m.disabled_at,
        )


@strawberry.type(description="A login of an admin. The token is never shown again after login.")
class AdminSession:
    id: strawberry.ID
    admin_id: strawberry.ID
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    revoked_at: datetime | None
    revoked_reason: str | None
    current: bool = strawberry.field(description="The session making this request.")

    @classmethod
    def from_model(cls, m: models.AdminSession, current_id: uuid.UUID | None) -> AdminSession:
        return cls(
            id=gid(m.id),
            admin_id=gid(m.admin_id),
            created_at=m.created_at,
            expires_at=m.expires_at,
            last_used_at=m.last_used_at,
            ip=m.ip,
            user_agent=m.user_agent,
            revoked_at=m.revoked_at,
            revoked_reason=m.revoked_reason,
            current=m.id == current_id,
        )


@strawberry.type
class LoginPayload:
    token: str | None = strawberry.field(default=None, description="Send as `Authorization: Bearer sess_...`. Shown once.")
    session: AdminSession | None = None
    admin: Admin | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AdminPayload:
    admin: Admin | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AdminSetupPayload:
    admin: Admin | None = None
    setup_token: str | None = strawberry.field(default=None, description="For completeAdminSetup. Shown once; valid 72 hours.")
    setup_expires_at: datetime | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AdminSessionPayload:
    session: AdminSession | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="A new TOTP seed: scan the QR code (or type the secret) in an authenticator app.")
class TotpEnrollment:
    provisioning_uri: str = strawberry.field(description="otpauth://totp/... (what the QR code holds)")
    qr_code_svg: str = strawberry.field(description="The provisioning URI as an SVG QR code.")
    secret: str = strawberry.field(description="Base32, for typing in by hand.")
    expires_at: datetime = strawberry.field(description="Confirm before this with confirmTotpEnrollment.")


@strawberry.type
class TotpEnrollmentPayload:
    enrollment: TotpEnrollment | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ConfirmTotpPayload:
    admin: Admin | None = None
    recovery_codes: list[str] | None = strawberry.field(
        default=None, description="Ten single-use codes for when the phone is lost. Shown once: keep them safe."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _admin_id(info: Info) -> uuid.UUID:
    return admin_of(info.context).admin_id


def _ip_and_agent(info: Info) -> tuple[str | None, str | None]:
    return info.context.client_ip, info.context.request.headers.get("user-agent")


@strawberry.type
class AdminQuery:
    @strawberry.field(permission_classes=[AnyAdmin], description="The admin of the session making the request.")
    async def me(self, info: Info) -> Admin:
        async def work(session: AsyncSession) -> Admin:
            return Admin.from_model(
                await service.get_admin(session, merchant_id=info.context.merchant_id, admin_id=_admin_id(info))
            )

        return await query(info, work)

    @strawberry.field(permission_classes=[Owner], description="The merchant's admins.")
    async def admins(self, info: Info) -> list[Admin]:
        async def work(session: AsyncSession) -> list[Admin]:
            return [Admin.from_model(a) for a in await service.list_admins(session, merchant_id=info.context.merchant_id)]

        return await query(info, work)

    @strawberry.field(
        permission_classes=[AnyAdmin],
        description="Live sessions, newest first: your own, or (OWNER) anyone's, or one admin's with adminId.",
    )
    async def admin_sessions(
        self, info: Info, admin_id: strawberry.ID | None = None, include_ended: bool = False
    ) -> list[AdminSession]:
        async def work(session: AsyncSession) -> list[AdminSession]:
            caller = admin_of(info.context)
            wanted = validation.parse_id(admin_id, "adminId") if admin_id else None
            if caller.admin_role is not models.AdminRole.OWNER:
                if wanted is not None and wanted != caller.admin_id:
                    raise PublicError("only an OWNER sees other admins' sessions", "FORBIDDEN")
                wanted = caller.admin_id
            elif wanted is not None:
                await service.get_admin(session, merchant_id=info.context.merchant_id, admin_id=wanted, field="adminId")
            rows = await sessions.list_sessions(
                session, merchant_id=info.context.merchant_id, admin_id=wanted, include_ended=include_ended
            )
            return [AdminSession.from_model(r, caller.session_id) for r in rows]

        return await query(info, work)


def _refused(payload: Any) -> bool:
    """A wrong password or setup token (not, say, a weak new password)."""
    return any(e.code in (ErrorCode.INVALID_CREDENTIALS, ErrorCode.INVALID_TOKEN) for e in payload.user_errors)


@strawberry.type
class AdminMutation:
    @strawberry.mutation(
        description="Email and password: a session token. Name the merchant when the email is an admin at several."
    )
    async def login(self, info: Info, email: str, password: str, merchant_id: strawberry.ID | None = None) -> LoginPayload:
        async def work(session: AsyncSession) -> LoginPayload:
            ip, agent = _ip_and_agent(info)
            issued = await sessions.login(
                session,
                settings=info.context.settings,
                email=email,
                password=password,
                merchant_id=validation.parse_id(merchant_id, "merchantId") if merchant_id else None,
                ip=ip,
                user_agent=agent,
            )
            return LoginPayload(
                token=issued.token,
                session=AdminSession.from_model(issued.admin_session, issued.admin_session.id),
                admin=Admin.from_model(issued.admin),
            )

        return await info.context.credential_check(lambda: mutate(info, LoginPayload, work), failed=_refused)

    @strawberry.mutation(permission_classes=[AnyAdmin], description="End the session making the request.")
    async def logout(self, info: Info) -> AdminSessionPayload:
        async def work(session: AsyncSession) -> AdminSessionPayload:
            caller = admin_of(info.context)
            ended = await sessions.revoke(
                session,
                merchant_id=caller.merchant_id,
                session_id=caller.session_id,
                actor=info.context.actor,
                actor_role=caller.admin_role,
                reason="logout",
            )
            return AdminSessionPayload(session=AdminSession.from_model(ended, caller.session_id))

        return await mutate(info, AdminSessionPayload, work)

    @strawberry.mutation(permission_classes=[AnyAdmin], description="End a session: your own, or (OWNER) anyone's.")
    async def revoke_admin_session(self, info: Info, id: strawberry.ID) -> AdminSessionPayload:
        async def work(session: AsyncSession) -> AdminSessionPayload:
            caller = admin_of(info.context)
            ended = await sessions.revoke(
                session,
                merchant_id=caller.merchant_id,
                session_id=validation.parse_id(id, "id"),
                actor=info.context.actor,
                actor_role=caller.admin_role,
            )
            return AdminSessionPayload(session=AdminSession.from_model(ended, caller.session_id))

        return await mutate(info, AdminSessionPayload, work)

    @strawberry.mutation(description="Set the password with the one-time setup token (from createAdmin or `referral admins`).")
    async def complete_admin_setup(self, info: Info, token: str, password: str) -> AdminPayload:
        async def work(session: AsyncSession) -> AdminPayload:
            admin = await service.complete_setup(session, settings=info.context.settings, token=token, password=password)
            return AdminPayload(admin=Admin.from_model(admin))

        return await info.context.credential_check(lambda: mutate(info, AdminPayload, work), failed=_refused)

    @strawberry.mutation(permission_classes=[AnyAdmin], description="Your other sessions end.")
    async def change_admin_password(self, info: Info, current_password: str, new_password: str) -> AdminPayload:
        async def work(session: AsyncSession) -> AdminPayload:
            admin = await service.change_password(
                session,
                settings=info.context.settings,
                merchant_id=info.context.merchant_id,
                admin_id=_admin_id(info),
                current=current_password,
                new=new_password,
                actor=info.context.actor,
            )
            return AdminPayload(admin=Admin.from_model(admin))

        return await mutate(info, AdminPayload, work)

    @strawberry.mutation(permission_classes=[Owner], description="A new admin, with a one-time setup token to pass on.")
    async def create_admin(self, info: Info, email: str, role: AdminRole) -> AdminSetupPayload:
        async def work(session: AsyncSession) -> AdminSetupPayload:
            issued = await service.create_admin(
                session, merchant_id=info.context.merchant_id, email=email, role=role, actor=info.context.actor
            )
            return AdminSetupPayload(
                admin=Admin.from_model(issued.admin), setup_token=issued.token, setup_expires_at=issued.expires_at
            )

        return await mutate(info, AdminSetupPayload, work)

    @strawberry.mutation(permission_classes=[Owner], description="A new setup token (a forgotten password).")
    async def reissue_admin_setup(self, info: Info, id: strawberry.ID) -> AdminSetupPayload:
        async def work(session: AsyncSession) -> AdminSetupPayload:
            issued = await service.reissue_setup(
                session, merchant_id=info.context.merchant_id, admin_id=validation.parse_id(id, "id"), actor=info.context.actor
            )
            return AdminSetupPayload(
                admin=Admin.from_model(issued.admin), setup_token=issued.token, setup_expires_at=issued.expires_at
            )

        return await mutate(info, AdminSetupPayload, work)

    @strawberry.mutation(permission_classes=[Owner], description="A merchant keeps at least one active OWNER.")
    async def set_admin_role(self, info: Info, id: strawberry.ID, role: AdminRole) -> AdminPayload:
        async def work(session: AsyncSession) -> AdminPayload:
            admin = await service.set_role(
                session,
                merchant_id=info.context.merchant_id,
                admin_id=validation.parse_id(id, "id"),
                role=role,
                actor=info.context.actor,
            )
            return AdminPayload(admin=Admin.from_model(admin))

        return await mutate(info, AdminPayload, work)

    @strawberry.mutation(permission_classes=[Owner], description="At once; every session of theirs ends.")
    async def disable_admin(self, info: Info, id: strawberry.ID) -> AdminPayload:
        async def work(session: AsyncSession) -> AdminPayload:
            admin = await service.disable_admin(
                session, merchant_id=info.context.merchant_id, admin_id=validation.parse_id(id, "id"), actor=info.context.actor
            )
            return AdminPayload(admin=Admin.from_model(admin))

        return await mutate(info, AdminPayload, work)

    @strawberry.mutation(
        permission_classes=[AnyAdmin], description="A new TOTP seed for your authenticator app (confirm it next)."
    )
    async def start_totp_enrollment(self, info: Info) -> TotpEnrollmentPayload:
        async def work(session: AsyncSession) -> TotpEnrollmentPayload:
            enrollment = await totp.start_enrollment(
                session, settings=info.context.settings, merchant_id=info.context.merchant_id, admin_id=_admin_id(info)
            )
            return TotpEnrollmentPayload(
                enrollment=TotpEnrollment(
                    provisioning_uri=enrollment.provisioning_uri,
                    qr_code_svg=enrollment.qr_svg,
                    secret=enrollment.secret,
                    expires_at=enrollment.expires_at,
                )
            )

        return await mutate(info, TotpEnrollmentPayload, work)

    @strawberry.mutation(
        permission_classes=[AnyAdmin],
        description="Activate the new seed with a code from it; replacing a device also needs a code of the old one "
        "(currentCode) or a recovery code. Returns ten recovery codes, once.",
    )
    async def confirm_totp_enrollment(
        self, info: Info, code: str, current_code: str | None = None, recovery_code: str | None = None
    ) -> ConfirmTotpPayload:
        async def work(session: AsyncSession) -> ConfirmTotpPayload:
            confirmed = await totp.confirm_enrollment(
                session,
                settings=info.context.settings,
                merchant_id=info.context.merchant_id,
                admin_id=_admin_id(info),
                code=code,
                proof=totp.Proof(totp_code=current_code, recovery_code=recovery_code),
                actor=info.context.actor,
            )
            if confirmed.refused is not None:  # committed: a wrong code counts toward the lockout
                return ConfirmTotpPayload(user_errors=[UserError.from_domain(confirmed.refused)])
            admin = await service.get_admin(session, merchant_id=info.context.merchant_id, admin_id=_admin_id(info))
            return ConfirmTotpPayload(admin=Admin.from_model(admin), recovery_codes=confirmed.recovery_codes)

        return await mutate(info, ConfirmTotpPayload, work)

    @strawberry.mutation(
        permission_classes=[AnyAdmin],
        description="Remove your second factor with a current code or a recovery code (a lost phone); enroll again after.",
    )
    async def reset_totp(self, info: Info, totp_code: str | None = None, recovery_code: str | None = None) -> AdminPayload:
        async def work(session: AsyncSession) -> AdminPayload:
            refused = await totp.reset(
                session,
                settings=info.context.settings,
                merchant_id=info.context.merchant_id,
                admin_id=_admin_id(info),
                proof=totp.Proof(totp_code=totp_code, recovery_code=recovery_code),
                actor=info.context.actor,
            )
            if refused is not None:  # committed: a wrong code counts toward the lockout
                return AdminPayload(user_errors=[UserError.from_domain(refused)])
            admin = await service.get_admin(session, merchant_id=info.context.merchant_id, admin_id=_admin_id(info))
            return AdminPayload(admin=Admin.from_model(admin))

        return await mutate(info, AdminPayload, work)
