"""The README's worked example: "Give $10 credit, get 15% off"."""

from tests import graphql_ops as ops
from tests.scenarios import PAY_AT_SIGNUP, active_program, code_for

CREATE_RULE = """
mutation($programId: ID!, $input: RewardRuleInput!) {
  createRewardRule(programId: $programId, input: $input) {
    rewardRule { id ruleId version name kind recipient amount currency percentBps }
    userErrors { field code message }
  }
}"""

PURCHASE = ops.RECORD_ACTION_WITH_REWARDS


async def test_give_ten_dollars_credit_get_fifteen_percent_off(tenant):
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    give = await tenant.gql(
        CREATE_RULE,
        {
            "programId": program["id"],
            "input": {
                "name": "Give $10",
                "trigger": "PURCHASE",
                "recipient": "REFERRER",
                "kind": "CREDIT",
                "amount": 1000,
                "currency": "USD",
            },
        },
    )
    get = await tenant.gql(
        CREATE_RULE,
        {
            "programId": program["id"],
            "input": {
                "name": "Get 15% off",
                "trigger": "PURCHASE",
                "recipient": "REFEREE",
                "kind": "DISCOUNT",
                "percentBps": 1500,
            },
        },
    )
    assert give["createRewardRule"]["userErrors"] == [] and get["createRewardRule"]["userErrors"] == []
    code = (await code_for(tenant, program["id"], "jane"))["code"]

    result = (
        await tenant.gql(
            PURCHASE,
            {
                "input": {
                    "type": "PURCHASE",
                    "customerExternalId": "bob",
                    "idempotencyKey": "order-1",
                    "orderId": "1",
                    "amount": 5000,
                    "currency": "USD",
                    "referralCode": code,
                }
            },
        )
    )["recordAction"]

    rewards = {r["recipient"]: r for r in result["rewards"]}
    assert rewards["REFERRER"]["kind"] == "CREDIT"
    assert (rewards["REFERRER"]["amount"], rewards["REFERRER"]["unit"]) == (1000, "USD")
    assert rewards["REFERRER"]["status"] == "AVAILABLE"
    assert rewards["REFERRER"]["customer"]["externalId"] == "jane"
    assert rewards["REFEREE"]["kind"] == "DISCOUNT"
    assert rewards["REFEREE"]["coupon"]["percentOffBps"] == 1500
    assert rewards["REFEREE"]["coupon"]["status"] == "ISSUED"
    assert rewards["REFEREE"]["customer"]["externalId"] == "bob"

    jane = await tenant.gql('{ customer(externalId: "jane") { balances { kind unit available held } } }')
    assert jane["customer"]["balances"] == [{"kind": "CREDIT", "unit": "USD", "available": 1000, "held": 0}]

    retry = (
        await tenant.gql(
            PURCHASE,
            {
                "input": {
                    "type": "PURCHASE",
                    "customerExternalId": "bob",
                    "idempotencyKey": "order-1",
                    "orderId": "1",
                    "amount": 5000,
                    "currency": "USD",
                    "referralCode": code,
                }
            },
        )
    )["recordAction"]
    assert sorted(r["recipient"] for r in retry["rewards"]) == ["REFEREE", "REFERRER"]
    jane = await tenant.gql('{ customer(externalId: "jane") { balances { available } } }')
    assert jane["customer"]["balances"] == [{"available": 1000}]
