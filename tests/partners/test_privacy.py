"""A partner's data in their export, and gone from free text when they are erased."""

from __future__ import annotations

from sqlalchemy import select

from app.db import create_session_factory
from app.partners.models import Partner
from app.privacy import export
from app.referrals.models import Customer
from tests import graphql_ops as ops
from tests.conftest import system_connection
from tests.partners.helpers import affiliate_program, customer, decide, enrol, sale, set_split


async def test_an_export_holds_the_partners_enrolment_history_sales_and_shares(tenant):
    program = await affiliate_program(tenant)
    ann = await enrol(tenant, program["id"], "ann")
    await decide(tenant, ann["id"], "SUSPEND", "paused for the audit")
    await decide(tenant, ann["id"], "REACTIVATE", "audit passed")
    await customer(tenant, "carla")
    await set_split(tenant, program["id"], [("carla", 1000)])
    await sale(tenant, "bob", code=ann["code"], amount=10_000, key="o-1")

    async with create_session_factory(tenant.engine)() as session:
        ann_row = await session.scalar(select(Customer).where(Customer.merchant_id == tenant.id, Customer.external_id == "ann"))
        carla_row = await session.scalar(
            select(Customer).where(Customer.merchant_id == tenant.id, Customer.external_id == "carla")
        )
        anns, carlas = await export.document_of(session, ann_row), await export.document_of(session, carla_row)

    (enrolment,) = anns["partners"]["enrolments"]
    assert [h["toStatus"] for h in enrolment["history"]] == ["APPLIED", "ACTIVE", "SUSPENDED", "ACTIVE"]
    assert [s["orderId"] for s in anns["partners"]["salesAsAffiliate"]] == ["o-1"]
    assert [(s["role"], s["amount"]) for s in anns["partners"]["shares"]] == [("AFFILIATE", 1000)]
    assert carlas["partners"]["enrolments"] == [] and carlas["partners"]["salesAsAffiliate"] == []
    assert [(s["role"], s["amount"]) for s in carlas["partners"]["shares"]] == [("CO_PRODUCER", 1000)]


async def test_erasing_a_partner_scrubs_their_own_words_from_the_application(tenant):
    program = await affiliate_program(tenant, rule=None)
    await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "ann", "email": "ann@blog.example"}})
    data = await tenant.gql(
        ops.APPLY_AS_PARTNER,
        {"programId": program["id"], "customerExternalId": "ann", "note": "Write to ann@blog.example about the blog"},
    )
    assert data["applyAsPartner"]["userErrors"] == []
    erased = await tenant.gql("""mutation { eraseCustomer(customerExternalId: "ann", reason: "ticket 42") {
        userErrors { field code message } } }""")
    assert erased["eraseCustomer"]["userErrors"] == []
    async with system_connection(tenant.engine) as connection:
        note = (await connection.execute(select(Partner.application_note))).scalar_one()
    assert "ann@blog.example" not in note
