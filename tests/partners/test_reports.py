"""Tracking links with sub-ids, and live partner reports: per partner, link and sub-id, for
the merchant, and for each partner their own rows only."""

from __future__ import annotations

from tests import graphql_ops as ops
from tests.partners.helpers import affiliate_program, enrol, period, refund, sale, sales
from tests.scenarios import record
from tests.widget.helpers import signed, widget_secret


async def tracked(tenant, code: str, device: str, sub_id: str | None) -> dict:
    data = await tenant.gql(
        ops.TRACK_CLICK, {"input": {"code": code, "deviceId": device, "subId": sub_id}}, key=tenant.publishable_key
    )
    return data["trackClick"]


async def test_a_sub_id_is_validated_short_and_printable(tenant):
    program = await affiliate_program(tenant, rule=None)
    ann = await enrol(tenant, program["id"], "ann")
    for bad, code in (
        ("two words", "INVALID_INPUT"),
        ("tab\there", "INVALID_INPUT"),
        ("x" * 65, "TOO_LONG"),
        ("bidi\u202eevil", "INVALID_INPUT"),
    ):
        result = await tracked(tenant, ann["code"], "dev-bad", bad)
        assert [(e["field"], e["code"]) for e in result["userErrors"]] == [("subId", code)], bad
        assert result["attributionToken"] is None
    assert (await tracked(tenant, ann["code"], "dev-ok", "fb_ad-12.v2"))["userErrors"] == []


async def test_a_sale_keeps_the_sub_id_of_the_click_that_brought_the_referral(tenant):
    program = await affiliate_program(tenant)
    ann = await enrol(tenant, program["id"], "ann")
    click = await tracked(tenant, ann["code"], "dev-bob", "newsletter")
    signup = await record(
        tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="signup-bob", attributionToken=click["attributionToken"]
    )
    assert signup["action"]["attribution"] == "REFERRAL_CREATED"
    await sale(tenant, "bob", amount=5000, key="later-order")  # no token: the referral remembers the click

    (only,) = await sales(tenant, program["id"])
    assert (only["subId"], only["status"], only["commission"]) == ("newsletter", "EARNED", 500)


async def report(tenant, program_id: str, group_by: str, key: str | None = None, **extra) -> list[dict]:
    data = await tenant.gql(ops.PARTNER_REPORT, {"programId": program_id, **period(), "groupBy": group_by, **extra}, key=key)
    return data["partnerReport"]


async def two_partners(tenant) -> tuple[dict, dict, dict]:
    program = await affiliate_program(tenant)  # 10 %
    ann = await enrol(tenant, program["id"], "ann")
    ben = await enrol(tenant, program["id"], "ben")
    newsletter = await tracked(tenant, ann["code"], "d-1", "newsletter")
    await tracked(tenant, ann["code"], "d-2", "newsletter")
    twitter = await tracked(tenant, ann["code"], "d-3", "twitter")
    await tracked(tenant, ben["code"], "d-4", None)
    await sale(tenant, "bob", token=newsletter["attributionToken"], amount=10_000, key="o-bob")
    await sale(tenant, "cid", token=twitter["attributionToken"], amount=3_000, key="o-cid")
    await refund(tenant, "cid", "o-cid", 1_000, "r-cid")
    await sale(tenant, "dee", code=ben["code"], amount=7_000, key="o-dee")
    return program, ann, ben


async def test_the_merchant_reads_clicks_conversions_and_money_per_partner_link_and_sub_id(tenant):
    program, ann, _ben = await two_partners(tenant)

    by_partner = {r["partnerExternalId"]: r for r in await report(tenant, program["id"], "PARTNER")}
    assert set(by_partner) == {"ann", "ben"}
    assert (by_partner["ann"]["clicks"], by_partner["ann"]["conversions"], by_partner["ann"]["conversionRate"]) == (3, 2, 0.6667)
    assert by_partner["ann"]["revenue"] == [{"amount": 12_000, "currency": "USD"}]  # 10,000 + 3,000 - 1,000 refunded
    assert by_partner["ann"]["commissionEarned"] == [{"amount": 1_200, "currency": "USD"}]  # 1,000 + 300 - 100 reversed
    assert by_partner["ann"]["commissionHeld"] == by_partner["ann"]["commissionEarned"]
    assert by_partner["ann"]["commissionPaid"] == [{"amount": 0, "currency": "USD"}]
    assert (by_partner["ben"]["clicks"], by_partner["ben"]["conversions"]) == (1, 1)  # ben's sale came by code

    by_sub = {(r["partnerExternalId"], r["subId"]): r for r in await report(tenant, program["id"], "SUB_ID")}
    assert (by_sub[("ann", "newsletter")]["clicks"], by_sub[("ann", "newsletter")]["conversions"]) == (2, 1)
    assert by_sub[("ann", "newsletter")]["commissionEarned"] == [{"amount": 1_000, "currency": "USD"}]
    assert (by_sub[("ann", "twitter")]["clicks"], by_sub[("ann", "twitter")]["conversions"]) == (1, 1)
    assert by_sub[("ann", "twitter")]["revenue"] == [{"amount": 2_000, "currency": "USD"}]

    by_link = await report(tenant, program["id"], "LINK", partnerExternalId="ann")
    assert [(r["linkCode"], r["clicks"], r["conversions"]) for r in by_link] == [(ann["code"], 3, 2)]


async def test_a_partner_session_reads_its_own_rows_and_statement_only(tenant):
    program, _ann, _ben = await two_partners(tenant)
    secret = await widget_secret(tenant)

    def session_of(who: str) -> dict:
        identity = signed(secret, who)
        return {"customerExternalId": who, "timestamp": identity["timestamp"], "signature": identity["signature"]}

    # ann asks for ben's rows: a partner session is ann's, whatever it names.
    mine = await report(
        tenant, program["id"], "SUB_ID", key=tenant.publishable_key, signature=session_of("ann"), partnerExternalId="ben"
    )
    assert {r["partnerExternalId"] for r in mine} == {"ann"} and len(mine) == 2
    bens = await report(tenant, program["id"], "PARTNER", key=tenant.publishable_key, signature=session_of("ben"))
    assert [(r["partnerExternalId"], r["conversions"]) for r in bens] == [("ben", 1)]

    unsigned = await tenant.raw(ops.PARTNER_REPORT, {"programId": program["id"], **period()}, key=tenant.publishable_key)
    assert unsigned["errors"][0]["extensions"]["code"] == "REQUIRED"
    stranger = await tenant.raw(
        ops.PARTNER_REPORT, {"programId": program["id"], **period(), "signature": session_of("bob")}, key=tenant.publishable_key
    )
    assert stranger["errors"][0]["extensions"]["code"] == "NOT_FOUND"  # a buyer is nobody's partner

    statement = await tenant.gql(
        ops.PARTNER_STATEMENT,
        {"programId": program["id"], **period(), "customerExternalId": "ben", "signature": session_of("ann")},
        key=tenant.publishable_key,
    )
    statement = statement["partnerStatement"]
    assert statement["customerExternalId"] == "ann"
    assert statement["totals"] == [{"amount": 1_200, "currency": "USD"}]
    assert {line["orderId"] for line in statement["lines"]} == {"o-bob", "o-cid"}
    assert all(len(line["shares"]) == 1 and line["shares"][0]["customerExternalId"] == "ann" for line in statement["lines"])
