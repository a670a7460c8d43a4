"""Backtesting a proposed fraud policy on a program's stored referrals (simulateFraudPolicy)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tests import scenarios
from tests.conftest import system_connection
from tests.fraud import helpers as h
from tests.rewards.helpers import create_rule, credit_rule

SIMULATE = """
query($programId: ID!, $policy: FraudPolicyInput!, $from: DateTime!, $to: DateTime!) {
  simulateFraudPolicy(programId: $programId, policy: $policy, from: $from, to: $to) {
    referralsScored
    current { version reviewScore blockScore }
    proposed { version reviewScore blockScore signals { signal weight enabled } }
    before { outcome count }
    after { outcome count }
    moves {
      before after count
      rewardValue { unit amount }
      sample { referralId before { outcome score signals } after { outcome score signals } }
    }
  }
}"""

HISTORY = "query($programId: ID!) { fraudPolicyHistory(programId: $programId) { version } }"

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
PERIOD = (BASE - timedelta(hours=1), BASE + timedelta(days=2))


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


@dataclass
class History:
    program_id: str
    clean: list[str] = field(default_factory=list)
    same_device: list[str] = field(default_factory=list)
    households: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    trusted: list[str] = field(default_factory=list)
    early: str = ""  # a same-device referral before the period
    late: str = ""  # and one after it
    granted: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))  # referral -> unit -> amount

    def value_of(self, referral_ids: list[str]) -> list[dict[str, Any]]:
        total: dict[str, int] = defaultdict(int)
        for referral_id in referral_ids:
            for unit, amount in self.granted[referral_id].items():
                total[unit] += amount
        return [{"unit": unit, "amount": amount} for unit, amount in sorted(total.items())]


class Builder:
    """Referrals of one program made at past times through recordAction, each bought from."""

    def __init__(self, tenant, history: History) -> None:
        self.tenant, self.history, self.minute = tenant, history, 0

    def tick(self) -> datetime:
        self.minute += 7
        return at(self.minute)

    async def referrer(self, name: str, *, when: datetime | None = None, **context: Any) -> str:
        code = (await scenarios.code_for(self.tenant, self.history.program_id, name))["code"]
        await h.record(
            self.tenant,
            type="SIGNUP",
            customerExternalId=name,
            idempotencyKey=f"signup-{name}",
            occurredAt=when or self.tick(),
            context=context,
        )
        return code

    async def referee(
        self, name: str, code: str, *, when: datetime | None = None, purchases: int = 1, **context: Any
    ) -> dict[str, Any]:
        when = when or self.tick()
        joined = await h.record(
            self.tenant,
            type="SIGNUP",
            customerExternalId=name,
            idempotencyKey=f"signup-{name}",
            referralCode=code,
            occurredAt=when,
            context=context,
        )
        referral_id = joined["referral"]["id"]
        for i in range(purchases):
            bought = await h.record(
                self.tenant,
                type="PURCHASE",
                customerExternalId=name,
                idempotencyKey=f"order-{name}-{i}",
                orderId=f"order-{name}-{i}",
                amount=5000,
                currency="USD",
                occurredAt=when + timedelta(minutes=2 + i),
            )
            for reward in bought["rewards"]:
                granted = self.history.granted[referral_id]
                granted[reward["unit"]] = granted.get(reward["unit"], 0) + reward["amount"]
        return joined


async def live_outcome(tenant, referral_id: str) -> str:
    decisions = await h.decisions(tenant, referral_id)
    severity = ["ALLOW", "REVIEW", "BLOCK"]
    return max((d["outcome"] for d in decisions), key=severity.index)


async def build_history(tenant) -> History:
    """Under the default policy: 2 clean referrals, 2 second accounts on the referrer's device
    (REVIEW), 1 on the referrer's mailbox (BLOCK), 2 households sharing an IP and an address
    (score 40: ALLOW), 1 second account of a trusted referrer (ALLOW), and a device one on
    each side of the period. Each referral judged on its own (no referrer memory)."""
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    await create_rule(
        tenant, program["id"], **credit_rule(name="100 points", recipient="REFEREE", kind="POINTS", amount=100, currency=None)
    )
    history = History(program["id"])
    build = Builder(tenant, history)

    for i in (1, 2):
        code = await build.referrer(f"clean-referrer-{i}", deviceId=f"dev-cr{i}", ip=f"198.51.100.{i}")
        joined = await build.referee(f"clean-{i}", code, deviceId=f"dev-c{i}", ip=f"203.0.113.{i}")
        history.clean.append(joined["referral"]["id"])
    for i in (1, 2):
        code = await build.referrer(f"device-referrer-{i}", deviceId=f"dev-dr{i}", ip=f"198.51.100.1{i}")
        joined = await build.referee(f"device-{i}", code, purchases=3 - i, deviceId=f"dev-dr{i}", ip=f"203.0.113.1{i}")
        history.same_device.append(joined["referral"]["id"])

    code = await build.referrer("jane", email="jane.doe@gmail.com")
    joined = await build.referee("jane-2", code, email="janedoe+promo@googlemail.com")
    assert joined["action"]["attribution"] == "FRAUD_BLOCKED"
    history.blocked.append(joined["referral"]["id"])

    for i in (1, 2):
        home = {"line1": f"{i} Main Street", "city": "Springfield", "postalCode": "12345", "country": "US"}
        code = await build.referrer(f"parent-{i}", deviceId=f"dev-p{i}", ip=f"192.0.2.{i}", shippingAddress=home)
        joined = await build.referee(f"child-{i}", code, deviceId=f"dev-k{i}", ip=f"192.0.2.{i}", shippingAddress=home)
        history.households.append(joined["referral"]["id"])

    code = await build.referrer("trusted-referrer", deviceId="dev-tr", ip="198.51.100.30")
    status = await tenant.gql(h.SET_CUSTOMER_STATUS, {"customer": "trusted-referrer", "status": "TRUSTED"})
    assert status["setCustomerFraudStatus"]["userErrors"] == []
    joined = await build.referee("trusted-alias", code, deviceId="dev-tr", ip="203.0.113.30")
    history.trusted.append(joined["referral"]["id"])

    code = await build.referrer("early-referrer", when=BASE - timedelta(days=3), deviceId="dev-er")
    history.early = (await build.referee("early-alias", code, when=BASE - timedelta(days=3, minutes=-5), deviceId="dev-er"))[
        "referral"
    ]["id"]
    code = await build.referrer("late-referrer", when=PERIOD[1] + timedelta(hours=1), deviceId="dev-lr")
    history.late = (await build.referee("late-alias", code, when=PERIOD[1] + timedelta(hours=2), deviceId="dev-lr"))["referral"][
        "id"
    ]

    expected = {
        "ALLOW": history.clean + history.households + history.trusted,
        "REVIEW": history.same_device + [history.early, history.late],
        "BLOCK": history.blocked,
    }
    for outcome, referral_ids in expected.items():
        for referral_id in referral_ids:
            assert await live_outcome(tenant, referral_id) == outcome
    assert all(history.granted[r] for r in history.same_device + history.households + history.clean)
    assert not history.granted[history.blocked[0]]
    return history


async def simulate(tenant, program_id: str, policy: dict[str, Any], period=PERIOD) -> dict[str, Any]:
    return (await tenant.gql(SIMULATE, variables(program_id, policy, period)))["simulateFraudPolicy"]


def variables(program_id: str, policy: dict[str, Any], period) -> dict[str, Any]:
    start, end = period
    return {
        "programId": program_id,
        "policy": policy,
        "from": start if isinstance(start, str) else start.isoformat(),
        "to": end if isinstance(end, str) else end.isoformat(),
    }


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {row["outcome"]: row["count"] for row in rows}


def moves(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["before"], m["after"]): m for m in result["moves"]}


def sampled(move: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["referralId"]: s for s in move["sample"]}


async def test_without_the_device_signal_the_second_accounts_would_be_allowed_with_what_they_were_granted(tenant):
    history = await build_history(tenant)
    result = await simulate(tenant, history.program_id, {"signals": [{"signal": "same_device", "weight": 0}]})

    assert result["referralsScored"] == 8
    assert (result["current"]["version"], result["proposed"]["reviewScore"]) == (1, 50)  # version 1: without referrer memory
    assert {s["signal"]: s["weight"] for s in result["proposed"]["signals"]}["same_device"] == 0
    assert counts(result["before"]) == {"ALLOW": 5, "REVIEW": 2, "BLOCK": 1}
    assert counts(result["after"]) == {"ALLOW": 7, "REVIEW": 0, "BLOCK": 1}

    [move] = result["moves"]
    assert (move["before"], move["after"], move["count"]) == ("REVIEW", "ALLOW", 2)
    assert move["rewardValue"] == history.value_of(history.same_device)
    assert {v["unit"] for v in move["rewardValue"]} == {"USD", "POINTS"}
    samples = sampled(move)
    assert set(samples) == set(history.same_device)
    for sample in samples.values():
        assert sample["before"] == {"outcome": "REVIEW", "score": 80, "signals": ["same_device"]}
        assert (sample["after"]["outcome"], sample["after"]["score"]) == ("ALLOW", 0)


async def test_a_lower_review_score_would_send_households_sharing_an_ip_and_address_to_review(tenant):
    history = await build_history(tenant)
    result = await simulate(tenant, history.program_id, {"reviewScore": 40})

    assert result["referralsScored"] == 8
    assert counts(result["before"]) == {"ALLOW": 5, "REVIEW": 2, "BLOCK": 1}
    assert counts(result["after"]) == {"ALLOW": 3, "REVIEW": 4, "BLOCK": 1}
    [move] = result["moves"]  # the trusted referrer's second account stays allowed
    assert (move["before"], move["after"], move["count"]) == ("ALLOW", "REVIEW", 2)
    assert move["rewardValue"] == history.value_of(history.households)
    samples = sampled(move)
    assert set(samples) == set(history.households)
    for sample in samples.values():
        assert sample["before"] == {"outcome": "ALLOW", "score": 40, "signals": ["same_address", "shared_ip"]}
        assert sample["after"] == {"outcome": "REVIEW", "score": 40, "signals": ["same_address", "shared_ip"]}


async def test_trust_turns_a_review_into_allow_and_a_score_block_into_review_in_the_backtest(tenant):
    program = await h.program_with_credit(tenant)
    history = History(program["id"])
    build = Builder(tenant, history)
    code = await build.referrer("trusted-referrer", deviceId="dev-tr")
    status = await tenant.gql(h.SET_CUSTOMER_STATUS, {"customer": "trusted-referrer", "status": "TRUSTED"})
    assert status["setCustomerFraudStatus"]["userErrors"] == []
    trusted = (await build.referee("trusted-alias", code, deviceId="dev-tr"))["referral"]["id"]
    code = await build.referrer("device-referrer", deviceId="dev-dr")
    untrusted = (await build.referee("device-alias", code, deviceId="dev-dr"))["referral"]["id"]
    assert (await live_outcome(tenant, trusted), await live_outcome(tenant, untrusted)) == ("ALLOW", "REVIEW")

    heavier = await simulate(tenant, program["id"], {"signals": [{"signal": "same_device", "weight": 110}]})
    assert counts(heavier["after"]) == {"ALLOW": 1, "REVIEW": 1, "BLOCK": 0}
    assert heavier["moves"] == []

    # A score BLOCK never blocks a trusted customer: it becomes a REVIEW (a person decides).
    blocking = await simulate(tenant, program["id"], {"signals": [{"signal": "same_device", "weight": 120}]})
    found = moves(blocking)
    assert set(found) == {("ALLOW", "REVIEW"), ("REVIEW", "BLOCK")}
    assert set(sampled(found[("ALLOW", "REVIEW")])) == {trusted}
    assert set(sampled(found[("REVIEW", "BLOCK")])) == {untrusted}
    assert found[("ALLOW", "REVIEW")]["rewardValue"] == history.value_of([trusted])


async def test_only_referrals_made_in_the_period_are_scored(tenant):
    history = await build_history(tenant)
    proposal = {"signals": [{"signal": "same_device", "weight": 0}]}

    wide = await simulate(tenant, history.program_id, proposal, (BASE - timedelta(days=5), BASE + timedelta(days=5)))
    assert wide["referralsScored"] == 10
    [move] = wide["moves"]
    assert set(sampled(move)) == set(history.same_device) | {history.early, history.late}

    before = await simulate(tenant, history.program_id, proposal, (BASE - timedelta(days=4), BASE - timedelta(days=1)))
    assert before["referralsScored"] == 1
    assert [set(sampled(m)) for m in before["moves"]] == [{history.early}]

    empty = await simulate(tenant, history.program_id, proposal, (BASE - timedelta(days=60), BASE - timedelta(days=40)))
    assert (empty["referralsScored"], empty["moves"]) == (0, [])
    assert counts(empty["before"]) == counts(empty["after"]) == {"ALLOW": 0, "REVIEW": 0, "BLOCK": 0}


async def test_a_period_must_have_a_timezone_end_after_it_starts_and_span_at_most_366_days(tenant):
    program = await h.program_with_credit(tenant)
    now = datetime.now(UTC)
    naive = (now - timedelta(days=1)).replace(tzinfo=None).isoformat()
    for period in ((now, now), (now, now - timedelta(minutes=1)), (now - timedelta(days=367), now), (naive, now)):
        body = await tenant.raw(SIMULATE, variables(program["id"], {}, period))
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"]
    assert (await simulate(tenant, program["id"], {}, (now - timedelta(days=366), now)))["referralsScored"] == 0


async def test_a_proposal_is_validated_like_a_policy_change(tenant, other_tenant):
    program = await h.program_with_credit(tenant)
    for policy in (
        {"reviewScore": 130},
        {"signals": [{"signal": "no_such_signal", "weight": 1}]},
        {"signals": [{"signal": "same_device", "weight": -5}]},
    ):
        body = await tenant.raw(SIMULATE, variables(program["id"], policy, PERIOD))
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"], policy
    theirs = await h.program_with_credit(other_tenant)
    for program_id in (str(uuid.uuid4()), theirs["id"]):
        body = await tenant.raw(SIMULATE, variables(program_id, {}, PERIOD))
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


async def table_counts(tenant) -> dict[str, int]:
    async with system_connection(tenant.engine) as connection:
        return {
            table: await connection.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("fraud_decisions", "fraud_reviews", "fraud_policies", "rewards", "referrals", "audit_entries")
        }


async def test_a_backtest_writes_nothing_and_a_proposal_identical_to_the_current_policy_moves_nothing(tenant):
    history = await build_history(tenant)
    changed = await tenant.gql(h.SET_POLICY, {"programId": history.program_id, "policy": {"reviewScore": 45}})
    assert changed["setFraudPolicy"]["userErrors"] == []
    written = await table_counts(tenant)
    assert written["fraud_decisions"] > 0 and written["fraud_reviews"] > 0 and written["rewards"] > 0

    result = await simulate(
        tenant, history.program_id, {"reviewScore": 30, "signals": [{"signal": "same_email", "enabled": False}]}
    )
    assert result["moves"] != []
    assert (result["current"]["version"], result["current"]["reviewScore"]) == (2, 45)

    assert await table_counts(tenant) == written
    policy = (await tenant.gql(h.POLICY, {"programId": history.program_id}))["fraudPolicy"]
    assert (policy["version"], policy["reviewScore"]) == (2, 45)
    assert [v["version"] for v in (await tenant.gql(HISTORY, {"programId": history.program_id}))["fraudPolicyHistory"]] == [1, 2]
    assert [r["referral"]["id"] for r in await h.open_reviews(tenant, history.program_id)] != []
    assert await live_outcome(tenant, history.blocked[0]) == "BLOCK"

    for proposal in (
        {},
        {
            "reviewScore": 45,
            "blockScore": 120,
            "signals": [
                {"signal": "same_device", "weight": 80},
                {"signal": "same_email", "action": "BLOCK", "enabled": True},
            ],
        },
    ):
        unchanged = await simulate(tenant, history.program_id, proposal)
        assert unchanged["moves"] == []
        assert counts(unchanged["before"]) == counts(unchanged["after"]) == {"ALLOW": 5, "REVIEW": 2, "BLOCK": 1}
