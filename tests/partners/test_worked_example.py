"""README, "Running an affiliate program": the worked example, step by step, with its results."""

from __future__ import annotations

from tests import graphql_ops as ops
from tests.partners.helpers import period, refund, sale
from tests.rewards.helpers import create_rule
from tests.widget.helpers import signed, widget_secret


async def test_the_readme_affiliate_program_example(tenant):
    program = (
        await tenant.gql(
            ops.CREATE_PROGRAM,
            {
                "input": {
                    "name": "Affiliates",
                    "status": "ACTIVE",
                    "programType": "AFFILIATE",
                    "shareUrlTemplate": "https://shop.example/?ref={code}",
                }
            },
        )
    )["createProgram"]["program"]
    await create_rule(
        tenant, program["id"], name="10% commission", trigger="PURCHASE", recipient="REFERRER", kind="COMMISSION", percentBps=1000
    )
    gold = await tenant.gql(ops.CREATE_PARTNER_GROUP, {"programId": program["id"], "name": "Gold", "commissionBps": 2000})
    gold = gold["createPartnerGroup"]["group"]

    applied = (
        await tenant.gql(
            ops.APPLY_AS_PARTNER, {"programId": program["id"], "customerExternalId": "ann", "note": "Cooking blog, 40k readers"}
        )
    )["applyAsPartner"]
    assert applied["partner"]["status"] == "APPLIED"
    code = applied["linkCode"]
    approved = await tenant.gql(ops.DECIDE_PARTNER, {"partnerId": applied["partner"]["id"], "decision": "APPROVE"})
    assert approved["decidePartner"]["partner"]["status"] == "ACTIVE"
    await tenant.gql(ops.ASSIGN_PARTNER_GROUP, {"partnerId": applied["partner"]["id"], "groupId": gold["id"]})

    await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "carla"}})
    split = (
        await tenant.gql(
            ops.SET_COMMISSION_SPLIT, {"programId": program["id"], "parties": [{"customerExternalId": "carla", "shareBps": 1000}]}
        )
    )["setCommissionSplit"]
    assert split["userErrors"] == [] and split["split"]["version"] == 1

    click = (
        await tenant.gql(
            ops.TRACK_CLICK, {"input": {"code": code, "deviceId": "device-1", "subId": "newsletter"}}, key=tenant.publishable_key
        )
    )["trackClick"]
    await sale(tenant, "bob", token=click["attributionToken"], amount=9999, key="order-1001", orderId="1001")

    (sold,) = (await tenant.gql(ops.PARTNER_SALES, {"programId": program["id"], **period()}))["partnerSales"]
    assert (sold["orderId"], sold["subId"], sold["status"], sold["affiliateBps"], sold["commission"]) == (
        "1001",
        "newsletter",
        "EARNED",
        2000,
        2999,
    )
    assert [(s["customerExternalId"], s["role"], s["shareBps"], s["amount"]) for s in sold["shares"]] == [
        ("ann", "AFFILIATE", 2000, 1999),
        ("carla", "CO_PRODUCER", 1000, 1000),
    ]

    secret = await widget_secret(tenant)
    identity = signed(secret, "ann")
    session = {"customerExternalId": "ann", "timestamp": identity["timestamp"], "signature": identity["signature"]}
    statement = (
        await tenant.gql(
            ops.PARTNER_STATEMENT, {"programId": program["id"], **period(), "signature": session}, key=tenant.publishable_key
        )
    )["partnerStatement"]
    assert statement["totals"] == [{"amount": 1999, "currency": "USD"}]

    await refund(tenant, "bob", "1001", 3333, "refund-1001-a")
    (after,) = (await tenant.gql(ops.PARTNER_SALES, {"programId": program["id"], **period()}))["partnerSales"]
    assert after["refundedAmount"] == 3333
    assert [(s["customerExternalId"], s["reversedAmount"], s["netAmount"]) for s in after["shares"]] == [
        ("ann", 666, 1333),
        ("carla", 333, 667),
    ]

    report = await tenant.gql(ops.PARTNER_REPORT, {"programId": program["id"], **period(), "groupBy": "SUB_ID"})
    (row,) = report["partnerReport"]
    assert (row["partnerExternalId"], row["subId"], row["clicks"], row["conversions"], row["conversionRate"]) == (
        "ann",
        "newsletter",
        1,
        1,
        1.0,
    )
    assert row["revenue"] == [{"amount": 6666, "currency": "USD"}]
    assert row["commissionEarned"] == [{"amount": 1333, "currency": "USD"}]
