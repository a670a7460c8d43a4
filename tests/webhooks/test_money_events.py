"""Money in webhook payloads: refunds that reduce a commission reach a listening endpoint as
integers (PostgreSQL sums BIGINT into NUMERIC; a Decimal in the payload failed the refund)."""

from __future__ import annotations

import pytest

from app.webhooks.service import PayloadError, json_payload
from tests.rewards.helpers import assert_ledger_consistent, credit_rule, purchase, refund
from tests.rewards.test_evaluation import shop
from tests.webhooks.conftest import create_endpoint, run_deliveries

COMMISSION = credit_rule(name="10%", kind="COMMISSION", amount=None, currency=None, percentBps=1000)


@pytest.mark.parametrize("hold_days", [None, 14], ids=["available", "held"])
async def test_a_partial_refund_of_a_commission_is_recorded_and_sent_with_an_endpoint_listening(tenant, db, receiver, hold_days):
    conditions = {"holdDays": hold_days} if hold_days else {}
    _, code, _ = await shop(tenant, {**COMMISSION, "conditions": conditions})
    await create_endpoint(tenant, receiver.url, ["reward.reversed", "reward.voided"])
    await purchase(tenant, "bob", "order-1", 10000, referralCode=code)

    result = await refund(tenant, "order-1", "refund-1", 2500)

    [commission] = result["refund"]["rewards"]
    assert (commission["reversedAmount"], commission["status"]) == (250, "HELD" if hold_days else "AVAILABLE")
    await run_deliveries(db)
    [sent] = receiver.requests
    assert sent.json["type"] == ("reward.voided" if hold_days else "reward.reversed")
    change = sent.json["data"]["change"]
    assert change["amount"] == 250 and type(change["amount"]) is int
    await assert_ledger_consistent(db)


async def test_a_second_partial_refund_counts_the_first_with_an_endpoint_listening(tenant, db, receiver):
    _, code, _ = await shop(tenant, COMMISSION)
    await create_endpoint(tenant, receiver.url, ["reward.reversed"])
    await purchase(tenant, "bob", "order-1", 10000, referralCode=code)

    await refund(tenant, "order-1", "refund-1", 2500)
    second = await refund(tenant, "order-1", "refund-2", 2500)

    assert [r["reversedAmount"] for r in second["refund"]["rewards"]] == [500]
    await run_deliveries(db)
    assert [r.json["data"]["change"]["amount"] for r in receiver.requests] == [250, 250]


@pytest.mark.parametrize(
    "value",
    [
        __import__("decimal").Decimal("2.5"),
        __import__("datetime").datetime(2026, 1, 1),
        float("nan"),
        "a\ud800b",
        {1: "x"},
        (1, 2),
    ],
    ids=["decimal", "datetime", "nan", "lone-surrogate", "int-key", "tuple"],
)
def test_a_payload_that_is_not_plain_json_is_refused(value):
    with pytest.raises(PayloadError):
        json_payload({"data": {"nested": [value]}})
