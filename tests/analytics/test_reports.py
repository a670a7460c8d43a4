"""A program's analytics on hand-computed scenarios: the funnel per share channel, money per
currency (never added across currencies), the leaderboard with rank changes, fraud outcomes and
the review queue, local-day boundaries in the merchant's time zone, and tenant isolation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tests import graphql_ops as ops
from tests.analytics.helpers import FRAUD, OVERVIEW, SERIES, days_ago, iso, report, roll_up, today
from tests.fraud.helpers import ADD_LIST_ENTRY, without_referrer_memory
from tests.rewards.helpers import create_rule, credit_rule, purchase, record, refund
from tests.scenarios import active_program, allow_bursts, code_for

LOCALE = """mutation($input: LocaleSettingsInput!) { setLocaleSettings(input: $input) { userErrors { field code } } }"""


async def click(tenant, code: str, device: str, channel: str | None) -> str:
    data = await tenant.gql(
        ops.TRACK_CLICK, {"input": {"code": code, "deviceId": device, "channel": channel}}, key=tenant.publishable_key
    )
    assert data["trackClick"]["userErrors"] == []
    return data["trackClick"]["attributionToken"]


async def signed_up(
    tenant, customer: str, *, token: str | None = None, code: str | None = None, at: datetime | None = None, **context
) -> dict:
    evidence = {"attributionToken": token} if token else {"referralCode": code}
    result = await record(
        tenant,
        type="SIGNUP",
        customerExternalId=customer,
        idempotencyKey=f"signup-{customer}",
        **evidence,
        **({"occurredAt": iso(at)} if at else {}),
        **({"context": context} if context else {}),
    )
    assert result["userErrors"] == [], result["userErrors"]
    return result


async def shop_with_two_referrers(tenant) -> str:
    """jane's friends arrive by WhatsApp (bob), email (carol) and a typed code (dave); bob and
    carol buy today, bob returns 20.00 USD of his order and carol cancels hers; kim's friend lee
    bought yesterday and max today. Every purchase earns the referrer 10.00 USD credit."""
    program = (await active_program(tenant))["id"]
    await allow_bursts(tenant, program)
    await create_rule(tenant, program, **credit_rule())
    jane = (await code_for(tenant, program, "jane"))["code"]
    kim = (await code_for(tenant, program, "kim"))["code"]
    await signed_up(tenant, "bob", token=await click(tenant, jane, "dev-b", "whatsapp"))
    await signed_up(tenant, "carol", token=await click(tenant, jane, "dev-c", "email"))
    await click(tenant, jane, "dev-x", None)  # a visit that never signed up
    await signed_up(tenant, "dave", code=jane)
    await purchase(tenant, "bob", "order-b", 5000)
    await purchase(tenant, "carol", "order-c", 3000, currency="EUR")
    await refund(tenant, "order-b", "refund-b", 2000, customer="bob")
    await refund(tenant, "order-c", "cancel-c", None, customer="carol", type="CANCELLATION")
    await signed_up(tenant, "lee", code=kim, at=days_ago(2))
    await purchase(tenant, "lee", "order-l", 4000, occurredAt=iso(days_ago(1)))
    await signed_up(tenant, "max", code=kim)
    await purchase(tenant, "max", "order-m", 2000)
    return program


async def test_overview_of_a_day_by_hand(db, tenant):
    program = await shop_with_two_referrers(tenant)
    await roll_up(db, tenant.id)
    day = await report(tenant, program, today(), today())

    assert day["funnel"]["total"] == {
        "clicks": 3,
        "signups": 4,
        "referred": 4,
        "qualified": 3,
        "rewarded": 4,  # lee's reward was granted today
        "signupRate": 1.3333,
        "referralRate": 1.3333,
        "qualificationRate": 0.75,
        "rewardRate": 1.3333,
    }
    assert day["funnel"]["byChannel"] == [
        {"channel": "", "clicks": 1, "signups": 2, "referred": 2, "qualified": 1, "rewarded": 2},  # dave, max; lee rewarded
        {"channel": "email", "clicks": 1, "signups": 1, "referred": 1, "qualified": 1, "rewarded": 1},
        {"channel": "whatsapp", "clicks": 1, "signups": 1, "referred": 1, "qualified": 1, "rewarded": 1},
    ]
    money = day["money"]
    assert money["revenue"] == [  # two currencies, two lines: never added together
        {"currency": "EUR", "purchases": 1, "gross": 3000, "refunds": 1, "refunded": 3000, "net": 0},
        {"currency": "USD", "purchases": 2, "gross": 7000, "refunds": 1, "refunded": 2000, "net": 5000},
    ]
    # four 10.00 credits granted (bob, carol, lee, max), carol's taken back by her cancellation
    assert money["rewardCost"] == [{"kind": "CREDIT", "unit": "USD", "granted": 4000, "takenBack": 1000, "net": 3000}]
    assert money["returns"] == [
        {"currency": "EUR", "netRevenue": 0, "cost": 0, "acquiredCustomers": 3, "costPerAcquiredCustomer": 0, "roi": None},
        {
            "currency": "USD",
            "netRevenue": 5000,
            "cost": 3000,
            "acquiredCustomers": 3,
            "costPerAcquiredCustomer": 1000,
            "roi": 0.6667,
        },
    ]
    referrers = day["referrers"]
    assert referrers["leaderboard"] == [
        {
            "rank": 1,
            "previousRank": None,
            "rankChange": None,
            "customerExternalId": "jane",
            "qualified": 2,
            "referred": 3,
            "revenue": [{"currency": "EUR", "amount": 3000}, {"currency": "USD", "amount": 5000}],
        },
        {
            "rank": 2,
            "previousRank": 1,
            "rankChange": -1,
            "customerExternalId": "kim",
            "qualified": 1,
            "referred": 1,
            "revenue": [{"currency": "USD", "amount": 2000}],
        },  # lee's purchase was yesterday
    ]
    assert {k: v for k, v in referrers.items() if k != "leaderboard"} == {
        "codeHolders": 2,
        "activeReferrers": 2,
        "shareReferring": 1.0,
        "invites": 3,
        "invitesPerCustomer": 1.5,
        "inviteConversion": 1.3333,
        "kFactor": 2.0,
    }

    yesterday = await report(tenant, program, today() - timedelta(days=1), today() - timedelta(days=1))
    assert yesterday["funnel"]["total"]["qualified"] == 1
    assert yesterday["money"]["revenue"] == [
        {"currency": "USD", "purchases": 1, "gross": 4000, "refunds": 0, "refunded": 0, "net": 4000}
    ]
    assert yesterday["money"]["rewardCost"] == []  # granted today, when the purchase was reported
    assert [(x["customerExternalId"], x["rank"]) for x in yesterday["referrers"]["leaderboard"]] == [("kim", 1)]


async def test_series_by_day_and_week(db, tenant):
    program = await shop_with_two_referrers(tenant)
    await roll_up(db, tenant.id)
    first = today() - timedelta(days=2)
    points = (await report(tenant, program, first, today(), SERIES, g="DAY", m=["referred", "qualified"]))["series"]
    by_day = {(p["measure"], p["dimension"], p["start"]): p["count"] for p in points}
    days = [(first + timedelta(days=i)).isoformat() for i in range(3)]
    assert [by_day[("referred", "", d)] for d in days] == [1, 0, 2]  # lee; -; dave, max
    assert [by_day[("qualified", "", d)] for d in days] == [0, 1, 1]  # -; lee; max
    assert [by_day[("referred", "whatsapp", d)] for d in days] == [0, 0, 1]
    weekly = (await report(tenant, program, first, today(), SERIES, g="WEEK", m=["referred"]))["series"]
    assert sum(p["count"] for p in weekly) == 5
    assert all(date.fromisoformat(p["start"]).weekday() == 0 for p in weekly)
    refused = await tenant.raw(
        SERIES, {"p": program, "from": first.isoformat(), "to": today().isoformat(), "g": "DAY", "m": ["nonsense"]}
    )
    assert refused["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_local_midnight_splits_days_in_tehran(db, tenant):
    """Tehran is UTC+03:30: 20:29:59 UTC is the last second of a local day, 20:30:00 the next."""
    assert (await tenant.gql(LOCALE, {"input": {"timeZone": "Asia/Tehran"}}))["setLocaleSettings"]["userErrors"] == []
    program = (await active_program(tenant))["id"]
    await allow_bursts(tenant, program)
    jane = (await code_for(tenant, program, "jane"))["code"]
    base = datetime.now(UTC).replace(hour=20, minute=30, second=0, microsecond=0) - timedelta(days=3)
    await signed_up(tenant, "eve", code=jane, at=base - timedelta(seconds=1))
    await signed_up(tenant, "fay", code=jane, at=base)
    await roll_up(db, tenant.id)
    evening, morning = (base - timedelta(seconds=1)).date(), (base + timedelta(hours=4)).date()
    assert morning == evening + timedelta(days=1)
    one = await report(tenant, program, morning, morning)
    assert one["timeZone"] == "Asia/Tehran"
    assert one["funnel"]["total"]["referred"] == 1
    assert (await report(tenant, program, evening, evening))["funnel"]["total"]["referred"] == 1
    # the same rows for a merchant in UTC: one day holds both (a changed time zone rebuilds the rollups)
    assert (await tenant.gql(LOCALE, {"input": {"timeZone": "UTC"}}))["setLocaleSettings"]["userErrors"] == []
    await roll_up(db, tenant.id)
    assert (await report(tenant, program, evening, evening))["funnel"]["total"]["referred"] == 2


async def test_fraud_outcomes_and_review_queue(db, tenant):
    program = (await active_program(tenant))["id"]
    await without_referrer_memory(tenant, program)  # bob stays allowed although ivy's review marks jane
    await create_rule(tenant, program, **credit_rule())
    jane = (await code_for(tenant, program, "jane"))["code"]
    await record(tenant, type="SIGNUP", customerExternalId="jane", idempotencyKey="jane-1", context={"deviceId": "dev-jane"})
    assert (await tenant.gql(ADD_LIST_ENTRY, {"kind": "EMAIL", "value": "nina@fraud.example"}))["addFraudListEntry"][
        "userErrors"
    ] == []
    await signed_up(tenant, "bob", code=jane)  # nothing in common with jane
    await signed_up(tenant, "ivy", code=jane, deviceId="dev-jane")  # jane's own device: review
    await signed_up(tenant, "nina", code=jane, email="nina@fraud.example")  # blocklisted: blocked
    await purchase(tenant, "ivy", "order-i", 5000)  # earns jane 10.00, held by the review
    await roll_up(db, tenant.id)
    fraud = (await report(tenant, program, today(), today(), FRAUD))["fraud"]
    assert (fraud["allowed"], fraud["reviewed"], fraud["blocked"]) == (1, 1, 1)
    assert (fraud["allowedShare"], fraud["reviewedShare"], fraud["blockedShare"]) == (0.3333, 0.3333, 0.3333)
    assert fraud["held"] == [{"kind": "CREDIT", "unit": "USD", "amount": 1000}]
    assert fraud["reviewQueue"]["open"] == 1
    assert 0 <= fraud["reviewQueue"]["oldestAgeHours"] < 1
    assert fraud["clawedBack"] == [] and fraud["leaked"] == []


async def test_periods_are_checked(tenant):
    program = (await active_program(tenant))["id"]
    for first, last in ((today(), today() - timedelta(days=1)), (today() - timedelta(days=400), today())):
        body = await tenant.raw(OVERVIEW, {"p": program, "from": first.isoformat(), "to": last.isoformat()})
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
        assert body["data"] is None


async def test_a_merchant_cannot_read_another_merchants_analytics(db, tenant, other_tenant):
    program = await shop_with_two_referrers(tenant)
    await roll_up(db, tenant.id)
    await roll_up(db, other_tenant.id)
    body = await other_tenant.raw(OVERVIEW, {"p": program, "from": today().isoformat(), "to": today().isoformat()})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # and the publishable key, which the browser holds, reads nothing
    body = await tenant.raw(
        OVERVIEW, {"p": program, "from": today().isoformat(), "to": today().isoformat()}, key=tenant.publishable_key
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


COHORTS = """
query($p: ID!, $from: Date!, $to: Date!) {
  programAnalytics(programId: $p, from: $from, to: $to) {
    viralCycleTimeDays
    cohorts { week customers referringWithin4Weeks referringWithin8Weeks referringWithin12Weeks }
  }
}"""


async def test_cohorts_and_viral_cycle_time(db, tenant):
    """jane brings bob, dan and fin in one week; bob refers cal 10 days later, dan refers eli 40
    days later, fin nobody: of that week's 3 customers 1 referred within 4 weeks, 2 within 8 and
    12; the cycle times are 10 and 40 days, median 25."""
    program = (await active_program(tenant))["id"]
    await allow_bursts(tenant, program)
    codes = {name: (await code_for(tenant, program, name))["code"] for name in ("jane", "bob", "dan")}
    start = days_ago(60)
    for friend in ("bob", "dan", "fin"):
        await signed_up(tenant, friend, code=codes["jane"], at=start)
    await signed_up(tenant, "cal", code=codes["bob"], at=start + timedelta(days=10))
    await signed_up(tenant, "eli", code=codes["dan"], at=start + timedelta(days=40))
    await roll_up(db, tenant.id)
    found = await report(tenant, program, today() - timedelta(days=70), today(), COHORTS)
    assert found["viralCycleTimeDays"] == 25.0
    week = lambda moment: (moment.date() - timedelta(days=moment.date().weekday())).isoformat()  # noqa: E731
    assert found["cohorts"] == [
        {
            "week": week(start),
            "customers": 3,
            "referringWithin4Weeks": 1,
            "referringWithin8Weeks": 2,
            "referringWithin12Weeks": 2,
        },
        {
            "week": week(start + timedelta(days=10)),
            "customers": 1,
            "referringWithin4Weeks": 0,
            "referringWithin8Weeks": 0,
            "referringWithin12Weeks": 0,
        },
        {
            "week": week(start + timedelta(days=40)),
            "customers": 1,
            "referringWithin4Weeks": 0,
            "referringWithin8Weeks": 0,
            "referringWithin12Weeks": 0,
        },
    ]
    # only the customers whose first referral fell in the period count for the cycle time
    recent = await report(tenant, program, today() - timedelta(days=30), today(), COHORTS)
    assert recent["viralCycleTimeDays"] == 40.0


async def test_commission_earned_paid_and_owed(db, tenant, clock):
    """jane earns 12.50 and 7.50 EUR and is paid the 20.00; kim earns 3.00 USD, unpaid: EUR
    shows 20.00 earned, 20.00 paid, nothing owed; USD 3.00 earned and owed."""
    from tests.payouts import helpers as payouts

    await payouts.no_cooling_off(tenant)
    finance = await payouts.approver(tenant, clock)
    program = await payouts.commission_program(tenant)
    await payouts.earn(tenant, program, "jane", 1250, "EUR")
    await payouts.earn(tenant, program, "jane", 750, "EUR", referee="jane-friend-2")
    await payouts.earn(tenant, program, "kim", 300, "USD")
    assert (await payouts.set_account(tenant, "jane"))["userErrors"] == []
    payout = (await payouts.request(tenant, "jane", currency="EUR"))["payout"]
    approved = await payouts.approve(tenant, finance, [payout], code=finance.code(clock()))
    assert approved["data"]["approvePayouts"]["userErrors"] == []
    await payouts.run_jobs(db)
    assert (await tenant.gql(payouts.MARK_PAID, {"id": payout["id"], "ref": "wise-1"}))["markPayoutPaid"]["userErrors"] == []
    await roll_up(db, tenant.id)
    money = (await report(tenant, program, today(), today()))["money"]
    assert money["commission"] == [
        {"currency": "EUR", "earned": 2000, "paid": 2000, "owed": 0},
        {"currency": "USD", "earned": 300, "paid": 0, "owed": 300},
    ]
    assert money["rewardCost"] == [
        {"kind": "COMMISSION", "unit": "EUR", "granted": 2000, "takenBack": 0, "net": 2000},
        {"kind": "COMMISSION", "unit": "USD", "granted": 300, "takenBack": 0, "net": 300},
    ]
    # a period after the payment: nothing earned or paid in it, and nothing more owed in EUR
    later = (await report(tenant, program, today() + timedelta(days=1), today() + timedelta(days=2)))["money"]
    assert later["commission"] == [{"currency": "USD", "earned": 0, "paid": 0, "owed": 300}]


async def test_coupons_redeemed_count_in_the_cost(db, tenant):
    """Two referees get a 10.00 USD coupon; one uses it: one redemption of 10.00, which is the
    program's whole cost in USD against 160.00 of referred purchases."""
    from tests.rewards import test_coupons as coupons

    program, code = await coupons.shop(tenant)
    first = await coupons.referred_purchase(tenant, "bob", code)
    await coupons.referred_purchase(tenant, "carol", code)
    used = await coupons.redeem(tenant, first["coupon"]["code"], "order-bob-2", orderAmount=5000, currency="USD")
    assert used["userErrors"] == []
    await roll_up(db, tenant.id)
    money = (await report(tenant, program["id"], today(), today()))["money"]
    assert money["couponsRedeemed"] == [{"unit": "USD", "count": 1, "amount": 1000}]
    assert money["rewardCost"] == []  # coupons are not in the ledger: their cost is what was redeemed
    assert money["returns"] == [
        {
            "currency": "USD",
            "netRevenue": 16000,
            "cost": 1000,
            "acquiredCustomers": 2,
            "costPerAcquiredCustomer": 500,
            "roi": 15.0,
        }
    ]


async def test_the_funnel_per_channel_counts_the_channel_the_widget_reports(db, tenant):
    """The widget marks each share button's link (`?ref=CODE&ref_channel=whatsapp`, copy for a
    copied link) and reports that channel with the friend's click, as sdk/js/src/attribution.ts
    sends it: the funnel then splits the click and the referral it brought by channel."""
    program = await active_program(tenant)
    await allow_bursts(tenant, program["id"])
    jane = (await code_for(tenant, program["id"], "jane"))["code"]
    tokens = {}
    for friend, channel in (("ann", "whatsapp"), ("ben", "copy"), ("cas", "copy")):
        tracked = await tenant.gql(
            ops.TRACK_CLICK,
            {
                "input": {
                    "code": jane,
                    "deviceId": f"d_{friend}",
                    "deviceFingerprint": f"fp1_{friend}",
                    "landingUrl": f"https://shop.example/?ref={jane}",
                    "channel": channel,
                }
            },
            key=tenant.publishable_key,
        )
        assert tracked["trackClick"]["userErrors"] == []
        tokens[friend] = tracked["trackClick"]["attributionToken"]
    await signed_up(tenant, "ann", token=tokens["ann"])
    await signed_up(tenant, "ben", token=tokens["ben"])  # cas only looked
    await roll_up(db, tenant.id)
    funnel = (await report(tenant, program["id"], today(), today()))["funnel"]
    by_channel = {c["channel"]: (c["clicks"], c["referred"]) for c in funnel["byChannel"]}
    assert by_channel == {"copy": (2, 1), "whatsapp": (1, 1)}
    assert (funnel["total"]["clicks"], funnel["total"]["referred"]) == (3, 2)


async def test_a_percentage_coupon_costs_what_it_took_off_the_order(db, tenant):
    """15 % off: redeemed on a 60.00 USD order (reported at redemption) it cost 9.00 USD, in
    the return like a fixed coupon; redeemed without the order's amount it is only counted."""
    from tests.rewards import test_coupons as coupons

    program, code = await coupons.shop(tenant, amount=None, currency=None, percentBps=1500)
    bob = await coupons.referred_purchase(tenant, "bob", code)
    carol = await coupons.referred_purchase(tenant, "carol", code)
    assert (await coupons.redeem(tenant, bob["coupon"]["code"], "order-bob-2", orderAmount=6000, currency="USD"))[
        "userErrors"
    ] == []
    assert (await coupons.redeem(tenant, carol["coupon"]["code"], "order-carol-2"))["userErrors"] == []
    await roll_up(db, tenant.id)
    money = (await report(tenant, program["id"], today(), today()))["money"]
    assert money["couponsRedeemed"] == [{"unit": "PERCENT", "count": 1, "amount": 0}, {"unit": "USD", "count": 1, "amount": 900}]
    assert money["returns"] == [
        {
            "currency": "USD",
            "netRevenue": 16000,
            "cost": 900,
            "acquiredCustomers": 2,
            "costPerAcquiredCustomer": 450,
            "roi": round((16000 - 900) / 900, 4),
        }
    ]
