"""Codes as people type them: any digit set, full-width forms, spaces and dashes, case; vanity
codes in Arabic and Persian script when the merchant enables them, with letter variants unified
so look-alikes cannot be registered twice. Coupons are matched the same way; names round-trip."""

from __future__ import annotations

import pytest

from tests import graphql_ops as ops
from tests.scenarios import active_program, click, code_for, record

LOCALE = """
mutation($input: LocaleSettingsInput!) {
  setLocaleSettings(input: $input) {
    settings { timeZone calendar locale numberingSystem arabicScriptCodes unifyTehMarbuta } userErrors { field code message }
  }
}"""
LOOKUP = "query($c: String!) { referralCode(code: $c) { code customer { externalId } } }"


async def issue(tenant, program_id: str, customer: str, vanity: str) -> dict:
    return (
        await tenant.gql(ops.ISSUE_CODE, {"input": {"programId": program_id, "customerExternalId": customer, "vanity": vanity}})
    )["issueReferralCode"]


def errors(payload: dict) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


async def enable_arabic(tenant, **extra) -> dict:
    body = await tenant.gql(LOCALE, {"input": {"arabicScriptCodes": True, **extra}})
    assert body["setLocaleSettings"]["userErrors"] == []
    return body["setLocaleSettings"]["settings"]


async def test_a_persian_vanity_code_needs_the_merchant_to_enable_it(tenant):
    program = await active_program(tenant)
    refused = await issue(tenant, program["id"], "reyhaneh", "ریحانه-۴۷۲۹")
    assert errors(refused) == [("vanity", "CODE_INVALID")] and "arabicScriptCodes" in refused["userErrors"][0]["message"]
    settings = await enable_arabic(tenant, locale="fa", timeZone="Asia/Tehran", calendar="JALALI")
    assert settings == {
        "timeZone": "Asia/Tehran",
        "calendar": "JALALI",
        "locale": "fa",
        "numberingSystem": "arabext",
        "arabicScriptCodes": True,
        "unifyTehMarbuta": False,
    }
    issued = await issue(tenant, program["id"], "reyhaneh", "ریحانه-۴۷۲۹")
    assert issued["userErrors"] == [] and issued["referralCode"]["code"] == "ریحانه-۴۷۲۹"
    assert issued["referralCode"]["shareUrl"].endswith("?ref=%D8%B1%DB%8C%D8%AD%D8%A7%D9%86%D9%87-%DB%B4%DB%B7%DB%B2%DB%B9")


@pytest.mark.parametrize("typed", ["ریحانه-۴۷۲۹", "ريحانه-4729", "ريحانه٤٧٢٩", "ریـــحانه ۴۷۲۹", "رِیحانه-۴۷۲۹", "ﺭﻳﺤﺎﻧﻪ۴۷۲۹"])
async def test_the_persian_code_is_found_however_it_is_typed(tenant, typed):
    program = await active_program(tenant)
    await enable_arabic(tenant)
    await issue(tenant, program["id"], "reyhaneh", "ریحانه-۴۷۲۹")
    found = await tenant.gql(LOOKUP, {"c": typed})
    assert found["referralCode"] == {"code": "ریحانه-۴۷۲۹", "customer": {"externalId": "reyhaneh"}}
    tracked = await click(tenant, typed)
    assert tracked["userErrors"] == [] and tracked["referralCode"]["code"] == "ریحانه-۴۷۲۹"
    signup = await record(tenant, type="SIGNUP", customerExternalId="friend", idempotencyKey="s-friend", referralCode=typed)
    assert signup["action"]["attribution"] == "REFERRAL_CREATED" and signup["referral"]["referrer"]["externalId"] == "reyhaneh"


@pytest.mark.parametrize(
    ("first", "look_alike"),
    [
        ("ریحانه-۴۷۲۹", "ريحانه4729"),  # yeh, digits, dash
        ("کریم۱۰", "كريم-10"),  # kaf, digits
        ("أحمد-نور", "احمد_نور"),  # alef with hamza, separator
        ("عليـمحمد", "علی‌محمد"),  # tatweel, half-space
    ],
)
async def test_a_look_alike_cannot_be_registered_twice(tenant, first, look_alike):
    program = await active_program(tenant)
    await enable_arabic(tenant)
    assert (await issue(tenant, program["id"], "first", first))["userErrors"] == []
    taken = await issue(tenant, program["id"], "second", look_alike)
    assert errors(taken) == [("vanity", "CODE_TAKEN")] and taken["referralCode"] is None


async def test_teh_marbuta_and_heh_are_one_letter_only_where_configured(tenant, other_tenant):
    for shop, unify in ((tenant, False), (other_tenant, True)):
        program = await active_program(shop)
        await enable_arabic(shop, unifyTehMarbuta=unify)
        assert (await issue(shop, program["id"], "fatemeh-1", "فاطمة-۱۲"))["userErrors"] == []
        second = await issue(shop, program["id"], "fatemeh-2", "فاطمه-۱۲")
        assert errors(second) == ([("vanity", "CODE_TAKEN")] if unify else [])
        found = await shop.gql(LOOKUP, {"c": "فاطمه۱۲"})
        assert found["referralCode"]["customer"]["externalId"] == ("fatemeh-1" if unify else "fatemeh-2")
        exact = await shop.gql(LOOKUP, {"c": "فاطمة۱۲"})
        assert exact["referralCode"]["customer"]["externalId"] == "fatemeh-1"


async def test_turning_unification_on_refuses_codes_that_now_read_alike(tenant):
    program = await active_program(tenant)
    await enable_arabic(tenant)
    assert (await issue(tenant, program["id"], "a", "مدرسة-۱"))["userErrors"] == []
    await enable_arabic(tenant, unifyTehMarbuta=True)
    assert errors(await issue(tenant, program["id"], "b", "مدرسه-۱")) == [("vanity", "CODE_TAKEN")]
    assert (await tenant.gql(LOOKUP, {"c": "مدرسه-۱"}))["referralCode"]["customer"]["externalId"] == "a"


@pytest.mark.parametrize("vanity", ["JANEریحانه", "علی-Ali", "ÉLODIE10", "Ωmega10"])
async def test_mixed_or_other_scripts_are_refused(tenant, vanity):
    program = await active_program(tenant)
    await enable_arabic(tenant)
    assert errors(await issue(tenant, program["id"], "x", vanity)) == [("vanity", "CODE_INVALID")]


@pytest.mark.parametrize("typed", ["K7M3 QX9P", "k7m3-qx9p", "ｋ７ｍ３ｑｘ９ｐ", "K7M3–QX9P", " k7m3qx9p\u200b"])
async def test_a_latin_code_is_found_with_spaces_dashes_width_and_case(tenant, typed):
    program = await active_program(tenant)
    await code_for(tenant, program["id"], "jane", vanity="K7M3QX9P")
    assert (await tenant.gql(LOOKUP, {"c": typed}))["referralCode"]["code"] == "K7M3QX9P"


async def test_latin_look_alikes_with_other_separators_are_one_code(tenant):
    program = await active_program(tenant)
    await code_for(tenant, program["id"], "jane", vanity="JANE-10")
    assert errors(await issue(tenant, program["id"], "other", "jane_10")) == [("vanity", "CODE_TAKEN")]
    assert errors(await issue(tenant, program["id"], "other", "JANE۱۰")) == [("vanity", "CODE_TAKEN")]


COUPON = "query($c: String!) { validateCoupon(code: $c) { valid reason coupon { code } } }"


async def test_coupons_are_found_however_they_are_typed(tenant):
    program = await active_program(tenant)
    pool = await tenant.gql(
        """mutation($input: CreateCouponPoolInput!) { createCouponPool(input: $input) { couponPool { id } } }""",
        {"input": {"programId": program["id"], "name": "Nowruz"}},
    )
    added = await tenant.gql(
        """mutation($p: ID!, $codes: [String!]!) { addCouponCodes(poolId: $p, codes: $codes) { added userErrors { code } } }""",
        {"p": pool["createCouponPool"]["couponPool"]["id"], "codes": ["NOWRUZ-۱۴۰۵", "SPRING-10", "SPRING10"]},
    )
    assert added["addCouponCodes"] == {"added": 3, "userErrors": []}  # Persian digits stored as ASCII
    rows = (await tenant.gql('{ couponPools(programId: "%s") { available } }' % program["id"]))["couponPools"]
    assert rows == [{"available": 3}]
    for typed, expected in (
        ("nowruz 1405", "NOWRUZ-1405"),
        ("ＮＯＷＲＵＺ－１４０５", "NOWRUZ-1405"),
        ("nowruz-١٤٠٥", "NOWRUZ-1405"),
        ("spring-10", "SPRING-10"),
        ("spring10", "SPRING10"),
    ):
        found = (await tenant.gql(COUPON, {"c": typed}))["validateCoupon"]
        assert found["coupon"] == {"code": expected} and found["reason"] == "COUPON_NOT_ACTIVE", typed  # pooled: not given yet
    ambiguous = (await tenant.gql(COUPON, {"c": "spring_10"}))["validateCoupon"]  # SPRING-10 or SPRING10?
    assert ambiguous == {"valid": False, "reason": "COUPON_NOT_FOUND", "coupon": None}


@pytest.mark.parametrize("name", ["علی‌رضا کریمی", "  Jane Doe ", "ريحانه", "ریحانه", "Zoë O'Brien", "مُحَمَّد"])
async def test_names_round_trip_exactly(tenant, name):
    saved = await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "c-1", "name": name}})
    assert saved["upsertCustomer"]["customer"]["name"] == name
    read = await tenant.gql('{ customer(externalId: "c-1") { name } }')
    assert read["customer"]["name"] == name


async def test_locale_settings_are_validated(tenant):
    for field, value in (("timeZone", "Asia/Nowhere"), ("locale", "xx_YY_ZZ")):
        body = await tenant.gql(LOCALE, {"input": {field: value}})
        assert errors(body["setLocaleSettings"]) == [(field, "INVALID_INPUT")]
    body = await tenant.gql(LOCALE, {"input": {"locale": "ar-SA"}})
    assert body["setLocaleSettings"]["settings"]["locale"] == "ar_SA"
    assert body["setLocaleSettings"]["settings"]["numberingSystem"] == "arab"
