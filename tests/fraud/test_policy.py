"""Fraud policies: how signals are weighed (judge), and the versioned policy of each program."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from app.fraud.models import Outcome
from app.fraud.policy import DEFAULT_POLICY, Policy, SignalSetting, judge
from app.fraud.signals import CATALOGUE, Observation
from tests import scenarios
from tests.conftest import system_connection
from tests.fraud import helpers as h
from tests.scenarios import PAY_AT_SIGNUP

HISTORY = f"""
query($programId: ID!) {{ fraudPolicyHistory(programId: $programId) {{ {h.POLICY_FIELDS} }} }}"""

API_KEYS = "query { apiKeys { id kind } }"


def seen(signal: str, value: float = 1, evidence: str = "") -> Observation:
    return Observation(signal, value, evidence or f"{signal}={value}")


def with_settings(review: int = 50, block: int = 120, **settings: SignalSetting) -> Policy:
    return Policy(review_score=review, block_score=block, signals=settings, version=3)


# judge(): the policy logic alone


def test_the_score_is_the_sum_of_the_weights_of_the_signals_that_fire():
    verdict = judge(DEFAULT_POLICY, [seen("same_device"), seen("same_address"), seen("similar_email", 0.5)])
    device, address = CATALOGUE["same_device"].weight, CATALOGUE["same_address"].weight
    assert verdict.score == device + address
    assert sorted(verdict.fired_signals()) == ["same_address", "same_device"]  # similar_email at 0.5 is below 0.88


def test_a_signal_counts_once_however_many_identifiers_it_matched_and_its_strongest_observation_is_kept():
    policy = with_settings(
        device_reuse=SignalSetting(weight=40, threshold=2),
        same_device=SignalSetting(weight=30, threshold=1),
    )
    verdict = judge(
        policy,
        [
            seen("device_reuse", 3, "dev-a"),
            seen("device_reuse", 7, "dev-b"),
            seen("device_reuse", 2, "dev-c"),
            seen("same_device", 1, "dev-a"),
            seen("same_device", 1, "dev-b"),
        ],
    )
    assert verdict.score == 70
    assert sorted(verdict.fired_signals()) == ["device_reuse", "same_device"]
    reuse = next(f for f in verdict.fired if f.observation.signal == "device_reuse")
    assert (reuse.observation.value, reuse.observation.evidence, reuse.weight) == (7, "dev-b", 40)


def test_for_hours_apart_signals_the_closest_sighting_is_the_strongest():
    verdict = judge(
        DEFAULT_POLICY, [seen("shared_ip", 48, "a day ago"), seen("shared_ip", 0.5, "same hour"), seen("shared_ip", 100)]
    )
    [fired] = verdict.fired
    assert fired.observation.evidence == "same hour"
    assert verdict.score == CATALOGUE["shared_ip"].weight


def test_hours_apart_signals_fire_at_or_below_their_window():
    policy = with_settings(same_ip_user_agent=SignalSetting(weight=60, threshold=24))
    assert judge(policy, [seen("same_ip_user_agent", 24)]).fired_signals() == ["same_ip_user_agent"]
    assert judge(policy, [seen("same_ip_user_agent", 0)]).outcome is Outcome.REVIEW
    outside = judge(policy, [seen("same_ip_user_agent", 24.01)])
    assert (outside.fired, outside.score, outside.outcome) == ([], 0, Outcome.ALLOW)


def test_other_signals_fire_at_or_above_their_threshold():
    policy = with_settings(similar_email=SignalSetting(weight=60, threshold=0.9))
    assert judge(policy, [seen("similar_email", 0.9)]).outcome is Outcome.REVIEW
    assert judge(policy, [seen("similar_email", 0.89)]).outcome is Outcome.ALLOW


def test_a_signals_own_action_forces_at_least_that_outcome_whatever_the_score():
    mailbox = judge(DEFAULT_POLICY, [seen("same_email")])
    assert mailbox.score < DEFAULT_POLICY.block_score
    assert mailbox.outcome is Outcome.BLOCK

    policy = with_settings(same_address=SignalSetting(weight=0, threshold=1, action=Outcome.REVIEW))
    household = judge(policy, [seen("same_address")])
    assert (household.score, household.outcome) == (0, Outcome.REVIEW)


def test_a_signals_action_never_softens_what_the_score_reached():
    policy = with_settings(
        same_device=SignalSetting(weight=100, threshold=1, action=Outcome.REVIEW),
        same_payment=SignalSetting(weight=100, threshold=1),
    )
    assert judge(policy, [seen("same_device"), seen("same_payment")]).outcome is Outcome.BLOCK


def test_a_disabled_signal_never_fires():
    policy = with_settings(same_email=SignalSetting(weight=100, threshold=1, action=Outcome.BLOCK, enabled=False))
    verdict = judge(policy, [seen("same_email"), seen("same_email")])
    assert (verdict.outcome, verdict.score, verdict.fired) == (Outcome.ALLOW, 0, [])


@pytest.mark.parametrize(
    ("weight", "outcome"),
    [
        (49, Outcome.ALLOW),
        (50, Outcome.REVIEW),
        (119, Outcome.REVIEW),
        (120, Outcome.BLOCK),
        (500, Outcome.BLOCK),
    ],
)
def test_the_outcome_changes_exactly_at_the_review_and_block_scores(weight, outcome):
    policy = with_settings(review=50, block=120, same_payment=SignalSetting(weight=weight, threshold=1))
    verdict = judge(policy, [seen("same_payment")])
    assert (verdict.score, verdict.outcome) == (weight, outcome)


def test_nothing_observed_is_allowed():
    assert judge(DEFAULT_POLICY, []) == judge(DEFAULT_POLICY, [seen("same_device", 0)])
    assert judge(DEFAULT_POLICY, []).outcome is Outcome.ALLOW


def test_an_observation_of_a_retired_signal_is_ignored():
    verdict = judge(DEFAULT_POLICY, [seen("signal_from_an_older_release"), seen("same_device")])
    assert verdict.fired_signals() == ["same_device"]


# The policy of a program, through the API


async def set_policy(tenant, program_id: str, **policy) -> dict:
    return (await tenant.gql(h.SET_POLICY, {"programId": program_id, "policy": policy}))["setFraudPolicy"]


async def current(tenant, program_id: str) -> dict:
    return (await tenant.gql(h.POLICY, {"programId": program_id}))["fraudPolicy"]


async def history(tenant, program_id: str) -> list[dict]:
    return (await tenant.gql(HISTORY, {"programId": program_id}))["fraudPolicyHistory"]


def by_signal(policy: dict) -> dict[str, dict]:
    return {s["signal"]: s for s in policy["signals"]}


async def referrer_and_code(tenant, program_id: str, referrer: str, device: str) -> str:
    code = (await scenarios.code_for(tenant, program_id, referrer))["code"]
    await h.signup(tenant, referrer, deviceId=device, ip="198.51.100.7", email=f"{referrer}@example.com")
    return code


async def test_a_new_program_has_the_default_policy_listing_every_signal(tenant):
    program = await scenarios.active_program(tenant)
    policy = await current(tenant, program["id"])
    assert (policy["version"], policy["reviewScore"], policy["blockScore"]) == (0, 50, 120)
    assert policy["createdAt"] is None
    assert [s["signal"] for s in policy["signals"]] == list(CATALOGUE)
    for setting in policy["signals"]:
        info = CATALOGUE[setting["signal"]]
        assert setting["description"] == info.description and setting["description"]
        assert (setting["weight"], setting["threshold"], setting["action"], setting["enabled"]) == (
            info.weight,
            info.threshold,
            info.action.value,
            True,
        )
        assert setting["firesAtOrBelow"] is info.fires_at_or_below
    assert by_signal(policy)["same_ip_user_agent"]["firesAtOrBelow"] is True
    assert by_signal(policy)["same_email"]["action"] == "BLOCK"
    assert await history(tenant, program["id"]) == []


async def test_each_change_is_a_new_version_built_on_the_current_one(tenant):
    program = await scenarios.active_program(tenant)
    default = by_signal(await current(tenant, program["id"]))

    first = await set_policy(tenant, program["id"], signals=[{"signal": "same_device", "weight": 90, "action": "REVIEW"}])
    assert first["userErrors"] == []
    assert first["policy"]["version"] == 1 and first["policy"]["createdAt"] is not None

    second = await set_policy(
        tenant,
        program["id"],
        reviewScore=40,
        signals=[
            {"signal": "shared_ip", "threshold": 24},
            {"signal": "disposable_email", "enabled": False},
        ],
    )
    assert second["userErrors"] == []
    policy = await current(tenant, program["id"])
    assert {**policy, "createdAt": None} == {**second["policy"], "createdAt": None}
    assert (policy["version"], policy["reviewScore"], policy["blockScore"]) == (2, 40, 120)
    signals = by_signal(policy)
    assert (signals["same_device"]["weight"], signals["same_device"]["action"]) == (90, "REVIEW")  # kept from version 1
    assert (signals["shared_ip"]["threshold"], signals["shared_ip"]["weight"]) == (24, default["shared_ip"]["weight"])
    assert signals["disposable_email"]["enabled"] is False
    assert signals["disposable_email"]["weight"] == default["disposable_email"]["weight"]
    untouched = set(CATALOGUE) - {"same_device", "shared_ip", "disposable_email"}
    assert {name: signals[name] for name in untouched} == {name: default[name] for name in untouched}

    versions = await history(tenant, program["id"])
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0] == first["policy"] and versions[1] == second["policy"]
    assert by_signal(versions[0])["shared_ip"]["threshold"] == default["shared_ip"]["threshold"]
    assert versions[0]["reviewScore"] == 50


async def test_decisions_record_the_policy_version_they_were_made_under(tenant):
    program = await h.program_with_credit(tenant)
    code = await referrer_and_code(tenant, program["id"], "alice", "dev-alice")
    before = await h.signup(tenant, "bob", code=code, deviceId="dev-bob")
    assert (await set_policy(tenant, program["id"], reviewScore=45))["userErrors"] == []
    assert (await set_policy(tenant, program["id"], reviewScore=55))["userErrors"] == []
    await h.purchase(tenant, "bob", "order-1", deviceId="dev-bob")

    decisions = await h.decisions(tenant, before["referral"]["id"])
    assert [(d["stage"], d["policyVersion"]) for d in decisions] == [("REFERRAL", 0), ("REWARD", 2)]


async def test_a_heavier_device_weight_blocks_a_second_account_on_the_referrers_device(tenant):
    program = await h.program_with_credit(tenant)
    code = await referrer_and_code(tenant, program["id"], "alice", "dev-shared")
    reviewed = await h.signup(tenant, "alias-1", code=code, deviceId="dev-shared")
    assert (await h.decisions(tenant, reviewed["referral"]["id"]))[0]["outcome"] == "REVIEW"

    changed = await set_policy(tenant, program["id"], signals=[{"signal": "same_device", "weight": 120}])
    assert changed["userErrors"] == []
    code = await referrer_and_code(tenant, program["id"], "carol", "dev-carol")
    blocked = await h.signup(tenant, "alias-2", code=code, deviceId="dev-carol")
    assert blocked["action"]["attribution"] == "FRAUD_BLOCKED"
    assert blocked["referral"]["status"] == "REJECTED"
    [decision] = await h.decisions(tenant, blocked["referral"]["id"])
    assert (decision["outcome"], decision["score"], decision["policyVersion"]) == ("BLOCK", 120, 1)
    assert h.fired(decision) == {"same_device"}
    assert (await h.purchase(tenant, "alias-2", "order-2", deviceId="dev-carol"))["rewards"] == []


async def test_a_disabled_device_signal_lets_a_second_account_through(tenant):
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP)
    code = await referrer_and_code(tenant, program["id"], "alice", "dev-shared")
    assert (await set_policy(tenant, program["id"], signals=[{"signal": "same_device", "enabled": False}]))["userErrors"] == []

    joined = await h.signup(tenant, "alias", code=code, deviceId="dev-shared")
    assert joined["action"]["attribution"] == "REFERRAL_CREATED"
    [decision] = await h.decisions(tenant, joined["referral"]["id"])
    assert (decision["outcome"], decision["score"], h.fired(decision)) == ("ALLOW", 0, set())
    assert [o["signal"] for o in decision["observations"]] == ["same_device"]  # still measured, for a later backtest
    bought = await h.purchase(tenant, "alias", "order-1", deviceId="dev-shared")
    assert [(r["status"], r["underReview"]) for r in bought["rewards"]] == [("AVAILABLE", False)]
    assert await h.open_reviews(tenant, program["id"]) == []


async def test_a_policy_belongs_to_one_program(tenant):
    strict = await h.program_with_credit(tenant)
    other = await h.program_with_credit(tenant, name="Other program")
    assert (await set_policy(tenant, strict["id"], signals=[{"signal": "same_device", "weight": 150}]))["userErrors"] == []

    assert (await current(tenant, other["id"]))["version"] == 0
    assert by_signal(await current(tenant, other["id"]))["same_device"]["weight"] == CATALOGUE["same_device"].weight
    assert await history(tenant, other["id"]) == []

    strict_code = await referrer_and_code(tenant, strict["id"], "alice", "dev-alice")
    other_code = await referrer_and_code(tenant, other["id"], "carol", "dev-carol")
    blocked = await h.signup(tenant, "alias-a", code=strict_code, deviceId="dev-alice")
    reviewed = await h.signup(tenant, "alias-c", code=other_code, deviceId="dev-carol")
    assert blocked["action"]["attribution"] == "FRAUD_BLOCKED"
    assert reviewed["action"]["attribution"] == "REFERRAL_CREATED"
    [decision] = await h.decisions(tenant, reviewed["referral"]["id"])
    assert (decision["outcome"], decision["policyVersion"]) == ("REVIEW", 0)


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"signals": [{"signal": "same_devcie", "weight": 10}]}, "signals.0.signal"),
        ({"signals": [{"signal": "same_device", "weight": 10}, {"signal": "same_device", "enabled": False}]}, "signals.1.signal"),
        ({"signals": [{"signal": "shared_ip", "threshold": 24}, {"signal": "same_device", "weight": -1}]}, "signals.1.weight"),
        ({"reviewScore": 80, "blockScore": 80}, "blockScore"),
        ({"blockScore": 40}, "blockScore"),  # below the current review score
        ({"reviewScore": 0}, "reviewScore"),
        ({"signals": [{"signal": "shared_ip", "threshold": -5}]}, "signals.0.threshold"),
    ],
)
async def test_an_invalid_change_is_refused_and_nothing_is_written(tenant, policy, field):
    program = await scenarios.active_program(tenant)
    refused = await set_policy(tenant, program["id"], **policy)
    assert refused["policy"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(field, "INVALID_INPUT")]
    assert (await current(tenant, program["id"]))["version"] == 0
    assert await history(tenant, program["id"]) == []
    log = (await tenant.gql(h.AUDIT_LOG, {"subjectId": program["id"]}))["auditLog"]["edges"]
    assert [e for e in log if e["node"]["action"] == "fraud_policy.changed"] == []


async def test_an_invalid_change_keeps_the_current_version(tenant):
    program = await scenarios.active_program(tenant)
    assert (await set_policy(tenant, program["id"], reviewScore=70))["userErrors"] == []
    refused = await set_policy(tenant, program["id"], blockScore=60, signals=[{"signal": "same_device", "weight": 5}])
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("blockScore", "INVALID_INPUT")]
    policy = await current(tenant, program["id"])
    assert (policy["version"], policy["reviewScore"], policy["blockScore"]) == (1, 70, 120)
    assert by_signal(policy)["same_device"]["weight"] == CATALOGUE["same_device"].weight


async def test_an_unknown_program_is_not_found(tenant, other_tenant):
    theirs = await scenarios.active_program(other_tenant)
    for program_id in (str(uuid.uuid4()), theirs["id"]):
        refused = await set_policy(tenant, program_id, reviewScore=40)
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("programId", "NOT_FOUND")]
        body = await tenant.raw(h.POLICY, {"programId": program_id})
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
        body = await tenant.raw(HISTORY, {"programId": program_id})
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert await history(other_tenant, theirs["id"]) == []


async def test_a_policy_change_is_in_the_audit_log_with_the_key_that_made_it(tenant):
    program = await scenarios.active_program(tenant)
    [key_id] = [k["id"] for k in (await tenant.gql(API_KEYS))["apiKeys"] if k["kind"] == "SECRET"]
    await set_policy(tenant, program["id"], reviewScore=60)
    await set_policy(tenant, program["id"], signals=[{"signal": "shared_ip", "enabled": False}])

    log = (await tenant.gql(h.AUDIT_LOG, {"subjectId": program["id"]}))["auditLog"]["edges"]
    changes = [e["node"] for e in log if e["node"]["action"] == "fraud_policy.changed"]
    assert sorted(c["details"]["version"] for c in changes) == [1, 2]
    assert {(c["actorKeyId"], c["subjectId"]) for c in changes} == {(key_id, program["id"])}


@pytest.mark.postgresql_only
async def test_concurrent_changes_each_get_their_own_version_and_none_is_lost(tenant):
    program = await scenarios.active_program(tenant)
    names = ["same_device", "same_payment", "same_address", "device_reuse", "payment_reuse"]
    results = await asyncio.gather(
        *(set_policy(tenant, program["id"], signals=[{"signal": name, "weight": 7 + i}]) for i, name in enumerate(names))
    )
    assert [r["userErrors"] for r in results] == [[]] * 5
    assert sorted(r["policy"]["version"] for r in results) == [1, 2, 3, 4, 5]

    assert [v["version"] for v in await history(tenant, program["id"])] == [1, 2, 3, 4, 5]
    policy = await current(tenant, program["id"])
    assert policy["version"] == 5
    assert {name: by_signal(policy)[name]["weight"] for name in names} == {name: 7 + i for i, name in enumerate(names)}
    async with system_connection(tenant.engine) as connection:
        current_rows = await connection.scalar(
            text("SELECT count(*) FROM fraud_policies WHERE program_id = :p AND superseded_at IS NULL"),
            {"p": uuid.UUID(program["id"])},
        )
    assert current_rows == 1
