"""Referral programs."""

from __future__ import annotations

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.referrals import programs as service
from app.schema.errors import UserError
from app.schema.pagination import Connection, to_connection
from app.schema.permissions import SecretKey, SecretKeyOrAdmin
from app.schema.referral_types import CodeStyle, Program, ProgramStatus, ProgramType
from app.schema.transactions import mutate, query


@strawberry.input
class ProgramInput:
    name: str | None = None
    status: ProgramStatus | None = None
    attribution_window_days: int | None = strawberry.field(default=None, description="1-365; default 30.")
    claim_window_days: int | None = strawberry.field(default=None, description="0-365; default 14.")
    share_url_template: str | None = strawberry.field(default=None, description='e.g. "https://shop.example/?ref={code}"')
    code_style: CodeStyle | None = None
    code_length: int | None = strawberry.field(default=None, description="6-16 characters for RANDOM codes; default 8.")
    program_type: ProgramType | None = strawberry.field(
        default=None, description="CUSTOMER_REFERRAL (default) or AFFILIATE; chosen at creation, never changed."
    )

    def changes(self) -> service.ProgramChanges:
        return service.ProgramChanges(
            name=self.name,
            status=self.status,
            attribution_window_days=self.attribution_window_days,
            claim_window_days=self.claim_window_days,
            share_url_template=self.share_url_template,
            code_style=self.code_style,
            code_length=self.code_length,
            program_type=self.program_type,
        )


@strawberry.type
class ProgramPayload:
    program: Program | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ProgramQuery:
    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="The merchant's programs (the console lists them too).")
    async def programs(
        self, info: Info, status: ProgramStatus | None = None, first: int | None = 20, after: str | None = None
    ) -> Connection[Program]:
        async def work(session: AsyncSession) -> Connection[Program]:
            page = await service.list_programs(
                session, merchant_id=info.context.merchant_id, status=status, first=first, after=after
            )
            return to_connection(page, Program.from_model)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin])
    async def program(self, info: Info, id: strawberry.ID) -> Program | None:
        async def work(session: AsyncSession) -> Program:
            program = await service.require_program(
                session, merchant_id=info.context.merchant_id, program_id=validation.parse_id(id, "id"), field=None
            )
            return Program.from_model(program)

        return await query(info, work)


@strawberry.type
class ProgramMutation:
    @strawberry.mutation(permission_classes=[SecretKey])
    async def create_program(self, info: Info, input: ProgramInput) -> ProgramPayload:
        async def work(session: AsyncSession) -> ProgramPayload:
            program = await service.create_program(session, merchant_id=info.context.merchant_id, changes=input.changes())
            return ProgramPayload(program=Program.from_model(program))

        return await mutate(info, ProgramPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="Change settings or status (DRAFT -> ACTIVE <-> PAUSED -> ARCHIVED; archived is final).",
    )
    async def update_program(self, info: Info, id: strawberry.ID, input: ProgramInput) -> ProgramPayload:
        async def work(session: AsyncSession) -> ProgramPayload:
            program = await service.update_program(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(id, "id"),
                changes=input.changes(),
            )
            return ProgramPayload(program=Program.from_model(program))

        return await mutate(info, ProgramPayload, work)
