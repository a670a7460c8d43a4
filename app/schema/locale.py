"""Locale settings (time zone, calendar, locale, Arabic-script codes) and the reports grouped by
the merchant's months: a customer's statement, a program's rewards per month."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import calendars, money, validation
from app.merchants import locale as service
from app.merchants.models import LocaleSettings as LocaleSettingsModel
from app.referrals import customers, programs
from app.rewards import reports
from app.rewards.models import RewardKind as RewardKindValue
from app.schema.errors import UserError, not_found
from app.schema.permissions import SecretKey
from app.schema.reward_types import RewardKind
from app.schema.scalars import BigInt
from app.schema.transactions import mutate, query

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
Calendar: TypeAlias = calendars.Calendar
strawberry.enum(Calendar, name="Calendar", description="GREGORIAN, JALALI (Solar Hijri) or HIJRI (Umm al-Qura).")


@strawberry.type
class LocaleSettings:
    time_zone: str = strawberry.field(description="IANA time zone reports and statements are grouped in.")
    calendar: Calendar
    locale: str = strawberry.field(description="CLDR locale amounts are shown in (formatted fields).")
    numbering_system: str = strawberry.field(description="Its digits: latn (123), arab (١٢٣) or arabext (۱۲۳).")
    arabic_script_codes: bool = strawberry.field(description="Vanity codes may be in Arabic or Persian script.")
    unify_teh_marbuta: bool = strawberry.field(description="ة and ه are one letter in codes.")
    updated_at: datetime | None

    @classmethod
    def from_model(cls, m: LocaleSettingsModel) -> LocaleSettings:
        return cls(
            time_zone=m.time_zone,
            calendar=calendars.Calendar(m.calendar),
            locale=m.locale,
            numbering_system=calendars.numbering_system(m.locale),
            arabic_script_codes=m.arabic_script_codes,
            unify_teh_marbuta=m.unify_teh_marbuta,
            updated_at=m.updated_at,
        )


@strawberry.input
class LocaleSettingsInput:
    time_zone: str | None = None
    calendar: Calendar | None = None
    locale: str | None = None
    arabic_script_codes: bool | None = None
    unify_teh_marbuta: bool | None = None


@strawberry.type
class LocaleSettingsPayload:
    settings: LocaleSettings | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="A month of the report's calendar, as an interval of instants.")
class CalendarMonth:
    key: str = strawberry.field(description='"1405-01": ASCII and sortable.')
    label: str = strawberry.field(description='"فروردین ۱۴۰۵": as people of the locale write it.')
    year: int
    month: int
    start: datetime
    end: datetime = strawberry.field(description="Exclusive: the next month's start.")

    @classmethod
    def of(cls, month: calendars.Month, locale: str) -> CalendarMonth:
        return cls(key=month.key, label=month.label(locale), year=month.year, month=month.month, start=month.start, end=month.end)


@strawberry.type
class Amount:
    amount: BigInt = strawberry.field(description="Minor units, points or basis points.")
    unit: str
    formatted: str = strawberry.field(description="For people: in the locale's format and digits.")


def _amount(value: int, unit: str, locale: str) -> Amount:
    return Amount(amount=value, unit=unit, formatted=money.formatted(value, unit, locale))


@strawberry.type
class StatementLine:
    kind: RewardKind
    unit: str
    opening: Amount = strawberry.field(description="Available at the month's start.")
    credited: Amount
    debited: Amount
    closing: Amount = strawberry.field(description="Available at the month's end.")
    held: Amount = strawberry.field(description="Held at the month's end.")


@strawberry.type
class StatementMonth:
    month: CalendarMonth
    lines: list[StatementLine]


@strawberry.type
class CustomerStatement:
    calendar: Calendar
    time_zone: str
    locale: str
    months: list[StatementMonth]


@strawberry.type
class RewardReportRow:
    month: CalendarMonth
    kind: RewardKind
    unit: str
    count: int
    granted: Amount
    reversed: Amount


@strawberry.type
class RewardReport:
    calendar: Calendar
    time_zone: str
    locale: str
    rows: list[RewardReportRow]
    csv: str = strawberry.field(description="The same as CSV: ASCII digits, ISO instants, integer amounts.")


@strawberry.type
class LocaleQuery:
    @strawberry.field(permission_classes=[SecretKey])
    async def locale_settings(self, info: Info) -> LocaleSettings:
        async def work(session: AsyncSession) -> LocaleSettings:
            return LocaleSettings.from_model(await service.get_settings(session, merchant_id=info.context.merchant_id))

        return await query(info, work)

    @strawberry.field(
        permission_classes=[SecretKey],
        description="A customer's balances month by month (the whole months the period touches), in the merchant's "
        "calendar and time zone unless given.",
    )
    async def customer_statement(
        self,
        info: Info,
        customer_external_id: str,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        calendar: Calendar | None = None,
        time_zone: str | None = None,
        locale: str | None = None,
    ) -> CustomerStatement:
        async def work(session: AsyncSession) -> CustomerStatement:
            merchant_id = info.context.merchant_id
            customer = await customers.get_customer(
                session, merchant_id=merchant_id, external_id=customers.external_id(customer_external_id)
            )
            if customer is None:
                raise not_found("customer")
            view = await reports.view_of(session, merchant_id=merchant_id, calendar=calendar, time_zone=time_zone, locale=locale)
            months = await reports.statement(
                session, merchant_id=merchant_id, customer_id=customer.id, start=from_, end=to, view=view
            )
            return CustomerStatement(
                calendar=view.calendar,
                time_zone=view.zone.key,
                locale=view.locale,
                months=[
                    StatementMonth(
                        month=CalendarMonth.of(m.month, view.locale),
                        lines=[
                            StatementLine(
                                kind=RewardKindValue(line.kind),
                                unit=line.unit,
                                **{
                                    name: _amount(getattr(line, name), line.unit, view.locale)
                                    for name in ("opening", "credited", "debited", "closing", "held")
                                },
                            )
                            for line in m.lines
                        ],
                    )
                    for m in months
                ],
            )

        return await query(info, work)

    @strawberry.field(
        permission_classes=[SecretKey],
        description="A program's rewards per month, kind and unit (the whole months the period touches).",
    )
    async def reward_report(
        self,
        info: Info,
        program_id: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        calendar: Calendar | None = None,
        time_zone: str | None = None,
        locale: str | None = None,
    ) -> RewardReport:
        async def work(session: AsyncSession) -> RewardReport:
            merchant_id = info.context.merchant_id
            program = await programs.require_program(
                session, merchant_id=merchant_id, program_id=validation.parse_id(program_id, "programId"), field=None
            )
            view = await reports.view_of(session, merchant_id=merchant_id, calendar=calendar, time_zone=time_zone, locale=locale)
            totals = await reports.rewards_by_month(
                session, merchant_id=merchant_id, program_id=program.id, start=from_, end=to, view=view
            )
            return RewardReport(
                calendar=view.calendar,
                time_zone=view.zone.key,
                locale=view.locale,
                csv=reports.rewards_csv(totals),
                rows=[
                    RewardReportRow(
                        month=CalendarMonth.of(t.month, view.locale),
                        kind=RewardKindValue(t.kind),
                        unit=t.unit,
                        count=t.count,
                        granted=_amount(t.granted, t.unit, view.locale),
                        reversed=_amount(t.reversed, t.unit, view.locale),
                    )
                    for t in totals
                ],
            )

        return await query(info, work)


@strawberry.type
class LocaleMutation:
    @strawberry.mutation(permission_classes=[SecretKey], description="Omitted fields keep their value.")
    async def set_locale_settings(self, info: Info, input: LocaleSettingsInput) -> LocaleSettingsPayload:
        async def work(session: AsyncSession) -> LocaleSettingsPayload:
            settings = await service.set_settings(
                session,
                merchant_id=info.context.merchant_id,
                actor=info.context.actor,
                change=service.LocaleChange(
                    time_zone=input.time_zone,
                    calendar=input.calendar,
                    locale=input.locale,
                    arabic_script_codes=input.arabic_script_codes,
                    unify_teh_marbuta=input.unify_teh_marbuta,
                ),
            )
            return LocaleSettingsPayload(settings=LocaleSettings.from_model(settings))

        return await mutate(info, LocaleSettingsPayload, work)
