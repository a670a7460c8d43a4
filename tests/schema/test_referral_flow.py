"""The whole referral loop as a merchant integrates it: program, customer, code, click,
signup with the click's token, purchase, and the referral with its actions."""

from tests import graphql_ops as ops
from tests.scenarios import active_program, click, code_for, record

REFERRAL_WITH_ACTIONS = """
query($id: ID!) {
  referral(id: $id) {
    status source qualifiedAt
    referrer { externalId }
    referee { externalId email }
    code { code }
    actions { type attribution amount { amount currency } }
  }
}"""


async def test_a_friend_signs_up_through_the_link_and_buys(tenant):
    program = await active_program(tenant)
    customer = await tenant.gql(
        ops.UPSERT_CUSTOMER, {"input": {"externalId": "jane", "email": "Jane.Doe+shop@gmail.com", "name": "Jane Doe"}}
    )
    assert customer["upsertCustomer"]["customer"]["emailCanonical"] == "janedoe@gmail.com"

    code = await code_for(tenant, program["id"], "jane")
    assert code["shareUrl"] == f"https://shop.example/?ref={code['code']}"

    tracked = await click(tenant, code["code"].lower(), device_id="browser-42")
    assert tracked["userErrors"] == []
    assert tracked["attributionToken"].startswith("at_")

    signup = await record(
        tenant,
        type="SIGNUP",
        customerExternalId="bob",
        idempotencyKey="signup-bob",
        attributionToken=tracked["attributionToken"],
        context={"email": "bob@example.com", "deviceId": "browser-42"},
    )
    assert signup["userErrors"] == []
    assert signup["action"]["attribution"] == "REFERRAL_CREATED"
    assert signup["referral"]["status"] == "PENDING"
    assert signup["referral"]["source"] == "LINK"
    assert signup["referral"]["referrer"]["externalId"] == "jane"

    purchase = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="order-1001",
        orderId="1001",
        amount=4999,
        currency="usd",
    )
    assert purchase["action"]["attribution"] == "LINKED_TO_REFERRAL"
    assert purchase["action"]["amount"] == {"amount": 4999, "currency": "USD"}
    assert purchase["referral"]["id"] == signup["referral"]["id"]

    referral = (await tenant.gql(REFERRAL_WITH_ACTIONS, {"id": signup["referral"]["id"]}))["referral"]
    assert referral["status"] == "QUALIFIED"
    assert referral["qualifiedAt"] is not None
    assert referral["referee"] == {"externalId": "bob", "email": "bob@example.com"}
    assert referral["code"]["code"] == code["code"]
    assert [a["type"] for a in referral["actions"]] == ["SIGNUP", "PURCHASE"]

    listed = await tenant.gql(ops.REFERRALS, {"programId": program["id"]})
    assert [e["node"]["id"] for e in listed["referrals"]["edges"]] == [signup["referral"]["id"]]

    jane = await tenant.gql(
        """query { customer(externalId: "jane") {
             referralCodes { code active }
             referrals { edges { node { referee { externalId } } } }
        } }"""
    )
    assert jane["customer"]["referralCodes"] == [{"code": code["code"], "active": True}]
    assert jane["customer"]["referrals"]["edges"][0]["node"]["referee"]["externalId"] == "bob"
