"""Reports grouped by the merchant's months: Solar Hijri months in Tehran, Hijri months in Riyadh,
split at local midnight; amounts in the locale's digits for people, ASCII in CSV."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update

from app.db import create_session_factory
from app.rewards.models import LedgerEntry, LedgerTransaction, Reward
from tests.rewards.helpers import create_rule, credit_rule, purchase, signup
from tests.scenarios import PAY_AT_SIGNUP, active_program, code_for

REPORT = """
query($p: ID!, $from: DateTime!, $to: DateTime!, $calendar: Calendar, $tz: String, $locale: String) {
  rewardReport(programId: $p, from: $from, to: $to, calendar: $calendar, timeZone: $tz, locale: $locale) {
    calendar timeZone locale csv
    rows { month { key label start end } kind unit count granted { amount formatted } reversed { amount } }
  }
}"""
STATEMENT = """
query($c: String!, $from: DateTime!, $to: DateTime!) {
  customerStatement(customerExternalId: $c, from: $from, to: $to) {
    calendar timeZone locale
    months { month { key label } lines { kind unit opening { amount } credited { amount formatted } debited { amount }
                                         closing { amount formatted } held { amount } } }
  }
}"""
LOCALE = """mutation($input: LocaleSettingsInput!) { setLocaleSettings(input: $input) { userErrors { field code } } }"""


async def two_rewards_at(db, tenant, first: datetime, second: datetime) -> str:
    """jane earns $10 twice; the rewards and their ledger entries are dated `first` and `second`."""
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    await create_rule(tenant, program["id"], **credit_rule())
    code = await code_for(tenant, program["id"], "jane")
    for moment, friend in ((first, "bob"), (second, "carol")):
        await signup(tenant, friend, code["code"])
        bought = await purchase(tenant, friend, f"order-{friend}", 5000)
        [reward] = bought["rewards"]
        async with create_session_factory(db)() as session:
            reward_id = uuid.UUID(reward["id"])
            await session.execute(update(Reward).where(Reward.id == reward_id).values(created_at=moment))
            transactions = select(LedgerTransaction.id).where(LedgerTransaction.reward_id == reward_id)
            await session.execute(
                update(LedgerEntry).where(LedgerEntry.transaction_id.in_(transactions)).values(created_at=moment)
            )
            await session.commit()
    return program["id"]


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def test_rewards_split_at_nowruz_in_tehran(db, tenant):
    program_id = await two_rewards_at(db, tenant, at(2026, 3, 20, 20, 29, 59), at(2026, 3, 20, 20, 30))
    report = (
        await tenant.gql(
            REPORT,
            {
                "p": program_id,
                "from": "2026-03-01T00:00:00Z",
                "to": "2026-04-01T00:00:00Z",
                "calendar": "JALALI",
                "tz": "Asia/Tehran",
                "locale": "fa",
            },
        )
    )["rewardReport"]
    assert [(r["month"]["key"], r["month"]["label"], r["count"], r["granted"]["amount"]) for r in report["rows"]] == [
        ("1404-12", "اسفند ۱۴۰۴", 1, 1000),
        ("1405-01", "فروردین ۱۴۰۵", 1, 1000),
    ]
    assert report["rows"][1]["month"]["start"] == "2026-03-20T20:30:00+00:00"
    assert "۱۰٫۰۰" in report["rows"][0]["granted"]["formatted"]  # Persian digits and decimal separator for people ...
    assert report["csv"].splitlines() == [  # ... ASCII for files
        "month,calendar,start,end,kind,unit,count,granted,reversed",
        "1404-12,JALALI,2026-02-19T20:30:00+00:00,2026-03-20T20:30:00+00:00,CREDIT,USD,1,1000,0",
        "1405-01,JALALI,2026-03-20T20:30:00+00:00,2026-04-20T20:30:00+00:00,CREDIT,USD,1,1000,0",  # no DST in Iran since 2022
    ]
    assert report["csv"].isascii()


async def test_rewards_split_at_ramadan_in_riyadh(db, tenant):
    program_id = await two_rewards_at(db, tenant, at(2026, 2, 17, 20, 59, 59), at(2026, 2, 17, 21))
    report = (
        await tenant.gql(
            REPORT,
            {
                "p": program_id,
                "from": "2026-02-10T00:00:00Z",
                "to": "2026-02-25T00:00:00Z",
                "calendar": "HIJRI",
                "tz": "Asia/Riyadh",
                "locale": "ar_SA",
            },
        )
    )["rewardReport"]
    assert [(r["month"]["key"], r["month"]["label"], r["count"]) for r in report["rows"]] == [
        ("1447-08", "شعبان ١٤٤٧", 1),
        ("1447-09", "رمضان ١٤٤٧", 1),
    ]
    assert "١٠٫٠٠" in report["rows"][1]["granted"]["formatted"]
    gregorian = (
        await tenant.gql(
            REPORT,
            {
                "p": program_id,
                "from": "2026-02-10T00:00:00Z",
                "to": "2026-02-25T00:00:00Z",
                "calendar": "GREGORIAN",
                "tz": "Asia/Riyadh",
                "locale": "en",
            },
        )
    )["rewardReport"]
    assert [(r["month"]["label"], r["count"], r["granted"]["formatted"]) for r in gregorian["rows"]] == [
        ("February 2026", 2, "$20.00")
    ]


async def test_a_customer_statement_uses_the_merchants_calendar_and_time_zone(db, tenant):
    await two_rewards_at(db, tenant, at(2026, 3, 20, 20, 29, 59), at(2026, 3, 20, 20, 30))
    assert (await tenant.gql(LOCALE, {"input": {"calendar": "JALALI", "timeZone": "Asia/Tehran", "locale": "fa"}}))[
        "setLocaleSettings"
    ]["userErrors"] == []
    statement = (await tenant.gql(STATEMENT, {"c": "jane", "from": "2026-03-10T00:00:00Z", "to": "2026-03-25T00:00:00Z"}))[
        "customerStatement"
    ]
    assert (statement["calendar"], statement["timeZone"], statement["locale"]) == ("JALALI", "Asia/Tehran", "fa")
    lines = [
        (
            m["month"]["key"],
            [
                (
                    ln["opening"]["amount"],
                    ln["credited"]["amount"],
                    ln["debited"]["amount"],
                    ln["closing"]["amount"],
                    ln["held"]["amount"],
                )
                for ln in m["lines"]
            ],
        )
        for m in statement["months"]
    ]
    assert lines == [("1404-12", [(0, 1000, 0, 1000, 0)]), ("1405-01", [(1000, 1000, 0, 2000, 0)])]
    assert statement["months"][1]["lines"][0]["closing"]["formatted"].count("۲۰") == 1


async def test_a_report_period_must_be_sensible(tenant):
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    for variables, code in (
        (("2026-04-01T00:00:00Z", "2026-03-01T00:00:00Z"), "INVALID_INPUT"),
        (("2020-01-01T00:00:00Z", "2026-03-01T00:00:00Z"), "INVALID_INPUT"),
    ):
        body = await tenant.raw(REPORT, {"p": program["id"], "from": variables[0], "to": variables[1]})
        assert body["errors"][0]["extensions"]["code"] == code
    body = await tenant.raw(
        REPORT, {"p": program["id"], "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z", "tz": "Mars/Olympus"}
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
