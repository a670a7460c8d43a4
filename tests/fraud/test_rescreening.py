"""Re-screening when evidence arrives later: a customer seen with a card, device, address or
mailbox they were never seen with writes a `fraud.rescreen` job in the same transaction; the
worker checks their referrals again. A new REVIEW or BLOCK holds what is held, claws back what
was already spendable (a spent part is owed and counted in `leakedAmount`), voids unused
coupons."""

from __future__ import annotations

from sqlalchemy import func, select

from app.worker.models import OutboxJob
from tests import graphql_ops as ops
from tests import scenarios
from tests.fraud import helpers as h
from tests.fraud.test_clearance import FIRST_ORDER_COUPON
from tests.payouts.helpers import run_jobs
from tests.rewards.helpers import balance, create_rule, days, redeem_credit
from tests.scenarios import PAY_AT_SIGNUP

LEAKS = """
query($referralId: ID!, $programId: ID!) {
  referral(id: $referralId) { status leakedAmount { amount unit } }
  program(id: $programId) { leakedAmount { amount unit } }
}"""


async def rescreen_jobs(db) -> int:
    from app.db import create_session_factory

    async with create_session_factory(db)() as session:
        return await session.scalar(select(func.count()).select_from(OutboxJob).where(OutboxJob.actor == "fraud.rescreen"))


async def paid_at_once_shop(tenant) -> tuple[dict, str]:
    """Rewards spendable at once (the risk this issue is about), a referee first-order coupon."""
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP)
    await create_rule(tenant, program["id"], **FIRST_ORDER_COUPON)
    await h.act(tenant, "SIGNUP", "alice", "signup-alice", at=days(-10), deviceId="dev-alice", email="alice@example.com")
    return program, (await scenarios.code_for(tenant, program["id"], "alice"))["code"]


async def test_the_referrers_own_card_seen_later_claws_back_spent_credit_and_voids_the_unused_coupon(tenant, db):
    program, code = await paid_at_once_shop(tenant)
    joined = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, at=days(-3), deviceId="dev-bob")
    await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, at=days(-2), paymentFingerprint="card-x")
    await run_jobs(db)
    assert await balance(tenant, "alice") == {"available": 1000, "held": 0}
    assert (await redeem_credit(tenant, "alice", 600, "checkout-1"))["userErrors"] == []

    # the referrer now pays with the card their "friend" used: a job is written with the purchase
    before = await rescreen_jobs(db)
    await h.act(tenant, "PURCHASE", "alice", "order-2", amount=5000, paymentFingerprint="card-x")
    assert await rescreen_jobs(db) == before + 1
    await run_jobs(db)

    [review] = await h.open_reviews(tenant, program["id"])
    assert review["referral"]["id"] == joined["referral"]["id"] and "same_payment" in review["signals"]
    [decision] = [d for d in await h.decisions(tenant, joined["referral"]["id"]) if d["stage"] == "RESCREEN"]
    assert decision["outcome"] == "REVIEW"
    [credit] = await h.rewards_of(tenant, "alice")
    assert (credit["status"], credit["leakedAmount"]) == ("REVERSED", 600)
    assert await balance(tenant, "alice") == {"available": -600, "held": 0}  # owed, netted against what she earns next
    [coupon] = await h.rewards_of(tenant, "bob")
    assert coupon["status"] == "REVERSED" and coupon["leakedAmount"] == 0  # unused: voided, nothing lost
    leaks = await tenant.gql(LEAKS, {"referralId": joined["referral"]["id"], "programId": program["id"]})
    assert leaks["referral"]["leakedAmount"] == [{"amount": 600, "unit": "USD"}]
    assert leaks["program"]["leakedAmount"] == [{"amount": 600, "unit": "USD"}]

    await run_jobs(db)  # delivered again, or run again: nothing more happens
    assert await balance(tenant, "alice") == {"available": -600, "held": 0}


async def test_the_referrers_device_seen_later_holds_a_reward_still_waiting_for_clearance(tenant, db):
    program = await h.program_with_credit(tenant)  # the default: clearance after quiet days
    await h.act(tenant, "SIGNUP", "alice", "signup-alice", at=days(-10), deviceId="dev-phone")
    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]
    joined = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, at=days(-2), deviceId="dev-laptop")
    await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, at=days(-2), deviceId="dev-laptop")
    assert h.holds(await h.rewards_of(tenant, "alice")) == [("HELD", False, True)]

    await h.act(tenant, "PURCHASE", "alice", "order-2", amount=2000, at=days(-1), deviceId="dev-laptop")
    await run_jobs(db)

    assert h.holds(await h.rewards_of(tenant, "alice")) == [("HELD", True, True)]
    [review] = await h.open_reviews(tenant, program["id"])
    assert review["referral"]["id"] == joined["referral"]["id"] and "same_device" in review["signals"]
    assert await h.clear_due(db, at=days(2)) == 0  # a review holds it: no clearance by the clock
    assert await balance(tenant, "alice") == {"available": 0, "held": 1000}
    leaks = await tenant.gql(LEAKS, {"referralId": joined["referral"]["id"], "programId": program["id"]})
    assert leaks["referral"]["leakedAmount"] == [] and leaks["program"]["leakedAmount"] == []


async def test_changing_the_referrers_mailbox_to_the_referees_blocks_the_referral(tenant, db):
    program, code = await paid_at_once_shop(tenant)
    await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, deviceId="dev-bob", email="bobby.tables@gmail.com")
    joined = await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, paymentFingerprint="card-bob")
    assert h.holds(joined["rewards"]) == [("AVAILABLE", False, False)]

    changed = await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "alice", "email": "bobbytables+me@gmail.com"}})
    assert changed["upsertCustomer"]["userErrors"] == []
    await run_jobs(db)

    assert await h.referral_status(tenant, joined["referral"]["id"]) == "REJECTED"
    assert [r["status"] for r in await h.rewards_of(tenant, "alice")] == ["REVERSED"]
    assert await balance(tenant, "alice") == {"available": 0, "held": 0}


async def test_a_repeat_sighting_and_a_retried_action_write_no_job(tenant, db):
    program, code = await paid_at_once_shop(tenant)
    await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, deviceId="dev-bob")
    first = await rescreen_jobs(db)
    await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, deviceId="dev-bob")  # nothing new
    await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, deviceId="dev-bob")  # a retry
    assert await rescreen_jobs(db) == first
    await h.act(tenant, "PURCHASE", "bob", "order-2", amount=5000, deviceId="dev-bob", paymentFingerprint="card-new")
    assert await rescreen_jobs(db) == first + 1


async def test_a_clean_customer_seen_with_new_evidence_is_checked_again_and_keeps_everything(tenant, db):
    program, code = await paid_at_once_shop(tenant)
    joined = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, deviceId="dev-bob")
    await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, paymentFingerprint="card-bob")
    await h.act(tenant, "PURCHASE", "alice", "order-2", amount=5000, paymentFingerprint="card-alice", deviceId="dev-alice-2")
    await run_jobs(db)

    stages = [(d["stage"], d["outcome"]) for d in await h.decisions(tenant, joined["referral"]["id"])]
    assert ("RESCREEN", "ALLOW") in stages
    assert h.holds(await h.rewards_of(tenant, "alice")) == [("AVAILABLE", False, False)]
    assert await h.open_reviews(tenant, program["id"]) == []


async def test_on_sqlite_a_new_referees_purchase_writes_a_job_only_if_it_could_find_something(tenant, db, backend):
    """A new referee's first purchase with a device and card nobody was seen with: the job could
    only find the referral this purchase makes and screens itself. SQLite, whose writers take
    turns, leaves it out; PostgreSQL writes it (a sighting of the same card may be committing
    alongside) and the worker finds nothing to do. A device another customer was seen with, or
    a customer who has a referral to check, writes the job on both."""
    program, code = await paid_at_once_shop(tenant)
    before = await rescreen_jobs(db)
    bob = await h.act(
        tenant, "PURCHASE", "bob", "order-bob", code=code, amount=5000, deviceId="dev-bob", paymentFingerprint="card-bob"
    )
    assert bob["referral"] is not None
    written = await rescreen_jobs(db) - before
    assert written == (1 if backend == "postgresql" else 0)
    await run_jobs(db)
    assert [d["stage"] for d in await h.decisions(tenant, bob["referral"]["id"])] == ["REFERRAL"]  # nothing re-screened

    await h.act(
        tenant, "PURCHASE", "carol", "order-carol", code=code, amount=5000, deviceId="dev-alice", paymentFingerprint="card-c"
    )
    assert await rescreen_jobs(db) - before == written + 1  # alice was seen with that device
    await h.act(tenant, "PURCHASE", "bob", "order-bob-2", amount=5000, paymentFingerprint="card-bob-2")
    assert await rescreen_jobs(db) - before == written + 2  # bob has a referral to check with his new card


async def test_the_job_names_exactly_the_new_identifiers_and_is_sent_after_commit(tenant, db):
    """The job's arguments are what the worker re-screens with: the customer, the identifiers
    never seen with them before (of the kinds worth it), sorted, the time and the action. On
    PostgreSQL the upsert writes the job in the same statement; the session still sends it."""
    from datetime import UTC, datetime

    from app.db import create_session_factory, new_id
    from app.fraud import identifiers
    from app.personal import lookup_hash
    from app.referrals.models import Action, Customer
    from app.worker import outbox

    program, code = await paid_at_once_shop(tenant)
    await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, deviceId="dev-bob")
    at = datetime.now(UTC)  # after bob's referral: the job has it to check (SQLite writes no job that could not)
    address = {"line1": "12 Main Street", "city": "Springfield", "postalCode": "12345", "country": "US"}
    factory = create_session_factory(db)
    async with factory() as session:
        bob = await session.scalar(select(Customer).where(Customer.merchant_id == tenant.id, Customer.external_id == "bob"))
        action = Action(
            id=new_id(),
            merchant_id=tenant.id,
            customer_id=bob.id,
            occurred_at=at,
            device_id="dev-bob",  # seen at signup: not new
            device_fingerprint=None,
            ip="203.0.113.7",  # new, but a bare IP alone is not worth a re-screening
            user_agent="Mozilla/5.0 (test)",
            payment_fingerprint="card-new",
            shipping_address=address,
        )
        await identifiers.record_sightings(session, action=action)
        [pending] = outbox.pending_jobs(session)
        await session.commit()

    new = sorted(
        (kind, lookup_hash(tenant.id, kind, value))
        for kind, value in [
            ("PAYMENT", "card-new"),
            ("ADDRESS", identifiers.normalized_address(address)),
            ("IP_UA", identifiers.ip_with_user_agent("203.0.113.7", "Mozilla/5.0 (test)")),
        ]
    )
    expected = {
        "customer_id": str(bob.id),
        "identifiers": ";".join(f"{kind}:{value_hash}" for kind, value_hash in new),
        "at": at.isoformat(),
        "action_id": str(action.id),
    }
    async with factory() as session:
        [job] = (
            await session.scalars(
                select(OutboxJob).where(
                    OutboxJob.actor == "fraud.rescreen", OutboxJob.args["action_id"].as_string() == str(action.id)
                )
            )
        ).all()
        assert (job.id, job.merchant_id, job.status.value, job.attempts) == (pending.id, tenant.id, "PENDING", 0)
        assert job.args == expected == pending.args

        # seen again, later: nothing new, no job, and the sightings keep their first time
        await identifiers.record_sightings(session, action=action)
        assert outbox.pending_jobs(session) == []
        await session.commit()


async def test_an_identifier_many_customers_share_is_no_evidence_about_them(tenant, db):
    """Another customer showing the referee's card has the referee's referral checked again;
    a card (or network, or phone model) seen with more than MAX_SHARING customers says nothing
    about any of them, and checks nothing."""
    from app.fraud.rescreening import MAX_SHARING

    async def rescreens() -> int:
        return len([d for d in await h.decisions(tenant, joined["referral"]["id"]) if d["stage"] == "RESCREEN"])

    program, code = await paid_at_once_shop(tenant)
    joined = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, deviceId="dev-bob", paymentFingerprint="card-bob")
    await h.act(tenant, "PURCHASE", "bob", "order-bob", amount=5000, paymentFingerprint="card-popular")
    await run_jobs(db)
    assert await rescreens() == 0

    await h.act(tenant, "PURCHASE", "dave", "order-dave", amount=5000, paymentFingerprint="card-bob")
    await run_jobs(db)
    assert await rescreens() == 1  # dave was seen with bob's card: bob's referral is judged again

    for n in range(MAX_SHARING):  # bob and ten others: the card is everybody's
        await h.act(tenant, "SIGNUP", f"other-{n}", f"signup-other-{n}", paymentFingerprint="card-popular")
    await run_jobs(db)
    before = await rescreens()
    await h.act(tenant, "PURCHASE", "erin", "order-erin", amount=5000, paymentFingerprint="card-popular")
    await run_jobs(db)
    assert await rescreens() == before
