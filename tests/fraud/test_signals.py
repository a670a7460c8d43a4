"""Every fraud signal, one by one: a scenario where it fires and a legitimate look-alike
where it does not. Driven through recordAction as a merchant's server would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import scenarios
from tests.fraud import helpers as h
from tests.scenarios import PAY_AT_SIGNUP

ADDRESS = {
    "line1": "12 Main Street",
    "line2": "Apt. 4",
    "city": "Springfield",
    "region": "IL",
    "postalCode": "62704",
    "country": "US",
}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile Safari/604.1"


def days_ago(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)


async def join(
    tenant,
    customer: str,
    code: str | None = None,
    *,
    at: datetime | None = None,
    name: str | None = None,
    key: str | None = None,
    **context: Any,
) -> dict[str, Any]:
    """A SIGNUP (with the referral code, if any) at `at`, with request context."""
    extra = {k: v for k, v in {"referralCode": code, "occurredAt": at, "customerName": name}.items() if v is not None}
    return await h.record(
        tenant,
        type="SIGNUP",
        customerExternalId=customer,
        idempotencyKey=key or f"signup-{customer}",
        context=context or None,
        **extra,
    )


async def buy(tenant, customer: str, order: str, *, at: datetime | None = None, **context: Any) -> dict[str, Any]:
    extra = {"occurredAt": at} if at is not None else {}
    return await h.record(
        tenant,
        type="PURCHASE",
        customerExternalId=customer,
        idempotencyKey=order,
        orderId=order,
        amount=5000,
        currency="USD",
        context=context or None,
        **extra,
    )


async def code_of(tenant, program: dict[str, Any], customer: str) -> str:
    return (await scenarios.code_for(tenant, program["id"], customer))["code"]


async def decision(tenant, referral_id: str, stage: str = "REFERRAL") -> dict[str, Any]:
    """The referral's latest decision of `stage`."""
    return [d for d in await h.decisions(tenant, referral_id) if d["stage"] == stage][-1]


def observation(decision: dict[str, Any], signal: str) -> dict[str, Any] | None:
    matches = [o for o in decision["observations"] if o["signal"] == signal]
    return max(matches, key=lambda o: o["fired"]) if matches else None


def fired(decision: dict[str, Any], signal: str, *named: str) -> dict[str, Any]:
    """The signal's observation, which fired and whose evidence names each of `named`."""
    found = observation(decision, signal)
    assert found is not None and found["fired"], decision["observations"]
    for thing in named:
        assert thing in found["evidence"], found["evidence"]
    return found


def quiet(decision: dict[str, Any], signal: str) -> None:
    found = observation(decision, signal)
    assert found is None or not found["fired"], found


async def set_signal(tenant, program: dict[str, Any], signal: str, **setting: Any) -> None:
    data = await tenant.gql(h.SET_POLICY, {"programId": program["id"], "policy": {"signals": [{"signal": signal, **setting}]}})
    assert data["setFraudPolicy"]["userErrors"] == []


async def in_review(tenant, program: dict[str, Any]) -> set[str]:
    return {r["referral"]["id"] for r in await h.open_reviews(tenant, program["id"])}


async def assert_flagged_as_related(tenant, program, referral_ids: list[str], signal: str) -> None:
    """Each earlier referral got a RELATED decision for `signal` and sits in the review queue."""
    assert set(referral_ids) <= await in_review(tenant, program)
    for referral_id in referral_ids:
        related = await decision(tenant, referral_id, "RELATED")
        assert related["outcome"] == "REVIEW"
        assert h.fired(related) == {signal}


# --- one person, two accounts -------------------------------------------------------------


async def test_the_referrers_own_customer_id_typed_differently_is_blocked(tenant):
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    code = await code_of(tenant, program, "CUST-17")
    twin = await join(tenant, "cust-17 ", code)
    assert twin["action"]["attribution"] == "FRAUD_BLOCKED"
    assert fired(await decision(tenant, twin["referral"]["id"]), "same_customer", "'cust-17 '", "'CUST-17'")["value"] == 1

    neighbour = await join(tenant, "CUST-170", code)
    assert neighbour["action"]["attribution"] == "REFERRAL_CREATED"
    found = await decision(tenant, neighbour["referral"]["id"])
    assert observation(found, "same_customer") is None
    assert found["outcome"] == "ALLOW"


SAME_MAILBOX = [  # (referrer's email, referee's email, one mailbox)
    ("jane.doe@gmail.com", "janedoe+promo@googlemail.com", True),
    ("chris@outlook.com", "chris+deals@outlook.com", True),
    # dots are folded at Gmail only: at a company they are two mailboxes (and two people)
    ("j.doe@acme.com", "jdoe@acme.com", False),
]


async def test_the_referrers_own_mailbox_under_an_alias_is_blocked_and_earns_nothing(tenant):
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP)
    for i, (referrer_email, referee_email, blocked) in enumerate(SAME_MAILBOX):
        await join(tenant, f"referrer-{i}", email=referrer_email)
        joined = await join(tenant, f"referee-{i}", await code_of(tenant, program, f"referrer-{i}"), email=referee_email)
        found = await decision(tenant, joined["referral"]["id"])
        bought = await buy(tenant, f"referee-{i}", f"order-{i}")
        if blocked:
            assert joined["action"]["attribution"] == "FRAUD_BLOCKED"
            assert joined["referral"]["status"] == "REJECTED"
            assert found["outcome"] == "BLOCK"
            fired(found, "same_email", referee_email, referrer_email)
            assert bought["rewards"] == []
        else:
            assert joined["action"]["attribution"] == "REFERRAL_CREATED"
            assert observation(found, "same_email") is None
            assert found["outcome"] == "ALLOW"
            assert [r["status"] for r in bought["rewards"]] == ["AVAILABLE"]


SIMILAR_MAILBOX = [  # (referrer's email, referee's email, near-identical)
    ("jane.doe@gmail.com", "janedoe1@yahoo.com", True),
    ("mark_twain@example.com", "marktwain.77@example.net", True),
    ("john.smith@acme.com", "jane.smith@acme.com", False),  # colleagues
    ("ann@example.com", "anna@example.com", False),  # too short to mean anything
]


async def test_a_near_identical_mailbox_name_is_held_for_review(tenant):
    program = await h.program_with_credit(tenant)
    for i, (referrer_email, referee_email, fires) in enumerate(SIMILAR_MAILBOX):
        await join(tenant, f"referrer-{i}", email=referrer_email)
        joined = await join(tenant, f"referee-{i}", await code_of(tenant, program, f"referrer-{i}"), email=referee_email)
        found = await decision(tenant, joined["referral"]["id"])
        if fires:
            similar = fired(found, "similar_email", referee_email, referrer_email)
            assert 0.88 <= similar["value"] <= 1
            assert found["outcome"] == "REVIEW"
        else:
            quiet(found, "similar_email")
            assert found["outcome"] == "ALLOW", (referrer_email, referee_email)


async def test_the_referrers_full_name_at_the_same_email_domain_is_held_for_review(tenant):
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    await join(tenant, "referrer", name="Jane Doe", email="jd@acme.com")
    code = await code_of(tenant, program, "referrer")
    for referee, name, email, fires in [
        ("shouting", "JANE  DOE", "jane@acme.com", True),
        ("accented", "Jané Doe", "j@acme.com", True),
        ("colleague", "John Doe", "john@acme.com", False),  # the same surname
        ("namesake", "Jane Doe", "jane@globex.com", False),  # at another company
    ]:
        joined = await join(tenant, referee, code, name=name, email=email)
        found = await decision(tenant, joined["referral"]["id"])
        if fires:
            assert fired(found, "same_name_domain", "acme.com")["value"] == 1
            assert found["outcome"] == "REVIEW"
        else:
            assert observation(found, "same_name_domain") is None
            assert found["outcome"] == "ALLOW", referee


# --- identifiers shared with the referrer -------------------------------------------------


async def test_a_second_account_on_the_referrers_device_is_held_but_another_customers_device_is_not(tenant, other_tenant):
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    await join(tenant, "alice", deviceId="dev-alice")
    await join(tenant, "sister", deviceId="dev-tablet")  # a customer, but not the referrer
    await join(other_tenant, "alice", deviceId="dev-laptop")  # the same person at another shop
    code = await code_of(tenant, program, "alice")

    alias = await join(tenant, "alias", code, deviceId="dev-alice")
    found = await decision(tenant, alias["referral"]["id"])
    assert fired(found, "same_device", "dev-alice", "alice")["value"] == 1
    assert found["outcome"] == "REVIEW"

    for referee, device in (("niece", "dev-tablet"), ("friend", "dev-laptop")):
        joined = await join(tenant, referee, code, deviceId=device)
        found = await decision(tenant, joined["referral"]["id"])
        assert observation(found, "same_device") is None
        assert found["outcome"] == "ALLOW"


async def test_a_new_device_id_on_the_referrers_browser_fingerprint_adds_a_little_and_colleagues_nothing(tenant):
    program = await h.program_with_credit(tenant)
    await join(tenant, "alice", deviceId="dev-alice", deviceFingerprint="fp1_5e1f", email="alice@acme-widgets.example")
    code = await code_of(tenant, program, "alice")

    # a private window on alice's browser: a fresh device id, the same coarse fingerprint
    private = await join(tenant, "alias", code, deviceId="dev-private", deviceFingerprint="fp1_5e1f")
    found = await decision(tenant, private["referral"]["id"])
    assert fired(found, "same_fingerprint", "fp1_5e1f", "alice")["weight"] == 10
    quiet(found, "same_device")
    assert found["outcome"] == "ALLOW"  # weak alone: the same phone model and settings are common

    # the fingerprint also comes from the widget's click on the referee's side
    tracked = await tenant.gql(
        "mutation($input: TrackClickInput!) { trackClick(input: $input) { attributionToken userErrors { code } } }",
        {"input": {"code": code, "deviceId": "dev-phone", "deviceFingerprint": "fp1_5e1f"}},
        key=tenant.publishable_key,
    )
    clicked = await h.record(
        tenant,
        type="SIGNUP",
        customerExternalId="clicker",
        idempotencyKey="signup-clicker",
        attributionToken=tracked["trackClick"]["attributionToken"],
    )
    fired(await decision(tenant, clicked["referral"]["id"]), "same_fingerprint", "fp1_5e1f")

    colleague = await join(tenant, "bob", code, deviceFingerprint="fp1_5e1f", email="bob@acme-widgets.example")
    assert observation(await decision(tenant, colleague["referral"]["id"]), "same_fingerprint") is None


async def test_paying_with_the_referrers_card_holds_the_reward_for_review(tenant):
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP)
    await h.without_referrer_memory(tenant, program["id"])
    await buy(tenant, "alice", "alice-order", paymentFingerprint="card-alice")
    code = await code_of(tenant, program, "alice")
    await join(tenant, "alias", code)
    await join(tenant, "friend", code)

    bought = await buy(tenant, "alias", "order-1", paymentFingerprint="card-alice")
    assert [(r["status"], r["underReview"]) for r in bought["rewards"]] == [("HELD", True)]
    found = await decision(tenant, bought["referral"]["id"], "REWARD")
    assert fired(found, "same_payment", "card-alice", "alice")["value"] == 1
    assert found["outcome"] == "REVIEW"

    bought = await buy(tenant, "friend", "order-2", paymentFingerprint="card-friend")
    assert [(r["status"], r["underReview"]) for r in bought["rewards"]] == [("AVAILABLE", False)]
    assert observation(await decision(tenant, bought["referral"]["id"], "REWARD"), "same_payment") is None


async def test_shipping_to_the_referrers_address_is_noted_but_a_household_is_allowed(tenant):
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP)
    await buy(tenant, "alice", "alice-order", shippingAddress=ADDRESS)
    code = await code_of(tenant, program, "alice")
    await join(tenant, "roommate", code)
    await join(tenant, "neighbour", code)

    same_flat = {
        "line1": "12 main st",
        "line2": "apt 4",
        "city": "SPRINGFIELD",
        "region": "Illinois",
        "postalCode": "62704",
        "country": "us",
    }
    bought = await buy(tenant, "roommate", "order-1", shippingAddress=same_flat)
    found = await decision(tenant, bought["referral"]["id"], "REWARD")
    assert fired(found, "same_address", "12 main st", "alice")["value"] == 1
    assert found["outcome"] == "ALLOW"
    assert [r["status"] for r in bought["rewards"]] == ["AVAILABLE"]

    next_door = {**same_flat, "line2": "Apt 5"}
    bought = await buy(tenant, "neighbour", "order-2", shippingAddress=next_door)
    found = await decision(tenant, bought["referral"]["id"], "REWARD")
    assert observation(found, "same_address") is None
    assert not h.fired(found)


async def test_the_referrers_network_and_browser_within_three_days_is_held_for_review(tenant):
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    start = days_ago(10)
    await join(tenant, "alice", at=start, ip="198.51.100.7", userAgent=FIREFOX)
    code = await code_of(tenant, program, "alice")
    for referee, hours_later, fires in (("alias", 2, True), ("old-laptop", 96, False)):
        joined = await join(tenant, referee, code, at=start + timedelta(hours=hours_later), ip="198.51.100.7", userAgent=FIREFOX)
        found = await decision(tenant, joined["referral"]["id"])
        same = observation(found, "same_ip_user_agent")
        assert same is not None and same["value"] == pytest.approx(hours_later, abs=0.01)
        if fires:
            fired(found, "same_ip_user_agent", "198.51.100.7", "alice")
            fired(found, "shared_ip")
            assert found["outcome"] == "REVIEW"
        else:
            quiet(found, "same_ip_user_agent")
            quiet(found, "shared_ip")
            assert found["outcome"] == "ALLOW"


async def test_colleagues_at_their_companys_domain_share_the_office_network_and_browser_without_review(tenant):
    program = await h.program_with_credit(tenant)
    start = days_ago(10)
    await join(tenant, "alice", at=start, ip="198.51.100.7", userAgent=FIREFOX, email="alice.w@acme-widgets.example")
    code = await code_of(tenant, program, "alice")
    cases = (("bob", "bob.k@acme-widgets.example", False), ("carol", "carol.m@gmail.com", True))
    for hour, (referee, email, fires) in enumerate(cases, start=1):
        joined = await join(
            tenant, referee, code, at=start + timedelta(hours=hour), ip="198.51.100.7", userAgent=FIREFOX, email=email
        )
        found = await decision(tenant, joined["referral"]["id"])
        if fires:  # a free-mail address is no sign of working there
            fired(found, "same_ip_user_agent", "198.51.100.7", "alice")
        else:
            assert observation(found, "same_ip_user_agent") is None and observation(found, "shared_ip") is None
            assert found["outcome"] == "ALLOW"


async def test_a_household_sharing_the_referrers_ip_only_adds_a_little(tenant):
    program = await h.program_with_credit(tenant)
    start = days_ago(10)
    await join(tenant, "alice", at=start, ip="198.51.100.7", userAgent=FIREFOX)
    code = await code_of(tenant, program, "alice")
    for referee, hours_later, fires in (("husband", 3, True), ("guest", 80, False)):
        joined = await join(tenant, referee, code, at=start + timedelta(hours=hours_later), ip="198.51.100.7", userAgent=SAFARI)
        assert joined["action"]["attribution"] == "REFERRAL_CREATED"
        found = await decision(tenant, joined["referral"]["id"])
        assert observation(found, "same_ip_user_agent") is None
        if fires:
            assert fired(found, "shared_ip", "198.51.100.7", "alice")["value"] == pytest.approx(hours_later, abs=0.01)
            assert h.fired(found) == {"shared_ip"}
        else:
            quiet(found, "shared_ip")
        assert found["outcome"] == "ALLOW"


# --- identifiers shared with other referees of the program --------------------------------


async def test_a_device_used_by_an_earlier_referee_of_the_program_puts_both_referrals_in_review(tenant):
    program = await h.program_with_credit(tenant)
    newsletter = await scenarios.active_program(tenant, name="Newsletter friends")
    start = days_ago(3)
    first = await join(tenant, "bob", await code_of(tenant, program, "alice"), at=start, deviceId="dev-farm")
    assert (await decision(tenant, first["referral"]["id"]))["outcome"] == "ALLOW"

    # another referrer of the same program: a farm feeds whoever it likes
    second = await join(
        tenant, "carol", await code_of(tenant, program, "dave"), at=start + timedelta(hours=1), deviceId="dev-farm"
    )
    found = await decision(tenant, second["referral"]["id"])
    reuse = fired(found, "device_reuse", "dev-farm", "bob")
    assert reuse["value"] == 1
    assert reuse["relatedReferralIds"] == [first["referral"]["id"]]
    assert found["outcome"] == "REVIEW"
    await assert_flagged_as_related(tenant, program, [first["referral"]["id"]], "device_reuse")

    # the family tablet: alice's referee in another program, then her referee in this one
    await join(tenant, "erin", await code_of(tenant, newsletter, "alice"), at=start + timedelta(hours=2), deviceId="dev-family")
    joined = await join(
        tenant, "frank", await code_of(tenant, program, "alice"), at=start + timedelta(hours=3), deviceId="dev-family"
    )
    found = await decision(tenant, joined["referral"]["id"])
    assert observation(found, "device_reuse") is None
    assert found["outcome"] == "ALLOW"
    assert await in_review(tenant, newsletter) == set()


async def test_a_card_used_by_an_earlier_referee_holds_the_reward_and_flags_the_first(tenant):
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP)
    await h.without_referrer_memory(tenant, program["id"])
    code = await code_of(tenant, program, "alice")
    for referee in ("bob", "carol", "dan"):
        await join(tenant, referee, code)
    await buy(tenant, "mum", "mum-order", paymentFingerprint="card-mum")  # a customer, not a referee
    first = await buy(tenant, "bob", "order-1", paymentFingerprint="card-farm")
    assert [r["status"] for r in first["rewards"]] == ["AVAILABLE"]

    second = await buy(tenant, "carol", "order-2", paymentFingerprint="card-farm")
    assert [(r["status"], r["underReview"]) for r in second["rewards"]] == [("HELD", True)]
    found = await decision(tenant, second["referral"]["id"], "REWARD")
    assert fired(found, "payment_reuse", "card-farm", "bob")["value"] == 1
    assert found["outcome"] == "REVIEW"
    await assert_flagged_as_related(tenant, program, [first["referral"]["id"]], "payment_reuse")

    gift = await buy(tenant, "dan", "order-3", paymentFingerprint="card-mum")  # mum paid for her son
    assert [r["status"] for r in gift["rewards"]] == ["AVAILABLE"]
    assert observation(await decision(tenant, gift["referral"]["id"], "REWARD"), "payment_reuse") is None


async def test_five_referees_behind_one_ip_within_an_hour_are_all_reviewed_but_a_carriers_ip_is_not(tenant):
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    codes = [await code_of(tenant, program, referrer) for referrer in ("alice", "dave")]
    start = days_ago(10)
    # a mobile carrier's shared address sees customers too, but spread over days
    carrier = [await join(tenant, f"commuter-{i}", codes[i % 2], at=start + timedelta(days=i), ip="100.64.9.9") for i in range(5)]
    found = await decision(tenant, carrier[-1]["referral"]["id"])
    assert observation(found, "ip_burst") is None
    assert found["outcome"] == "ALLOW"
    assert await in_review(tenant, program) == set()

    farm = [
        await join(tenant, f"visitor-{i}", codes[i % 2], at=start + timedelta(days=6, minutes=10 * i), ip="100.64.7.1")
        for i in range(5)
    ]
    found = await decision(tenant, farm[-1]["referral"]["id"])
    earlier = [j["referral"]["id"] for j in farm[:-1]]
    burst = fired(found, "ip_burst", "100.64.7.1", "visitor-0", "visitor-3")
    assert burst["value"] == 5
    assert sorted(burst["relatedReferralIds"]) == sorted(earlier)
    assert found["outcome"] == "REVIEW"
    await assert_flagged_as_related(tenant, program, earlier, "ip_burst")
    assert await in_review(tenant, program) == {*earlier, farm[-1]["referral"]["id"]}


# --- who the referee is -------------------------------------------------------------------


async def test_a_throwaway_mailbox_is_held_for_review(tenant):
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    code = await code_of(tenant, program, "alice")
    for referee, email, domain in [
        ("bob", "bob@mailinator.com", "mailinator.com"),
        ("carol", "carol@x.mailinator.com", "mailinator.com"),
        ("dan", "dan@mailinator.com.example.org", None),
    ]:
        joined = await join(tenant, referee, code, email=email)
        found = await decision(tenant, joined["referral"]["id"])
        if domain:
            assert fired(found, "disposable_email", email, domain)["value"] == 1
            assert found["outcome"] == "REVIEW"
        else:
            assert observation(found, "disposable_email") is None
            assert found["outcome"] == "ALLOW"


async def test_numbered_mailboxes_behind_one_referrer_are_all_reviewed(tenant):
    program = await h.program_with_credit(tenant)
    for referrer, emails, fires in [
        ("alice", ["deals1@example.com", "deals2@example.com", "deals.3@example.com"], True),
        ("bella", ["anna1990@gmail.com", "ben1985@gmail.com", "chris2001@gmail.com"], False),  # friends' birth years
        ("chloe", ["deals1@example.net", "deals2@example.org", "deals3@example.info"], False),
    ]:
        code = await code_of(tenant, program, referrer)
        joined = [await join(tenant, f"{referrer}-{i}", code, email=email) for i, email in enumerate(emails)]
        found = await decision(tenant, joined[-1]["referral"]["id"])
        earlier = [j["referral"]["id"] for j in joined[:-1]]
        if fires:
            pattern = fired(found, "patterned_mailboxes", "dealsN@example.com", "deals1@example.com", "alice")
            assert pattern["value"] == 3
            assert found["outcome"] == "REVIEW"
            await assert_flagged_as_related(tenant, program, earlier, "patterned_mailboxes")
        else:
            quiet(found, "patterned_mailboxes")
            assert found["outcome"] == "ALLOW"
            assert not set(earlier) & await in_review(tenant, program)


# --- the shape of the referral graph ------------------------------------------------------


async def test_a_referral_that_closes_a_ring_puts_the_whole_ring_in_review_but_a_chain_is_fine(tenant):
    program = await h.program_with_credit(tenant)
    for people in (["ann", "ben"], ["cat", "dov", "eli"], ["fay", "gus", "hal", "ivy"]):
        codes = [await code_of(tenant, program, person) for person in people]
        chain = [await join(tenant, people[i + 1], codes[i]) for i in range(len(people) - 1)]
        for link in chain:
            assert observation(await decision(tenant, link["referral"]["id"]), "ring") is None

        closing = await join(tenant, people[0], codes[-1])
        found = await decision(tenant, closing["referral"]["id"])
        ring = fired(found, "ring", " -> ".join([*people, people[0]]))
        assert ring["value"] == 1
        assert found["outcome"] == "REVIEW"
        await assert_flagged_as_related(tenant, program, [link["referral"]["id"] for link in chain], "ring")

    friends = ["jo", "kim", "lou", "max", "ned"]  # each refers the next: no way back
    codes = [await code_of(tenant, program, person) for person in friends[:-1]]
    for i in range(len(friends) - 1):
        joined = await join(tenant, friends[i + 1], codes[i])
        found = await decision(tenant, joined["referral"]["id"])
        assert observation(found, "ring") is None
        assert found["outcome"] == "ALLOW"


# --- velocity -----------------------------------------------------------------------------


async def referrals_at(tenant, program, referrer: str, start: datetime, count: int, spacing: timedelta) -> list[str]:
    code = await code_of(tenant, program, referrer)
    return [(await join(tenant, f"{referrer}-{i}", code, at=start + i * spacing))["referral"]["id"] for i in range(count)]


async def assert_burst(tenant, program, referrals: list[str], signal: str, referrer: str) -> None:
    """The last referral of the burst fired `signal` and every earlier one is in review with it."""
    found = await decision(tenant, referrals[-1])
    assert fired(found, signal, referrer)["value"] == len(referrals)
    assert found["outcome"] == "REVIEW"
    await assert_flagged_as_related(tenant, program, referrals[:-1], signal)


async def assert_no_burst(tenant, program, referrals: list[str], *signals: str) -> None:
    for referral_id in referrals:
        found = await decision(tenant, referral_id)
        for signal in signals:
            quiet(found, signal)
        assert found["outcome"] == "ALLOW"
    assert not set(referrals) & await in_review(tenant, program)


async def test_ten_referrals_within_an_hour_put_the_whole_burst_in_review(tenant):
    program = await h.program_with_credit(tenant)
    # the hourly count alone (the referrer's own pace catches it sooner: test_velocity_windows.py)
    await set_signal(tenant, program, "referrals_above_baseline", enabled=False)
    start = days_ago(5)
    busy = await referrals_at(tenant, program, "bella", start, 10, timedelta(hours=2))  # a busy day, not a burst
    await assert_no_burst(tenant, program, busy, "referrals_per_hour", "referrals_per_day")
    burst = await referrals_at(tenant, program, "alice", start, 10, timedelta(minutes=6))
    await assert_burst(tenant, program, burst, "referrals_per_hour", "alice")


async def test_a_merchants_stricter_referral_limits_apply_per_hour_and_per_day(tenant):
    program = await h.program_with_credit(tenant)
    data = await tenant.gql(
        h.SET_POLICY,
        {
            "programId": program["id"],
            "policy": {
                "signals": [
                    {"signal": "referrals_per_hour", "threshold": 2},
                    {"signal": "referrals_per_day", "threshold": 5},
                ]
            },
        },
    )
    assert data["setFraudPolicy"]["userErrors"] == []
    start = days_ago(5)
    spread = await referrals_at(tenant, program, "carol", start, 5, timedelta(hours=7))  # over more than a day
    await assert_no_burst(tenant, program, spread, "referrals_per_hour", "referrals_per_day")
    await assert_burst(
        tenant,
        program,
        await referrals_at(tenant, program, "alice", start, 2, timedelta(minutes=10)),
        "referrals_per_hour",
        "alice",
    )
    await assert_burst(
        tenant, program, await referrals_at(tenant, program, "bella", start, 5, timedelta(hours=3)), "referrals_per_day", "bella"
    )


@pytest.mark.parametrize(
    ("signal", "burst", "spread"),
    [
        ("rewards_per_hour", timedelta(minutes=10), timedelta(hours=2)),
        ("rewards_per_day", timedelta(hours=5), timedelta(hours=9)),
    ],
)
async def test_a_burst_of_rewards_holds_the_next_one_for_review(tenant, signal, burst, spread):
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP)
    # the merchant's own limit: three rewards earned in the window are worth a look
    await set_signal(tenant, program, signal, threshold=3, action="REVIEW")
    start = days_ago(10)
    for referrer, spacing, fires in (("bella", spread, False), ("alice", burst, True)):
        code = await code_of(tenant, program, referrer)
        for i in range(4):  # referred on separate days: only the rewards come in a burst
            await join(tenant, f"{referrer}-{i}", code, at=start + timedelta(days=i))
        bought = [
            await buy(tenant, f"{referrer}-{i}", f"{referrer}-order-{i}", at=start + timedelta(days=5) + i * spacing)
            for i in range(4)
        ]
        assert all(r["status"] == "AVAILABLE" for b in bought[:-1] for r in b["rewards"])
        found = await decision(tenant, bought[-1]["referral"]["id"], "REWARD")
        if fires:
            assert fired(found, signal, referrer)["value"] == 3
            assert found["outcome"] == "REVIEW"
            assert [(r["status"], r["underReview"]) for r in bought[-1]["rewards"]] == [("HELD", True)]
        else:
            quiet(found, signal)
            assert found["outcome"] == "ALLOW"
            assert [r["status"] for r in bought[-1]["rewards"]] == ["AVAILABLE"]


# --- the merchant's lists -----------------------------------------------------------------


BLOCKLIST = [  # (kind, listed, context key, a referee's value it names, as shown, a look-alike it does not name)
    ("EMAIL", "Fraudster@Gmail.com", "email", "fraud.ster+x@gmail.com", "fraud.ster+x@gmail.com", "fraudster@outlook.com"),
    ("DOMAIN", "spam.example", "email", "bob@mx.spam.example", "bob@mx.spam.example", "bob@spam.example.org"),
    ("IP", "203.0.113.66", "ip", "203.0.113.66", "203.0.113.66", "203.0.113.67"),
    ("IP", "2001:db8::66", "ip", "2001:DB8:0::66", "2001:db8::66", "2001:db8::67"),
    ("IP_RANGE", "192.0.2.0/24", "ip", "192.0.2.200", "192.0.2.200", "192.0.3.1"),
    ("IP_RANGE", "2001:db8:ab00::/40", "ip", "2001:db8:ab12::5", "2001:db8:ab12::5", "2001:db8:ff00::5"),
    ("DEVICE", "dev-stolen", "deviceId", "dev-stolen", "dev-stolen", "dev-stolen-2"),
]


async def test_a_referee_on_the_blocklist_is_blocked_and_a_look_alike_is_not(tenant):
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    await scenarios.allow_bursts(tenant, program["id"])  # fourteen referrals in a minute, on purpose
    for kind, listed, *_ in BLOCKLIST:
        data = await tenant.gql(h.ADD_LIST_ENTRY, {"kind": kind, "value": listed, "note": f"chargebacks {kind}"})
        assert data["addFraudListEntry"]["userErrors"] == []
    code = await code_of(tenant, program, "alice")

    for i, (kind, _listed, context_key, hit, shown, miss) in enumerate(BLOCKLIST):
        blocked = await join(tenant, f"mallory-{i}", code, **{context_key: hit})
        assert blocked["action"]["attribution"] == "FRAUD_BLOCKED", (kind, hit)
        found = await decision(tenant, blocked["referral"]["id"])
        assert found["outcome"] == "BLOCK"
        fired(found, "blocklist", shown, kind, f"chargebacks {kind}")

        allowed = await join(tenant, f"bob-{i}", code, **{context_key: miss})
        assert allowed["action"]["attribution"] == "REFERRAL_CREATED", (kind, miss)
        found = await decision(tenant, allowed["referral"]["id"])
        assert observation(found, "blocklist") is None
        assert found["outcome"] == "ALLOW"


async def test_a_referee_is_checked_on_the_identifiers_of_earlier_visits_too(tenant):
    """The check's first read looks up the identifiers the action has just recorded; a
    referee's devices from an earlier visit are looked up as well, in the list and among the
    program's other referees."""
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    code = await code_of(tenant, program, "alice")
    await tenant.gql(h.ADD_LIST_ENTRY, {"kind": "DEVICE", "value": "dev-stolen", "note": "chargebacks"})
    await join(tenant, "mallory", key="visit-mallory", deviceId="dev-stolen")  # no code: not referred yet
    blocked = await join(tenant, "mallory", code, deviceId="dev-new")  # on another device this time
    assert blocked["action"]["attribution"] == "FRAUD_BLOCKED"
    fired(await decision(tenant, blocked["referral"]["id"]), "blocklist", "dev-stolen", "chargebacks")

    first = await join(tenant, "bob", code, deviceId="dev-shared")
    await join(tenant, "carol", key="visit-carol", deviceId="dev-shared")
    second = await join(tenant, "carol", code, deviceId="dev-carol")
    fired(await decision(tenant, second["referral"]["id"]), "device_reuse", "dev-shared", "bob")
    assert (
        first["referral"]["id"] in fired(await decision(tenant, second["referral"]["id"]), "device_reuse")["relatedReferralIds"]
    )


async def test_a_stolen_card_a_spammers_domain_and_only_this_shops_lists_block(tenant, other_tenant):
    program = await h.program_with_credit(tenant)
    for kind, value in (("PAYMENT", "card-stolen"), ("DOMAIN", "spam.example")):
        await tenant.gql(h.ADD_LIST_ENTRY, {"kind": kind, "value": value})
    await other_tenant.gql(h.ADD_LIST_ENTRY, {"kind": "DEVICE", "value": "dev-bob"})
    code = await code_of(tenant, program, "alice")

    joined = await join(tenant, "mallory", code)
    assert joined["action"]["attribution"] == "REFERRAL_CREATED"
    bought = await buy(tenant, "mallory", "order-1", paymentFingerprint="card-stolen")  # shows up at checkout
    assert bought["rewards"] == []
    assert bought["referral"]["status"] == "REJECTED"
    fired(await decision(tenant, joined["referral"]["id"], "REWARD"), "blocklist", "card-stolen")
    bought = await buy(tenant, "alice", "order-2", paymentFingerprint="card-stolen-2")
    assert bought["referral"] is None

    await join(tenant, "spammer", email="promo@spam.example")  # the referrer, this time
    blocked = await join(tenant, "victim", await code_of(tenant, program, "spammer"))
    assert blocked["action"]["attribution"] == "FRAUD_BLOCKED"
    fired(await decision(tenant, blocked["referral"]["id"]), "blocklist", "referrer's email promo@spam.example")

    allowed = await join(tenant, "bob", code, deviceId="dev-bob")  # listed at another shop only
    assert allowed["action"]["attribution"] == "REFERRAL_CREATED"
    assert observation(await decision(tenant, allowed["referral"]["id"]), "blocklist") is None


async def test_a_banned_customer_is_blocked_as_referrer_and_referee_until_the_ban_is_lifted(tenant):
    program = await h.program_with_credit(tenant)
    await join(tenant, "mallory")
    banned = await tenant.gql(h.SET_CUSTOMER_STATUS, {"customer": "mallory", "status": "BANNED", "note": "chargebacks"})
    assert banned["setCustomerFraudStatus"]["userErrors"] == []
    pairs = {"referrer": ("mallory", "bob"), "referee": ("alice", "mallory")}

    for role, (referrer, referee) in pairs.items():
        joined = await join(tenant, referee, await code_of(tenant, program, referrer), key=f"{referee}-first")
        assert joined["action"]["attribution"] == "FRAUD_BLOCKED"
        found = await decision(tenant, joined["referral"]["id"])
        assert found["outcome"] == "BLOCK"
        fired(found, "banned_customer", f"{role} mallory is banned", "chargebacks")

    lifted = await tenant.gql(h.SET_CUSTOMER_STATUS, {"customer": "mallory", "status": "NONE"})
    assert lifted["setCustomerFraudStatus"]["userErrors"] == []
    next_program = await h.program_with_credit(tenant)  # the blocked referrals stay rejected in the first
    for referrer, referee in pairs.values():
        joined = await join(tenant, referee, await code_of(tenant, next_program, referrer), key=f"{referee}-again")
        assert joined["action"]["attribution"] == "REFERRAL_CREATED"
        found = await decision(tenant, joined["referral"]["id"])
        assert observation(found, "banned_customer") is None
        assert found["outcome"] == "ALLOW"
