"""A page's customers keep their personal columns sealed (app.personal.Sealed): the query gets
exactly what was stored, and only the values it asks for are ever decrypted."""

from __future__ import annotations

import pytest

from app import crypto
from tests.schema.test_query_count import REFERRALS, REFERRERS, make_referrals

PERSONAL = "email emailCanonical name metadata"


@pytest.fixture
def decryptions(monkeypatch) -> list[str]:
    """The column context of every value decrypted from here on."""
    seen: list[str] = []
    decrypt = crypto.Keyring.decrypt

    def counted(self, stored, *, context):
        seen.append(context)
        return decrypt(self, stored, context=context)

    monkeypatch.setattr(crypto.Keyring, "decrypt", counted)
    return seen


async def _page(tenant, referrer: str, referee: str) -> list[dict]:
    data = await tenant.gql(
        f"query {{ referrals(first: {REFERRALS}) {{ edges {{ node {{ referrer {{ {referrer} }} referee {{ {referee} }} }} }} }} }}"
    )
    return [edge["node"] for edge in data["referrals"]["edges"]]


async def test_a_page_decrypts_only_the_personal_values_it_shows(tenant, session, decryptions):
    await make_referrals(session, tenant.id)  # every referee has an email (and its canonical form)
    for r in range(REFERRERS):
        answer = await tenant.gql(
            "mutation($i: UpsertCustomerInput!) { upsertCustomer(input: $i) { userErrors { code } } }",
            {
                "i": {
                    "externalId": f"referrer-{r}",
                    "email": f"Ada.{r}+shop@Example.com",
                    "name": f"Ada {r}",
                    "metadata": {"tier": r},
                }
            },
        )
        assert answer["upsertCustomer"]["userErrors"] == []

    decryptions.clear()
    nodes = await _page(tenant, "externalId", "externalId")
    assert len(nodes) == REFERRALS
    assert decryptions == []  # nobody's email, name or metadata was asked for

    nodes = await _page(tenant, "externalId", "externalId email")
    assert sorted(node["referee"]["email"] for node in nodes) == sorted(f"referee-{n}@example.com" for n in range(REFERRALS))
    assert decryptions == ["customers.email"] * REFERRALS  # each referee's email once; nothing else

    decryptions.clear()
    nodes = await _page(tenant, f"externalId {PERSONAL}", "externalId")
    shown = {node["referrer"]["externalId"]: node["referrer"] for node in nodes}
    assert shown == {
        f"referrer-{r}": {
            "externalId": f"referrer-{r}",
            "email": f"Ada.{r}+shop@Example.com",
            "emailCanonical": f"ada.{r}+shop@example.com",  # dots and tags fold at mailboxes that ignore them only
            "name": f"Ada {r}",
            "metadata": {"tier": r},
        }
        for r in range(REFERRERS)
    }
    # Each of the five referrers' four values once, though the page shows each referrer on ten nodes.
    assert sorted(decryptions) == sorted(
        ["customers.email", "customers.email_canonical", "customers.name", "customers.metadata"] * REFERRERS
    )


async def test_a_customer_without_personal_values_shows_nulls(tenant, session):
    await make_referrals(session, tenant.id)  # the referrers were created by their codes: no email, no name
    nodes = await _page(tenant, f"externalId {PERSONAL}", f"externalId {PERSONAL}")
    for node in nodes:
        assert {key: node["referrer"][key] for key in ("email", "emailCanonical", "name", "metadata")} == dict.fromkeys(
            ("email", "emailCanonical", "name", "metadata")
        )
        assert node["referee"]["email"] == f"referee-{int(node['referee']['externalId'].split('-')[1])}@example.com"
        assert node["referee"]["name"] is None and node["referee"]["metadata"] is None
