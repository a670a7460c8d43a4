"""Rings: when a ring closes, every link of it is held, what was already spendable is clawed
back, and each link's decision carries the path; a chain whose members share a device, card or
address with a new referee is a ring candidate (review, not block)."""

from __future__ import annotations

from tests import scenarios
from tests.fraud import helpers as h
from tests.fraud.test_signals import decision, fired, in_review
from tests.rewards.helpers import balance, days, redeem_credit
from tests.scenarios import PAY_AT_SIGNUP


async def test_a_ring_closing_days_later_holds_every_link_and_claws_back_what_was_paid(tenant, db):
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP)
    await h.without_referrer_memory(tenant, program["id"])  # the ring alone
    people = ["ann", "ben", "cat"]
    codes = {p: (await scenarios.code_for(tenant, program["id"], p))["code"] for p in people}
    links = []
    for i, (referrer, referee) in enumerate([("ann", "ben"), ("ben", "cat")]):
        links.append(
            await h.act(
                tenant,
                "SIGNUP",
                referee,
                f"signup-{referee}",
                code=codes[referrer],
                at=days(-6 + 2 * i),
                deviceId=f"dev-{referee}",
            )
        )
        await h.act(
            tenant,
            "PURCHASE",
            referee,
            f"order-{referee}",
            amount=5000,
            at=days(-6 + 2 * i),
            paymentFingerprint=f"card-{referee}",
        )
    assert await balance(tenant, "ann") == {"available": 1000, "held": 0}
    assert (await redeem_credit(tenant, "ann", 400, "checkout-ann"))["userErrors"] == []

    closing = await h.act(tenant, "SIGNUP", "ann", "signup-ann", code=codes["cat"], deviceId="dev-ann")
    found = await decision(tenant, closing["referral"]["id"])
    assert fired(found, "ring", "ann -> ben -> cat -> ann")["details"]["length"] == 3
    assert found["outcome"] == "REVIEW"
    ring = {closing["referral"]["id"], *(link["referral"]["id"] for link in links)}
    assert ring <= await in_review(tenant, program)
    for link in links:
        related = await decision(tenant, link["referral"]["id"], "RELATED")
        assert h.fired(related) == {"ring"} and "ann -> ben -> cat -> ann" in related["observations"][0]["evidence"]
    [credit] = await h.rewards_of(tenant, "ann")
    assert (credit["status"], credit["leakedAmount"]) == ("REVERSED", 400)
    assert await balance(tenant, "ann") == {"available": -400, "held": 0}
    assert [r["status"] for r in await h.rewards_of(tenant, "ben")] == ["REVERSED"]


async def test_a_chain_whose_far_end_shares_the_new_referees_device_is_a_ring_candidate(tenant):
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    await h.act(tenant, "SIGNUP", "ann", "signup-ann", deviceId="dev-ann", paymentFingerprint=None)
    ann, ben = [(await scenarios.code_for(tenant, program["id"], p))["code"] for p in ("ann", "ben")]
    first = await h.act(tenant, "SIGNUP", "ben", "signup-ben", code=ann, deviceId="dev-ben")
    honest = await h.act(tenant, "SIGNUP", "dan", "signup-dan", code=ben, deviceId="dev-dan")
    assert (await decision(tenant, honest["referral"]["id"]))["outcome"] == "ALLOW"

    open_ring = await h.act(tenant, "SIGNUP", "cat", "signup-cat", code=ben, deviceId="dev-ann")  # ann again, two steps down
    found = await decision(tenant, open_ring["referral"]["id"])
    candidate = fired(found, "ring_candidate", "ann", "ben")
    assert candidate["value"] == 1 and candidate["details"]["shared_with"] == ["ann"]
    assert found["outcome"] == "REVIEW"  # never a block on its own
    assert {open_ring["referral"]["id"], first["referral"]["id"]} <= await in_review(tenant, program)
