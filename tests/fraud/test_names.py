"""Names in the fraud checks: compared after the same folding as codes (علي = علی), and across
scripts and spellings as a weak signal (Ali Rezaei = علی رضایی)."""

from __future__ import annotations

import pytest

from tests import graphql_ops as ops
from tests.scenarios import active_program, code_for, record

DECISIONS = "query($r: ID!) { fraudDecisions(referralId: $r) { outcome score observations { signal fired weight evidence } } }"


async def referred(tenant, referrer: tuple[str, str], referee: tuple[str, str]) -> list[dict]:
    """referrer and referee as (name, email); the referee's signup with the referrer's code."""
    program = await active_program(tenant)
    for external_id, (name, email) in (("referrer", referrer), ("referee", referee)):
        saved = await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": external_id, "name": name, "email": email}})
        assert saved["upsertCustomer"]["userErrors"] == []
    code = await code_for(tenant, program["id"], "referrer")
    signup = await record(tenant, type="SIGNUP", customerExternalId="referee", idempotencyKey="s", referralCode=code["code"])
    decisions = await tenant.gql(DECISIONS, {"r": signup["referral"]["id"]})
    return decisions["fraudDecisions"][0]["observations"]


def fired(observations: list[dict]) -> dict[str, dict]:
    return {o["signal"]: o for o in observations if o["fired"]}


async def test_arabic_and_persian_spellings_are_the_same_name(tenant):
    observations = await referred(tenant, ("علي رضايي", "ali@acme-trading.ir"), ("علی رضایی", "a.rezaei@acme-trading.ir"))
    assert "same_name_domain" in fired(observations)
    assert "similar_name" in fired(observations)


async def test_a_transliterated_name_is_a_weak_signal(tenant):
    observations = await referred(tenant, ("Ali Rezaei", "ali.r@gmail.com"), ("علی رضایی", "rezaei.ali@yahoo.com"))
    signal = fired(observations)["similar_name"]
    assert signal["weight"] == 10 and "spelled differently" in signal["evidence"]
    assert "same_name_domain" not in fired(observations)  # different domains


@pytest.mark.parametrize(("referrer", "referee"), [("Ali Rezaei", "Ali Karimi"), ("Sara Ahmadi", "سارا کریمی"), ("Ali", "علی")])
async def test_different_or_too_short_names_do_not_fire(tenant, referrer, referee):
    observations = await referred(tenant, (referrer, "one@example.com"), (referee, "two@example.org"))
    assert "similar_name" not in fired(observations)
