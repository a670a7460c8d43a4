"""Customer data exports: built by a job, complete (every row about the customer in every table
that holds customer data), encrypted until downloaded once through a signed, expiring link."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import or_, select, text, update

from app.campaigns.models import CampaignProgress, CampaignSale, ContestStanding, PromotionRulesAcceptance
from app.db import Base, create_session_factory, utcnow
from app.fraud.models import CustomerIdentifier, FraudDecision, FraudReview
from app.leads.models import Lead, LeadEvent
from app.partners.models import Partner, PartnerSale, PartnerSaleShare
from app.payouts.models import Payout, PayoutAccount
from app.privacy import classification, export
from app.privacy.models import CustomerDataExport
from app.referrals.models import Action, Click, Customer, Referral, ReferralCode
from app.rewards.models import Coupon, LedgerAccount, LedgerEntry, Reward
from tests.conftest import system_connection
from tests.privacy.helpers import ERASE, EXPORT, EXPORT_STATUS, JANE, build_world, run_jobs
from tests.rewards.helpers import assert_ledger_consistent


@pytest.fixture(autouse=True)
async def _ledger_verified(db):
    yield
    await assert_ledger_consistent(db)


async def requested(tenant, customer: str = JANE["externalId"]) -> str:
    body = await tenant.gql(EXPORT, {"customer": customer})
    payload = body["exportCustomerData"]
    assert payload["userErrors"] == [] and payload["export"]["status"] == "PENDING" and payload["export"]["downloadUrl"] is None
    return payload["export"]["id"]


async def ready(db, tenant, customer: str = JANE["externalId"]) -> dict:
    export_id = await requested(tenant, customer)
    assert await run_jobs(db, export.EXPORT_JOB) >= 1
    status = (await tenant.gql(EXPORT_STATUS, {"id": export_id}))["customerDataExport"]
    assert status["status"] == "READY" and status["downloadUrl"]
    return status


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def rows_about(db, customer_id: uuid.UUID) -> dict[str, set[str]]:
    """The ids of every row about the customer, table by table, read from the database."""
    async with create_session_factory(db)() as session:

        async def ids(query) -> set[str]:
            return {str(i) for i in (await session.scalars(query)).all()}

        referrals = await ids(
            select(Referral.id).where(or_(Referral.referrer_id == customer_id, Referral.referee_id == customer_id))
        )
        actions = await ids(select(Action.id).where(Action.customer_id == customer_id))
        accounts = await ids(select(LedgerAccount.id).where(LedgerAccount.owner_id == customer_id))
        own_clicks = {
            str(c) for c in (await session.scalars(select(Action.click_id).where(Action.customer_id == customer_id))).all() if c
        } | {
            str(c)
            for c in (await session.scalars(select(Referral.click_id).where(Referral.referee_id == customer_id))).all()
            if c
        }
        return {
            "customers": {str(customer_id)},
            "referral_codes": await ids(select(ReferralCode.id).where(ReferralCode.customer_id == customer_id)),
            "clicks": own_clicks,
            "referrals": referrals,
            "actions": actions,
            "rewards": await ids(select(Reward.id).where(Reward.customer_id == customer_id)),
            "coupons": await ids(select(Coupon.id).where(Coupon.customer_id == customer_id)),
            "ledger_accounts": accounts,
            "ledger_entries": await ids(
                select(LedgerEntry.id).where(LedgerEntry.account_id.in_([uuid.UUID(a) for a in accounts]))
            ),
            "fraud_decisions": await ids(
                select(FraudDecision.id).where(FraudDecision.referral_id.in_([uuid.UUID(r) for r in referrals]))
            ),
            "fraud_reviews": await ids(
                select(FraudReview.id).where(FraudReview.referral_id.in_([uuid.UUID(r) for r in referrals]))
            ),
            "customer_identifiers": {
                str(
                    len(
                        (
                            await session.scalars(
                                select(CustomerIdentifier.id).where(CustomerIdentifier.customer_id == customer_id)
                            )
                        ).all()
                    )
                )
            },
            "customer_data_exports": await ids(
                select(CustomerDataExport.id).where(CustomerDataExport.customer_id == customer_id)
            ),
            "payout_accounts": await ids(select(PayoutAccount.id).where(PayoutAccount.customer_id == customer_id)),
            "payouts": await ids(select(Payout.id).where(Payout.customer_id == customer_id)),
            "partners": await ids(select(Partner.id).where(Partner.customer_id == customer_id)),
            "partner_sales": await ids(select(PartnerSale.id).where(PartnerSale.affiliate_id == customer_id)),
            "partner_sale_shares": await ids(select(PartnerSaleShare.id).where(PartnerSaleShare.customer_id == customer_id)),
            "campaign_progress": await ids(select(CampaignProgress.id).where(CampaignProgress.referrer_id == customer_id)),
            "campaign_sales": await ids(select(CampaignSale.id).where(CampaignSale.referrer_id == customer_id)),
            "contest_standings": await ids(select(ContestStanding.id).where(ContestStanding.referrer_id == customer_id)),
            "promotion_rules_acceptances": await ids(
                select(PromotionRulesAcceptance.id).where(PromotionRulesAcceptance.customer_id == customer_id)
            ),
            "leads": await ids(select(Lead.id).where(Lead.referrer_id == customer_id)),
            "lead_events": await ids(
                select(LeadEvent.id).join(Lead, Lead.id == LeadEvent.lead_id).where(Lead.referrer_id == customer_id)
            ),
        }


def ids_in(document: dict) -> dict[str, set[str]]:
    """The same, read from the export document."""
    return {
        "customers": {document["customer"]["id"]},
        "referral_codes": {c["id"] for c in document["referralCodes"]},
        "clicks": {c["id"] for c in document["clicks"]["own"]},
        "referrals": {r["id"] for r in document["referrals"]["asReferrer"] + document["referrals"]["asReferee"]},
        "actions": {a["id"] for a in document["actions"]},
        "rewards": {r["id"] for r in document["rewards"]},
        "coupons": {c["id"] for c in document["coupons"]},
        "ledger_accounts": {a["id"] for a in document["ledger"]["accounts"]},
        "ledger_entries": {e["id"] for e in document["ledger"]["entries"]},
        "fraud_decisions": {d["id"] for d in document["fraud"]["decisions"]},
        "fraud_reviews": {r["id"] for r in document["fraud"]["reviews"]},
        "customer_identifiers": {str(len(document["fraud"]["identifiers"]))},
        "customer_data_exports": {e["id"] for e in document["dataRequests"]["exports"]},
        "payout_accounts": {a["id"] for a in document["payouts"]["accounts"]},
        "payouts": {p["id"] for p in document["payouts"]["payouts"]},
        "partners": {p["id"] for p in document["partners"]["enrolments"]},
        "partner_sales": {s["id"] for s in document["partners"]["salesAsAffiliate"]},
        "partner_sale_shares": {s["id"] for s in document["partners"]["shares"]},
        "campaign_progress": {p["id"] for p in document["campaigns"]["progress"]},
        "campaign_sales": {s["id"] for s in document["campaigns"]["sales"]},
        "contest_standings": {s["id"] for s in document["campaigns"]["contestStandings"]},
        "promotion_rules_acceptances": {a["id"] for a in document["promotionRules"]["acceptances"]},
        "leads": {lead["id"] for lead in document["leads"]},
        "lead_events": {s["id"] for lead in document["leads"] for s in lead["steps"]},
    }


async def test_the_export_holds_every_row_about_the_customer(db, tenant, client):
    await build_world(tenant)
    status = await ready(db, tenant)
    response = await client.get(path_of(status["downloadUrl"]))
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert "attachment" in response.headers["content-disposition"]
    document = response.json()
    assert document["format"] == export.FORMAT
    customer_id = uuid.UUID(document["customer"]["id"])

    stored, exported = await rows_about(db, customer_id), ids_in(document)
    covered = {t for t in classification.EXPORTED}  # every table holding customer data ...
    assert covered - set(stored) <= {"ledger_transactions", "fraud_list_entries", "customer_erasures"}  # ... checked here
    for table in stored:
        assert stored[table] == exported[table], table
    assert all(
        stored[t]
        for t in (
            "referral_codes",
            "clicks",
            "referrals",
            "actions",
            "rewards",
            "ledger_entries",
            "fraud_decisions",
            "fraud_reviews",
            "payout_accounts",
        )
    )

    assert document["customer"] | {"id": None, "createdAt": None, "updatedAt": None} == {
        "id": None,
        "externalId": JANE["externalId"],
        "email": JANE["email"],
        "emailCanonical": "janedoe@gmail.com",
        "name": JANE["name"],
        "metadata": JANE["metadata"],
        "createdAt": None,
        "updatedAt": None,
        "erasedAt": None,
    }
    signup = next(a for a in document["actions"] if a["idempotencyKey"] == "signup-jane")
    assert signup["deviceId"] == "dev-jane-9f2a" and signup["ip"] == "198.51.100.23"
    assert {r["transactionKind"] for r in document["ledger"]["entries"]} >= {"GRANT", "REDEEM"}
    assert document["clicks"]["visitsThroughTheirLinks"] == 1  # bob's click, counted, not shown
    assert all("refereeId" in r and "referrerId" not in r for r in document["referrals"]["asReferrer"])
    # fraud decisions: the signals that weighed, not evidence quoting the other party
    assert "bob" not in json.dumps(document["fraud"]["decisions"]) and "mallory" not in json.dumps(document)
    assert document["dataRequests"]["exports"][0]["status"] == "PENDING"  # this one, being built


async def test_the_document_can_be_downloaded_once(db, tenant, client):
    await build_world(tenant)
    status = await ready(db, tenant)
    assert (await client.get(path_of(status["downloadUrl"]))).status_code == 200
    again = await client.get(path_of(status["downloadUrl"]))
    assert again.status_code == 410
    after = (await tenant.gql(EXPORT_STATUS, {"id": status["id"]}))["customerDataExport"]
    assert after["status"] == "DOWNLOADED" and after["downloadUrl"] is None and after["downloadedAt"]
    async with system_connection(db) as connection:
        assert (await connection.execute(text("SELECT document_encrypted FROM customer_data_exports"))).scalar() is None
    audit = await tenant.gql("{ auditLog(first: 100) { edges { node { action details } } } }")
    downloaded = [e["node"] for e in audit["auditLog"]["edges"] if e["node"]["action"] == "customer.export_downloaded"]
    assert len(downloaded) == 1 and downloaded[0]["details"]["ip"] == "203.0.113.7"


async def test_the_document_is_encrypted_until_then(db, tenant):
    await build_world(tenant)
    await ready(db, tenant)
    async with system_connection(db) as connection:
        stored = (await connection.execute(text("SELECT document_encrypted FROM customer_data_exports"))).scalar()
    assert stored.startswith("v2:")
    sealed = base64.b64decode(stored.rsplit(":", 1)[1])  # letters of base64 text could spell "jane" by chance
    assert JANE["email"].encode() not in sealed and b"jane" not in sealed.lower()


@pytest.mark.parametrize("tamper", ["signature", "expires", "merchant", "other-export"])
async def test_a_changed_link_is_refused(db, tenant, other_tenant, client, tamper):
    await build_world(tenant)
    status = await ready(db, tenant)
    parts = urlsplit(status["downloadUrl"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path = parts.path
    if tamper == "signature":
        query["signature"] = "0" * 64
    elif tamper == "expires":
        query["expires"] = str(int(query["expires"]) + 3600)
    elif tamper == "merchant":
        query["merchant"] = str(other_tenant.id)
    else:
        path = path.replace(status["id"], str(uuid.uuid4()))
    response = await client.get(f"{path}?{urlencode(query)}")
    assert response.status_code == 403
    assert (await client.get(path_of(status["downloadUrl"]))).status_code == 200  # the real one still works, once


async def test_an_expired_export_cannot_be_downloaded_and_its_document_is_deleted(db, tenant, client):
    await build_world(tenant)
    status = await ready(db, tenant)
    async with create_session_factory(db)() as session:
        await session.execute(update(CustomerDataExport).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    assert (await client.get(path_of(status["downloadUrl"]))).status_code == 410  # the link's own time is not up yet
    async with create_session_factory(db)() as session:
        assert await export.expire_due(session) == 1
        await session.commit()
    after = (await tenant.gql(EXPORT_STATUS, {"id": status["id"]}))["customerDataExport"]
    assert after["status"] == "EXPIRED" and after["downloadUrl"] is None
    async with system_connection(db) as connection:
        assert (await connection.execute(text("SELECT document_encrypted FROM customer_data_exports"))).scalar() is None


async def test_an_erased_customer_is_exported_under_the_pseudonym_and_pending_exports_are_dropped(db, tenant, client):
    await build_world(tenant)
    pending = await requested(tenant)
    erased = (await tenant.gql(ERASE, {"customer": JANE["externalId"], "reason": "ticket 7"}))["eraseCustomer"]
    pseudonym = erased["erasure"]["pseudonym"]
    assert (await tenant.gql(EXPORT_STATUS, {"id": pending}))["customerDataExport"]["status"] == "EXPIRED"
    status = await ready(db, tenant, pseudonym)
    document = (await client.get(path_of(status["downloadUrl"]))).json()
    assert document["customer"]["externalId"] == pseudonym and document["customer"]["email"] is None
    assert document["dataRequests"]["erasure"]["pseudonym"] == pseudonym
    assert JANE["email"] not in json.dumps(document) and JANE["externalId"] not in json.dumps(document)
    assert {i["value"] for i in document["fraud"]["identifiers"]} == {None}


async def test_the_export_ready_event_names_the_export_not_the_link(db, tenant):
    await build_world(tenant)
    status = await ready(db, tenant)
    async with system_connection(db) as connection:
        payload = (
            await connection.execute(text("SELECT payload FROM webhook_deliveries WHERE event_type = 'customer.export_ready'"))
        ).scalar()
    payload = json.loads(payload) if isinstance(payload, str) else payload
    assert payload["exportId"] == status["id"] and payload["customerExternalId"] == JANE["externalId"]
    assert "signature" not in json.dumps(payload)


async def test_an_unknown_customer_cannot_be_exported(tenant):
    body = await tenant.gql(EXPORT, {"customer": "nobody"})
    assert [(e["field"], e["code"]) for e in body["exportCustomerData"]["userErrors"]] == [("customerExternalId", "NOT_FOUND")]


def test_every_exported_table_is_a_table():
    assert set(classification.EXPORTED) <= {t.name for t in Base.metadata.sorted_tables}
    assert Customer.__tablename__ in classification.EXPORTED and Click.__tablename__ in classification.EXPORTED
