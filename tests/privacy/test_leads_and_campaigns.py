"""A referrer's business leads, campaign and contest standing and promotion-rule acceptances in
their export; erasing them takes the contact of the leads they submitted (a third person who
reached the merchant only through them) along, while a later lead naming that person is still
found to be a duplicate."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import String, select, type_coerce

from app.campaigns.models import CampaignProgress, CampaignSale, ContestStanding, PromotionRulesAcceptance
from app.db import create_session_factory, utcnow
from app.leads.models import Lead, LeadEvent
from app.merchants.models import AuditEntry
from app.privacy import export
from app.webhooks.models import WebhookDelivery
from tests import graphql_ops as ops
from tests.campaigns.helpers import create_campaign, finalize_due, program_with_referrers, run_campaign_jobs, sale, today
from tests.conftest import system_connection
from tests.leads.test_leads import move, staff_view, submit
from tests.privacy.helpers import ERASE, EXPORT, all_rows, readable_mentions, run_jobs
from tests.rewards.helpers import assert_ledger_consistent
from tests.webhooks.conftest import create_endpoint

ADA = {
    "contactName": "Ada Lovelace",
    "contactEmail": "Ada.Lovelace@Acme.example",
    "notes": "Ada runs procurement, +44 20 7946 0958",
}
ADA_VALUES = ["Ada Lovelace", "ada.lovelace@acme.example", "+44 20 7946 0958", "called Ada"]


@pytest.fixture(autouse=True)
async def _ledger_verified(db):
    yield
    await assert_ledger_consistent(db)


async def jane_the_referrer(tenant, db) -> dict[str, str]:
    """jane: two sales in a finished contest (its standing final, a prize won), the program's
    promotion rules accepted, a lead naming Ada at Acme moved on by staff with notes."""
    program, codes = await program_with_referrers(tenant, "jane", "ken")
    await create_endpoint(tenant, "https://shop.example/hooks", ["lead.status_changed"])
    contest = await create_campaign(
        tenant,
        program["id"],
        kind="CONTEST",
        name="December",
        topN=1,
        prizeAmount=20_000,
        refundWindowDays=0,
        startsOn=today() - timedelta(days=10),
        endsOn=today() - timedelta(days=1),
    )
    for _ in range(2):
        await sale(tenant, codes["jane"], at=utcnow() - timedelta(days=5))
    await run_campaign_jobs(db)
    assert await finalize_due(db, at=utcnow() + timedelta(days=1)) == 1

    rules = await tenant.gql(
        ops.PUBLISH_PROMOTION_RULES,
        {"programId": program["id"], "text": "Promote us fairly.", "clauses": [{"id": "no-spam", "text": "No spam."}]},
    )
    assert rules["publishPromotionRules"]["userErrors"] == []
    accepted = await tenant.gql(ops.ACCEPT_PROMOTION_RULES, {"programId": program["id"], "version": 1, "customer": "jane"})
    assert accepted["acceptPromotionRules"]["userErrors"] == []

    lead = await submit(tenant, program["id"], companyDomain="acme.example", idempotencyKey="lead-from-jane", **ADA)
    assert lead["userErrors"] == []
    assert (await move(tenant, lead["lead"]["id"], "CONTACTED", notes="called Ada", notesVisibleToReferrer=True))[
        "userErrors"
    ] == []
    assert (await move(tenant, lead["lead"]["id"], "QUALIFIED", notes="Ada wants a discount"))["userErrors"] == []
    return {"program_id": program["id"], "lead_id": lead["lead"]["id"], "contest_id": contest["id"]}


async def exported(tenant, db, client, customer: str) -> dict:
    requested = await tenant.gql(EXPORT, {"customer": customer})
    export_id = requested["exportCustomerData"]["export"]["id"]
    assert await run_jobs(db, export.EXPORT_JOB) >= 1
    status = await tenant.gql("query($id: ID!) { customerDataExport(id: $id) { downloadUrl } }", {"id": export_id})
    url = status["customerDataExport"]["downloadUrl"]
    response = await client.get(url[url.index("/", url.index("//") + 2) :])
    assert response.status_code == 200
    return response.json()


async def ids_of(db, model, *where) -> set[str]:
    async with create_session_factory(db)() as session:
        return {str(i) for i in (await session.scalars(select(model.id).where(*where))).all()}


async def test_the_export_holds_the_referrers_leads_campaign_standing_and_acceptances(db, tenant, client):
    world = await jane_the_referrer(tenant, db)
    document = await exported(tenant, db, client, "jane")
    jane = uuid.UUID(document["customer"]["id"])

    campaigns = document["campaigns"]
    assert (
        {p["id"] for p in campaigns["progress"]}
        == await ids_of(db, CampaignProgress, CampaignProgress.referrer_id == jane)
        != set()
    )
    assert {s["id"] for s in campaigns["sales"]} == await ids_of(db, CampaignSale, CampaignSale.referrer_id == jane)
    assert [(p["campaign"], p["sales"]) for p in campaigns["progress"]] == [("December", 2)]
    assert len(campaigns["sales"]) == 2
    assert [(s["campaignId"], s["rank"], s["sales"], s["prizeRewardId"] is not None) for s in campaigns["contestStandings"]] == [
        (world["contest_id"], 1, 2, True)
    ]
    assert {s["id"] for s in campaigns["contestStandings"]} == await ids_of(
        db, ContestStanding, ContestStanding.referrer_id == jane
    )
    prize = next(r for r in document["rewards"] if r["id"] == campaigns["contestStandings"][0]["prizeRewardId"])
    assert (prize["source"], prize["referralId"], prize["amount"]) == ("CAMPAIGN", None, 20_000)

    acceptances = document["promotionRules"]["acceptances"]
    assert [(a["programId"], a["version"], a["via"]) for a in acceptances] == [(world["program_id"], 1, "API")]
    assert {a["id"] for a in acceptances} == await ids_of(
        db, PromotionRulesAcceptance, PromotionRulesAcceptance.customer_id == jane
    )

    [lead] = document["leads"]
    assert (lead["id"], lead["company"], lead["companyDomain"], lead["status"]) == (
        world["lead_id"],
        "Acme GmbH",
        "acme.example",
        "QUALIFIED",
    )
    assert (lead["contactName"], lead["contactEmail"], lead["notes"]) == (
        "Ada Lovelace",
        "ada.lovelace@acme.example",
        ADA["notes"],
    )
    # the steps as the referrer sees them: staff notes only where marked for them
    assert [(s["toStatus"], s["byReferrer"], s["notes"]) for s in lead["steps"]] == [
        ("SUBMITTED", True, ADA["notes"]),
        ("CONTACTED", False, "called Ada"),
        ("QUALIFIED", False, None),
    ]
    assert {s["id"] for s in lead["steps"]} == await ids_of(db, LeadEvent, LeadEvent.lead_id == uuid.UUID(world["lead_id"]))

    # ken's export has none of it
    ken = await exported(tenant, db, client, "ken")
    assert (ken["leads"], ken["promotionRules"]["acceptances"], ken["campaigns"]["contestStandings"]) == ([], [], [])


async def test_the_contact_is_stored_encrypted_and_duplicates_are_found_by_its_keyed_hash(db, tenant):
    world = await jane_the_referrer(tenant, db)
    async with system_connection(db) as connection:
        stored = (
            await connection.execute(
                select(
                    type_coerce(Lead.contact_name, String),
                    type_coerce(Lead.contact_email, String),
                    Lead.contact_email_hash,
                )
            )
        ).one()
    assert "Ada" not in stored[0] and "acme" not in stored[1].lower() and len(stored[2]) == 64

    again = await submit(tenant, world["program_id"], "ken", company="Acme Ltd", contactEmail="ADA.lovelace@acme.example")
    other = await submit(tenant, world["program_id"], "ken", company="Acme Ltd", contactEmail="grace@acme.example")
    assert (await staff_view(tenant, again["lead"]["id"]))["duplicateOfId"] == world["lead_id"]
    assert (await staff_view(tenant, other["lead"]["id"]))["duplicateOfId"] is None


async def test_erasing_the_referrer_empties_the_contact_of_their_leads_everywhere(db, tenant):
    world = await jane_the_referrer(tenant, db)
    assert readable_mentions(await all_rows(db), ADA_VALUES)  # the check below can see them

    erased = (await tenant.gql(ERASE, {"customer": "jane", "reason": "GDPR request #5120"}))["eraseCustomer"]
    assert erased["userErrors"] == [] and erased["erasure"]["changes"]["leads"] == 1

    assert readable_mentions(await all_rows(db), ADA_VALUES) == []  # lead, its steps, the audit log, webhook deliveries
    lead = await staff_view(tenant, world["lead_id"])
    assert (lead["contactName"], lead["contactEmail"], lead["notes"]) == (None, None, None)
    assert [h["notes"] for h in lead["history"]] == [None, None, None]
    assert (lead["company"], lead["companyDomain"], lead["status"]) == ("Acme GmbH", "acme.example", "QUALIFIED")  # a business
    async with system_connection(db) as connection:
        key = (await connection.execute(select(Lead.idempotency_key))).scalar_one()
        steps = (
            await connection.execute(select(AuditEntry.action).where(AuditEntry.subject_id == uuid.UUID(world["lead_id"])))
        ).all()
        payloads = (
            (
                await connection.execute(
                    select(WebhookDelivery.payload)
                    .where(WebhookDelivery.event_type == "lead.status_changed")
                    .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
                )
            )
            .scalars()
            .all()
        )
    assert key != "lead-from-jane" and key.startswith("erased-")  # it named her
    assert len(steps) == 3  # the audit trail stays, without the notes
    assert [p["newStatus"] for p in payloads] == ["SUBMITTED", "CONTACTED", "QUALIFIED"]
    assert {p["notesForReferrer"] for p in payloads} == {None}

    # the keyed hash stays: naming Ada again is still a duplicate (no second referral fee for her)
    again = await submit(tenant, world["program_id"], "ken", company="Acme Ltd", contactEmail="ada.lovelace@acme.example")
    assert (await staff_view(tenant, again["lead"]["id"]))["duplicateOfId"] == world["lead_id"]
