"""Partners of an affiliate program: applying, the merchant's decisions, groups, and which
partners' sales earn commission."""

from __future__ import annotations

from sqlalchemy import func, select

from app.rewards.models import Reward
from app.worker.models import OutboxJob
from tests import graphql_ops as ops
from tests.conftest import system_connection
from tests.partners.helpers import affiliate_program, decide, enrol, partner_rewards, sale, sales
from tests.scenarios import active_program, click, code_for, record
from tests.widget.helpers import signed, widget_secret


async def test_a_new_program_is_a_customer_referral_program_and_an_affiliate_program_says_so(tenant):
    plain = await active_program(tenant)
    affiliate = await affiliate_program(tenant, rule=None)
    assert plain["id"] != affiliate["id"]
    data = await tenant.gql("query($id: ID!) { program(id: $id) { programType } }", {"id": plain["id"]})
    assert data["program"]["programType"] == "CUSTOMER_REFERRAL"
    data = await tenant.gql("query($id: ID!) { program(id: $id) { programType } }", {"id": affiliate["id"]})
    assert data["program"]["programType"] == "AFFILIATE"

    changed = await tenant.gql(ops.UPDATE_PROGRAM, {"id": plain["id"], "input": {"programType": "AFFILIATE"}})
    assert changed["updateProgram"]["userErrors"][0]["field"] == "programType"


async def test_partners_join_affiliate_programs_only(tenant):
    plain = await active_program(tenant)
    data = await tenant.gql(ops.APPLY_AS_PARTNER, {"programId": plain["id"], "customerExternalId": "ann"})
    assert data["applyAsPartner"]["userErrors"][0]["field"] == "programId"


async def test_a_partner_applies_through_a_signed_session_and_never_for_someone_else(tenant):
    program = await affiliate_program(tenant, rule=None)
    secret = await widget_secret(tenant)
    identity = signed(secret, "ann")
    signature = {
        "customerExternalId": identity["customer"],
        "timestamp": identity["timestamp"],
        "signature": identity["signature"],
    }

    bare = await tenant.raw(
        ops.APPLY_AS_PARTNER, {"programId": program["id"], "customerExternalId": "ann"}, key=tenant.publishable_key
    )
    assert bare["data"]["applyAsPartner"]["userErrors"][0]["code"] == "REQUIRED"

    # The signature is ann's: naming another customer changes nothing, the partner is ann.
    data = await tenant.gql(
        ops.APPLY_AS_PARTNER,
        {
            "programId": program["id"],
            "customerExternalId": "mallory",
            "note": "I run a blog",
            "signature": signature,
        },
        key=tenant.publishable_key,
    )
    payload = data["applyAsPartner"]
    assert payload["userErrors"] == []
    assert payload["partner"]["customerExternalId"] == "ann"
    assert payload["partner"]["status"] == "APPLIED" and payload["linkCode"]
    assert payload["partner"]["history"][0]["actor"] == "partner"

    forged = dict(signature, signature="0" * 64)
    refused = await tenant.gql(
        ops.APPLY_AS_PARTNER, {"programId": program["id"], "signature": forged}, key=tenant.publishable_key
    )
    assert refused["applyAsPartner"]["userErrors"][0]["code"] == "SIGNATURE_INVALID"

    again = await tenant.gql(
        ops.APPLY_AS_PARTNER, {"programId": program["id"], "signature": signature}, key=tenant.publishable_key
    )
    assert again["applyAsPartner"]["partner"]["id"] == payload["partner"]["id"]  # applying twice is one application


async def test_decisions_follow_the_lifecycle_and_are_audited_with_who_and_why(tenant):
    program = await affiliate_program(tenant, rule=None)
    partner = await enrol(tenant, program["id"], "ann", approve=False)

    no_reason = await tenant.gql(ops.DECIDE_PARTNER, {"partnerId": partner["id"], "decision": "REJECT"})
    assert no_reason["decidePartner"]["userErrors"][0]["code"] == "REQUIRED"
    wrong = await tenant.gql(ops.DECIDE_PARTNER, {"partnerId": partner["id"], "decision": "REACTIVATE"})
    assert wrong["decidePartner"]["userErrors"][0]["code"] == "INVALID_STATUS_TRANSITION"

    await decide(tenant, partner["id"], "APPROVE")
    await decide(tenant, partner["id"], "SUSPEND", "coupon site traffic")
    final = await decide(tenant, partner["id"], "REACTIVATE", "cleaned up")

    assert final["status"] == "ACTIVE" and final["decidedAt"] is not None
    steps = [(h["fromStatus"], h["toStatus"], h["reason"]) for h in final["history"]]
    assert steps == [
        (None, "APPLIED", None),
        ("APPLIED", "ACTIVE", None),
        ("ACTIVE", "SUSPENDED", "coupon site traffic"),
        ("SUSPENDED", "ACTIVE", "cleaned up"),
    ]
    assert all(h["actor"].startswith("key:") for h in final["history"][1:])

    listed = await tenant.gql(ops.PARTNERS, {"programId": program["id"], "status": "ACTIVE"})
    assert [p["customerExternalId"] for p in listed["partners"]] == ["ann"]


async def test_only_an_active_partners_link_earns_and_the_sale_says_why_not(tenant):
    program = await affiliate_program(tenant)
    partner = await enrol(tenant, program["id"], "ann", approve=False)

    tracked = await click(tenant, partner["code"], "dev-applied")
    assert tracked["attributionToken"]  # clicks are recorded whatever the partner's status
    await sale(tenant, "bob", token=tracked["attributionToken"], amount=10_000, key="order-applied")
    await decide(tenant, partner["id"], "APPROVE")
    await sale(tenant, "cid", code=partner["code"], amount=10_000, key="order-active")
    await decide(tenant, partner["id"], "SUSPEND", "fraud")
    await sale(tenant, "dee", code=partner["code"], amount=10_000, key="order-suspended")

    by_order = {s["orderId"]: s for s in await sales(tenant, program["id"])}
    assert by_order["order-applied"]["status"] == "NOT_EARNED"
    assert by_order["order-applied"]["notEarnedReason"] == "PARTNER_APPLIED"
    assert by_order["order-applied"]["shares"] == [] and by_order["order-applied"]["commission"] == 0
    assert by_order["order-active"]["status"] == "EARNED" and by_order["order-active"]["commission"] == 1000
    assert by_order["order-suspended"]["notEarnedReason"] == "PARTNER_SUSPENDED"
    assert [(who, amount) for who, amount, _reversed, _status in await partner_rewards(tenant)] == [("ann", 1000)]

    # The commission rule is the partner's in an affiliate program: no rule's reward paid it a second time.
    async with system_connection(tenant.engine) as connection:
        rewards = (
            await connection.execute(
                select(func.count(Reward.id)).where(Reward.merchant_id == tenant.id, Reward.source == "RULE")
            )
        ).scalar_one()
    assert rewards == 0


async def test_a_referrer_who_never_applied_earns_nothing_in_an_affiliate_program(tenant):
    program = await affiliate_program(tenant)
    code = (await code_for(tenant, program["id"], "walk-in"))["code"]
    await sale(tenant, "bob", code=code, amount=5000)
    (only,) = await sales(tenant, program["id"])
    assert only["notEarnedReason"] == "NOT_A_PARTNER"


async def test_a_groups_rate_overrides_the_programs_commission_rule_for_its_members(tenant):
    program = await affiliate_program(tenant)  # 10 %
    gold = await tenant.gql(ops.CREATE_PARTNER_GROUP, {"programId": program["id"], "name": "Gold", "commissionBps": 2500})
    gold = gold["createPartnerGroup"]["group"]
    duplicate = await tenant.gql(ops.CREATE_PARTNER_GROUP, {"programId": program["id"], "name": "Gold"})
    assert duplicate["createPartnerGroup"]["userErrors"][0]["field"] == "name"
    ann = await enrol(tenant, program["id"], "ann")
    ben = await enrol(tenant, program["id"], "ben")
    assigned = await tenant.gql(ops.ASSIGN_PARTNER_GROUP, {"partnerId": ann["id"], "groupId": gold["id"]})
    assert assigned["assignPartnerGroup"]["partner"]["groupId"] == gold["id"]

    await sale(tenant, "bob", code=ann["code"], amount=10_000, key="gold-sale")
    await sale(tenant, "cid", code=ben["code"], amount=10_000, key="plain-sale")
    await tenant.gql(ops.UPDATE_PARTNER_GROUP, {"groupId": gold["id"], "commissionBps": 3000})
    await sale(tenant, "dee", code=ann["code"], amount=10_000, key="gold-sale-2")

    by_order = {s["orderId"]: s for s in await sales(tenant, program["id"])}
    assert (by_order["gold-sale"]["affiliateBps"], by_order["gold-sale"]["commission"]) == (2500, 2500)
    assert (by_order["plain-sale"]["affiliateBps"], by_order["plain-sale"]["commission"]) == (1000, 1000)
    assert by_order["gold-sale-2"]["commission"] == 3000  # the new rate from now on; the first sale keeps its own


async def test_a_customer_referral_purchase_settles_nothing_and_writes_no_job(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    result = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="o-1",
        orderId="o-1",
        amount=5000,
        currency="USD",
        referralCode=code,
    )
    assert result["userErrors"] == []
    async with system_connection(tenant.engine) as connection:
        jobs = (
            await connection.execute(select(func.count(OutboxJob.id)).where(OutboxJob.actor == "partners.settle_action"))
        ).scalar_one()
    assert jobs == 0
