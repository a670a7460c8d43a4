"""Referral codes: how they look, how they are typed back, and how a merchant issues,
retires and shares them."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import text

from app.errors import DomainError, ErrorCode
from app.referrals import codes
from app.referrals.models import Customer, Program
from tests import graphql_ops as ops
from tests.scenarios import active_program, click, code_for

AMBIGUOUS = set("01OIL")
ALPHABET = set(codes.CODE_ALPHABET)

LOOKUP = """
query($code: String!) {
  referralCode(code: $code) { code active deactivatedAt customer { externalId } }
}"""


def program(style: str = "RANDOM", length: int = 8) -> Program:
    return Program(name="P", code_style=style, code_length=length)


# --- Unit: generation and normalisation --------------------------------------------------


def test_the_alphabet_has_no_characters_that_are_misread():
    assert not AMBIGUOUS & ALPHABET
    assert len(ALPHABET) == len(codes.CODE_ALPHABET) == 31  # the other 26 + 10 - 5 letters and digits


@pytest.mark.parametrize("length", [6, 8, 16])
def test_random_codes_have_the_programs_length_and_only_unambiguous_characters(length):
    generated = [codes.generate(program(length=length), Customer(name="Jane Doe")) for _ in range(300)]
    assert all(len(code) == length for code in generated)
    assert set("".join(generated)) <= ALPHABET
    assert not AMBIGUOUS & set("".join(generated))
    assert len(set(generated)) == len(generated)


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("Jane Doe", "JANE"),
        ("jane", "JANE"),
        ("  Élodie   Martin ", "ELODIE"),
        ("O'Brien", "OBRIEN"),
        ("Maximilian Schmidt", "MAXIMILI"),  # the name part is at most 8 letters
    ],
)
def test_name_style_codes_are_the_first_name_and_a_short_suffix(name, prefix):
    code = codes.generate(program(style="NAME"), Customer(name=name))
    assert re.fullmatch(rf"{prefix}-[{codes.CODE_ALPHABET}]{{4}}", code), code


@pytest.mark.parametrize("name", [None, "", "   ", "J", "李雷", "42"])
def test_name_style_falls_back_to_a_random_code_without_a_usable_name(name):
    code = codes.generate(program(style="NAME", length=10), Customer(name=name))
    assert len(code) == 10
    assert set(code) <= ALPHABET


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("JANE10", "JANE10"),
        ("jane10", "JANE10"),
        ("  Jane-10_x\n", "JANE-10_X"),
        ("k7m3qx9p", "K7M3QX9P"),
        ("K7M3 QX9P", "K7M3QX9P"),  # spaces people type are not part of a code
    ],
)
def test_normalize_is_case_insensitive_and_trims(typed, stored):
    assert codes.normalize(typed) == stored


@pytest.mark.parametrize("junk", [None, "", "   ", "JANE!", "<script>", "x" * 33, "JANE\x00", "ÉLODIE", "jane.doe"])
def test_normalize_rejects_what_cannot_be_a_code(junk):
    assert codes.normalize(junk) is None


@pytest.mark.parametrize(("vanity", "stored"), [("jane10", "JANE10"), ("Summer_Sale-24", "SUMMER_SALE-24"), ("9LIVES", "9LIVES")])
def test_a_vanity_code_is_stored_upper_case(vanity, stored):
    assert codes.validate_vanity(vanity) == stored


@pytest.mark.parametrize("vanity", ["abc", "-JANE", "_JANE", "JANE 10", "JANE!10", "JANÉ10", "x" * 33])
def test_a_malformed_vanity_code_is_refused(vanity):
    with pytest.raises(DomainError) as refused:
        codes.validate_vanity(vanity)
    assert refused.value.field == "vanity"
    assert refused.value.code in (ErrorCode.CODE_INVALID, ErrorCode.TOO_LONG)


def test_the_share_url_carries_the_code_url_encoded():
    p = Program(name="P", share_url_template="https://shop.example/r/{code}?utm=ref")
    assert codes.share_url(p, "JANE-10") == "https://shop.example/r/JANE-10?utm=ref"
    assert codes.share_url(Program(name="P", share_url_template=None), "JANE-10") is None


# --- Through the API ---------------------------------------------------------------------


async def issue(tenant, program_id: str, external_id: str, vanity: str | None = None) -> dict:
    input = {"programId": program_id, "customerExternalId": external_id}
    if vanity is not None:
        input["vanity"] = vanity
    return (await tenant.gql(ops.ISSUE_CODE, {"input": input}))["issueReferralCode"]


def errors(payload: dict) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


async def code_rows(session) -> int:
    count = await session.scalar(text("SELECT count(*) FROM referral_codes"))
    await session.rollback()  # hand the connection back: SQLite's pool has only one
    return count


async def test_issuing_is_idempotent(tenant, session):
    program = await active_program(tenant)
    first = await issue(tenant, program["id"], "jane")
    again = await issue(tenant, program["id"], "jane")
    assert first["userErrors"] == [] and again["userErrors"] == []
    assert again["referralCode"] == first["referralCode"]
    assert first["referralCode"]["active"] is True
    assert first["referralCode"]["isVanity"] is False
    assert first["referralCode"]["shareUrl"] == f"https://shop.example/?ref={first['referralCode']['code']}"
    assert await code_rows(session) == 1


async def test_generated_codes_follow_the_programs_style(tenant):
    long_codes = await active_program(tenant, codeLength=12)
    code = (await code_for(tenant, long_codes["id"], "jane"))["code"]
    assert len(code) == 12 and set(code) <= ALPHABET

    await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "jane", "name": "Jane Doe"}})
    named = await active_program(tenant, name="Named", codeStyle="NAME")
    assert re.fullmatch(rf"JANE-[{codes.CODE_ALPHABET}]{{4}}", (await code_for(tenant, named["id"], "jane"))["code"])


async def test_each_customer_gets_their_own_code(tenant):
    program = await active_program(tenant)
    jane = await code_for(tenant, program["id"], "jane")
    bob = await code_for(tenant, program["id"], "bob")
    assert jane["code"] != bob["code"]


@pytest.mark.parametrize("vanity", ["ab1", "JANE 10", "JANE!10", "-JANE", "jane.doe", "ÉLODIE10"])
async def test_a_malformed_vanity_code_is_a_user_error(tenant, session, vanity):
    program = await active_program(tenant)
    refused = await issue(tenant, program["id"], "jane", vanity)
    assert errors(refused) == [("vanity", "CODE_INVALID")]
    assert refused["referralCode"] is None
    assert await code_rows(session) == 0


async def test_a_vanity_code_is_issued_and_looked_up_case_insensitively(tenant):
    program = await active_program(tenant)
    issued = await issue(tenant, program["id"], "jane", "jane10")
    assert issued["userErrors"] == []
    assert issued["referralCode"]["code"] == "JANE10"
    assert issued["referralCode"]["isVanity"] is True
    assert (await issue(tenant, program["id"], "jane", "Jane10"))["referralCode"] == issued["referralCode"]

    found = (await tenant.gql(LOOKUP, {"code": " jane10 "}))["referralCode"]
    assert found["code"] == "JANE10"
    assert found["customer"] == {"externalId": "jane"}


async def test_a_vanity_code_held_by_another_customer_is_taken(tenant, session):
    program = await active_program(tenant)
    other_program = await active_program(tenant, name="Another program")
    await issue(tenant, program["id"], "jane", "JANE10")

    for program_id, vanity in [(program["id"], "JANE10"), (program["id"], "jane10"), (other_program["id"], "JANE10")]:
        taken = await issue(tenant, program_id, "bob", vanity)
        assert errors(taken) == [("vanity", "CODE_TAKEN")]
    assert await code_rows(session) == 1
    assert (await tenant.gql(LOOKUP, {"code": "JANE10"}))["referralCode"]["customer"] == {"externalId": "jane"}


async def test_a_customer_with_an_active_code_cannot_get_a_different_one(tenant):
    program = await active_program(tenant)
    generated = await code_for(tenant, program["id"], "jane")
    refused = await issue(tenant, program["id"], "jane", "JANE10")
    assert errors(refused) == [("vanity", "CUSTOMER_HAS_CODE")]
    assert generated["code"] in refused["userErrors"][0]["message"]
    assert (await issue(tenant, program["id"], "jane"))["referralCode"]["code"] == generated["code"]


async def test_a_deactivated_code_stops_working_and_a_new_one_can_be_issued(tenant):
    program = await active_program(tenant)
    old = await code_for(tenant, program["id"], "jane")

    deactivated = (await tenant.gql(ops.DEACTIVATE_CODE, {"code": old["code"].lower()}))["deactivateReferralCode"]
    assert deactivated["userErrors"] == []
    assert deactivated["referralCode"]["active"] is False
    assert deactivated["referralCode"]["deactivatedAt"] is not None

    found = (await tenant.gql(LOOKUP, {"code": old["code"]}))["referralCode"]
    assert found["active"] is False
    assert found["deactivatedAt"] == deactivated["referralCode"]["deactivatedAt"]

    tracked = await click(tenant, old["code"])
    assert errors(tracked) == [("code", "CODE_INACTIVE")]
    assert tracked["attributionToken"] is None

    new = await code_for(tenant, program["id"], "jane")
    assert new["code"] != old["code"]
    assert new["active"] is True
    assert (await click(tenant, new["code"]))["userErrors"] == []

    jane = await tenant.gql('query { customer(externalId: "jane") { referralCodes { code active } } }')
    assert sorted(jane["customer"]["referralCodes"], key=lambda c: c["active"]) == [
        {"code": old["code"], "active": False},
        {"code": new["code"], "active": True},
    ]


async def test_a_retired_vanity_code_cannot_be_taken_by_someone_else(tenant):
    # Old flyers and links with the code must never credit another customer.
    program = await active_program(tenant)
    await issue(tenant, program["id"], "jane", "JANE10")
    await tenant.gql(ops.DEACTIVATE_CODE, {"code": "JANE10"})
    assert errors(await issue(tenant, program["id"], "bob", "JANE10")) == [("vanity", "CODE_TAKEN")]


async def test_deactivating_an_unknown_code_is_not_found(tenant):
    refused = (await tenant.gql(ops.DEACTIVATE_CODE, {"code": "NOPE1234"}))["deactivateReferralCode"]
    assert errors(refused) == [("code", "NOT_FOUND")]


async def test_two_merchants_may_hold_the_same_vanity_code(tenant, other_tenant):
    mine = await active_program(tenant)
    theirs = await active_program(other_tenant)
    assert (await issue(tenant, mine["id"], "jane", "WELCOME"))["userErrors"] == []
    assert (await issue(other_tenant, theirs["id"], "zoe", "WELCOME"))["userErrors"] == []

    assert (await tenant.gql(LOOKUP, {"code": "WELCOME"}))["referralCode"]["customer"] == {"externalId": "jane"}
    assert (await other_tenant.gql(LOOKUP, {"code": "WELCOME"}))["referralCode"]["customer"] == {"externalId": "zoe"}

    await other_tenant.gql(ops.DEACTIVATE_CODE, {"code": "WELCOME"})
    assert (await click(tenant, "WELCOME"))["userErrors"] == []
    assert errors(await click(other_tenant, "WELCOME")) == [("code", "CODE_INACTIVE")]


async def test_one_merchant_cannot_issue_in_another_merchants_program(tenant, other_tenant, session):
    theirs = await active_program(other_tenant)
    refused = await issue(tenant, theirs["id"], "jane")
    assert errors(refused) == [("programId", "NOT_FOUND")]
    assert await code_rows(session) == 0


async def test_an_archived_program_issues_no_codes(tenant, session):
    program = await active_program(tenant)
    archived = await tenant.gql(ops.UPDATE_PROGRAM, {"id": program["id"], "input": {"status": "ARCHIVED"}})
    assert archived["updateProgram"]["program"]["status"] == "ARCHIVED"
    refused = await issue(tenant, program["id"], "jane")
    assert errors(refused) == [("programId", "PROGRAM_NOT_ACTIVE")]
    assert await code_rows(session) == 0


async def test_a_paused_programs_code_is_kept_but_takes_no_clicks(tenant):
    program = await active_program(tenant)
    code = await code_for(tenant, program["id"], "jane")
    await tenant.gql(ops.UPDATE_PROGRAM, {"id": program["id"], "input": {"status": "PAUSED"}})
    assert errors(await click(tenant, code["code"])) == [("code", "PROGRAM_NOT_ACTIVE")]
    assert (await code_for(tenant, program["id"], "jane"))["code"] == code["code"]


async def test_a_repeated_click_from_the_same_device_is_the_same_visit(tenant, session):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]

    first = await click(tenant, code, device_id="browser-1")
    reload = await click(tenant, code.lower(), device_id="browser-1")
    other_device = await click(tenant, code, device_id="browser-2")

    assert (first["repeated"], reload["repeated"], other_device["repeated"]) == (False, True, False)
    assert reload["attributionToken"] == first["attributionToken"]
    assert reload["expiresAt"] == first["expiresAt"]
    assert other_device["attributionToken"] != first["attributionToken"]
    clicks = await session.scalar(text("SELECT count(*) FROM clicks"))
    await session.rollback()
    assert clicks == 2


async def test_a_click_on_an_unknown_code_is_a_user_error(tenant, session):
    await active_program(tenant)
    for typed in ("NOPE2345", "!!", "x" * 40):
        tracked = await click(tenant, typed)
        assert errors(tracked) == [("code", "CODE_NOT_FOUND")]
        assert tracked["attributionToken"] is None
    clicks = await session.scalar(text("SELECT count(*) FROM clicks"))
    await session.rollback()
    assert clicks == 0


async def test_the_widget_can_look_a_code_up_but_not_its_owner(tenant):
    program = await active_program(tenant)
    code = await code_for(tenant, program["id"], "jane")
    public = await tenant.raw(
        "query($c: String!) { referralCode(code: $c) { code active } }", {"c": code["code"]}, key=tenant.publishable_key
    )
    assert public == {"data": {"referralCode": {"code": code["code"], "active": True}}}

    owner = await tenant.raw(LOOKUP, {"code": code["code"]}, key=tenant.publishable_key)
    assert "jane" not in str(owner.get("data"))
    assert [e["extensions"]["code"] for e in owner["errors"]] == ["FORBIDDEN"]


@pytest.mark.postgresql_only
async def test_concurrent_issue_calls_agree_on_one_code(tenant, session, backend):
    program = await active_program(tenant)
    results = await asyncio.gather(*(issue(tenant, program["id"], "new-customer") for _ in range(20)))

    assert all(r["userErrors"] == [] for r in results), [r["userErrors"] for r in results]
    assert len({r["referralCode"]["code"] for r in results}) == 1
    assert len({r["referralCode"]["id"] for r in results}) == 1
    assert await code_rows(session) == 1
    customers = await session.scalar(text("SELECT count(*) FROM customers WHERE external_id = 'new-customer'"))
    await session.rollback()
    assert customers == 1
