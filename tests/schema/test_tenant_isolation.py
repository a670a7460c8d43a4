"""Tenant isolation: merchant B, holding merchant A's ids, codes, tokens and external ids,
can neither read nor change A's data through any GraphQL operation.

Every root field that takes an identifier has at least one case in CASES; a new field must be
added there (or to NO_FOREIGN_ID with a reason) or `test_every_root_field_is_covered` fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import graphql
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Base
from app.schema.schema import build_schema
from tests import graphql_ops as ops
from tests.conftest import system_connection
from tests.conftest import test_settings as make_settings
from tests.scenarios import PAY_AT_SIGNUP, active_program, click, code_for, record
from tests.widget.helpers import SET_PROGRAM_WIDGET, WIDGET_SESSION, signed, widget_secret

# --------------------------------------------------------------------------------------------
# The world: A's real data, and a little of B's own so B's calls are otherwise valid.


@dataclass
class World:
    program_id: str  # A's
    code: str  # A's (jane's code)
    token: str  # A's attribution token
    referral_id: str  # A's (jane -> bob)
    extra_key_id: str  # A's second secret key
    rule_id: str  # A's reward rule
    reward_id: str  # jane's credit for bob's purchase
    coupon_code: str  # bob's 15 % off, from A's generated coupons
    pool_id: str  # A's coupon pool
    dead_job_id: str  # a job of A's that failed every attempt
    webhook_endpoint_id: str  # A's endpoint
    webhook_delivery_id: str  # A's reward.granted delivery to it
    review_id: str  # A's open fraud review (mallory signed up on jane's device)
    list_entry_id: str  # A's blocklisted email
    b_program_id: str
    b_code: str
    widget_secret: str  # A's secret for signing customer ids
    b_widget_secret: str
    export_id: str  # A's export of jane's data
    payouts: PayoutWorld | None = None  # built for the cases that need it (Case.payouts)
    campaign_id: str = ""  # A's contest
    lead_id: str = ""  # jane's lead at A
    partners: PartnerWorld | None = None  # built for the cases that need it (Case.partners)


@dataclass
class PartnerWorld:
    """A's affiliate program with an ACTIVE partner (ann) in a group, a split, and a sale."""

    program_id: str
    partner_id: str
    group_id: str


async def build_partner_world(a) -> PartnerWorld:
    from tests.partners import helpers as partners

    program = await partners.affiliate_program(a)
    ann = await partners.enrol(a, program["id"], "ann")
    group = await a.gql(ops.CREATE_PARTNER_GROUP, {"programId": program["id"], "name": "Gold", "commissionBps": 2000})
    await partners.customer(a, "carla")
    assert (await partners.set_split(a, program["id"], [("carla", 500)]))["userErrors"] == []
    await partners.sale(a, "partner-buyer", code=ann["code"], amount=9999, key="partner-order")
    return PartnerWorld(program_id=program["id"], partner_id=ann["id"], group_id=group["createPartnerGroup"]["group"]["id"])


def unreachable_partner_world() -> PartnerWorld:
    return PartnerWorld(*(str(uuid.uuid4()) for _ in range(3)))


@dataclass
class PayoutWorld:
    """A's admins, their session, a payout sent in a batch file; B's own OWNER session."""

    a_admin_id: str
    a_session_id: str
    payout_id: str
    batch_id: str
    program_id: str  # A's program with a payout schedule
    b_owner_token: str


async def build_payout_world(a, b, clock) -> PayoutWorld:
    from tests.payouts import helpers as payouts

    owner = await payouts.no_cooling_off(a)
    finance = await payouts.approver(a, clock)
    program = await payouts.commission_program(a, "A's affiliates")
    payout = await payouts.payout_for(a, program, "payee", 1000)
    approved = await payouts.approve(a, finance, [payout], code=finance.code(clock()))
    assert approved["data"]["approvePayouts"]["approvedCount"] == 1
    await payouts.run_jobs(a.engine)
    batch_id = (await a.gql(payouts.PAYOUT, {"id": payout["id"]}))["payout"]["batchId"]
    schedule = await a.gql(
        """mutation($p: ID!) { setPayoutSchedule(programId: $p, input: {frequency: MONTHLY, day: 1,
        minimums: [{currency: "USD", amount: 100}]}) { userErrors { code } } }""",
        {"p": program},
    )
    assert schedule["setPayoutSchedule"]["userErrors"] == []
    sessions = await a.gql("query($id: ID) { adminSessions(adminId: $id) { id } }", {"id": owner.id}, key=owner.token)
    b_owner = await payouts.make_admin(b)
    return PayoutWorld(
        a_admin_id=finance.id,
        a_session_id=sessions["adminSessions"][0]["id"],
        payout_id=payout["id"],
        batch_id=batch_id,
        program_id=program,
        b_owner_token=b_owner.token,
    )


def unreachable_payout_world() -> PayoutWorld:
    """Ids of the right shape for calls refused before they look anything up (no key)."""
    return PayoutWorld(*(str(uuid.uuid4()) for _ in range(5)), b_owner_token="sess_none")


async def build_world(a, b, clock=None) -> World:
    program = await active_program(a, clearance=PAY_AT_SIGNUP)
    jane = await a.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "jane", "email": "jane@a-shop.example", "name": "Jane A"}})
    assert jane["upsertCustomer"]["userErrors"] == []
    code = await code_for(a, program["id"], "jane")
    tracked = await click(a, code["code"])
    assert tracked["userErrors"] == []
    signup = await record(
        a,
        type="SIGNUP",
        customerExternalId="bob",
        idempotencyKey="signup-bob",
        attributionToken=tracked["attributionToken"],
        context={"email": "bob@a-shop.example"},
    )
    assert signup["action"]["attribution"] == "REFERRAL_CREATED"
    key = await a.gql(CREATE_KEY, {"kind": "SECRET", "name": "deploy"})
    assert key["createApiKey"]["userErrors"] == []
    rule = await a.gql(CREATE_RULE, {"programId": program["id"], "input": CREDIT_RULE})
    assert rule["createRewardRule"]["userErrors"] == []
    discount = await a.gql(CREATE_RULE, {"programId": program["id"], "input": DISCOUNT_RULE})
    assert discount["createRewardRule"]["userErrors"] == []
    pool = await a.gql(CREATE_POOL, {"input": {"programId": program["id"], "name": "Spring codes"}})
    pool_id = pool["createCouponPool"]["couponPool"]["id"]
    added = await a.gql(ADD_CODES, {"poolId": pool_id, "codes": ["A-SPRING-1", "A-SPRING-2"]})
    assert added["addCouponCodes"]["added"] == 2
    endpoint = await a.gql(
        CREATE_WEBHOOK, {"input": {"url": "https://hooks.a-shop.example/referral", "eventTypes": ["reward.granted"]}}
    )
    assert endpoint["createWebhookEndpoint"]["userErrors"] == []
    purchase = await record(
        a,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="order-bob",
        orderId="bob-1",
        amount=5000,
        currency="USD",
    )
    assert purchase["userErrors"] == []
    policy = await a.gql(
        SET_FRAUD_POLICY,
        {
            "programId": program["id"],
            "policy": {  # mallory's review alone
                "reviewScore": 55,
                "signals": [{"signal": "referrer_under_review", "enabled": False}],
            },
        },
    )
    assert policy["setFraudPolicy"]["userErrors"] == []
    await record(a, type="SIGNUP", customerExternalId="jane", idempotencyKey="signup-jane", context={"deviceId": "dev-jane"})
    mallory = await record(
        a,
        type="SIGNUP",
        customerExternalId="mallory",
        idempotencyKey="signup-mallory",
        referralCode=code["code"],
        context={"deviceId": "dev-jane"},
    )
    assert mallory["action"]["attribution"] == "REFERRAL_CREATED"
    review = await a.gql("{ fraudReviews { edges { node { id } } } }")
    [review_id] = [e["node"]["id"] for e in review["fraudReviews"]["edges"]]
    entry = await a.gql(ADD_LIST_ENTRY, {"kind": "EMAIL", "value": "fraudster@a-shop.example"})
    assert entry["addFraudListEntry"]["userErrors"] == []
    deliveries = await a.gql("{ webhookDeliveries { edges { node { id eventType } } } }")
    assert {e["node"]["eventType"] for e in deliveries["webhookDeliveries"]["edges"]} == {"reward.granted"}
    reward = await a.gql('{ rewards(customerExternalId: "jane") { edges { node { id } } } }')
    assert len(reward["rewards"]["edges"]) == 1
    coupon = await a.gql('{ rewards(customerExternalId: "bob") { edges { node { coupon { code } } } } }')
    coupon_code = coupon["rewards"]["edges"][0]["node"]["coupon"]["code"]

    campaign = await a.gql(
        ops.CREATE_CAMPAIGN,
        {
            "input": {
                "programId": program["id"],
                "name": "A's contest",
                "kind": "CONTEST",
                "currency": "USD",
                "topN": 3,
                "prizeAmount": 100,
                "startsOn": "2026-01-01",
                "endsOn": "2026-01-31",
            }
        },
    )
    assert campaign["createCampaign"]["userErrors"] == []
    rules = await a.gql(
        ops.PUBLISH_PROMOTION_RULES,
        {"programId": program["id"], "text": "Be fair.", "clauses": [{"id": "no-spam", "text": "No spam."}]},
    )
    assert rules["publishPromotionRules"]["userErrors"] == []
    fee = await a.gql(ops.SET_LEAD_SETTINGS, {"programId": program["id"], "input": {"feeAmount": 100, "currency": "USD"}})
    assert fee["setLeadSettings"]["userErrors"] == []
    lead = await a.gql(ops.SUBMIT_LEAD, {"input": {"programId": program["id"], "customerExternalId": "jane", "company": "Acme"}})
    assert lead["submitLead"]["userErrors"] == []

    b_program = await active_program(b, clearance=PAY_AT_SIGNUP, name="B's own program")
    b_code = await code_for(b, b_program["id"], "b-referrer")
    b_customer = await b.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "b-customer"}})
    assert b_customer["upsertCustomer"]["userErrors"] == []
    return World(
        program_id=program["id"],
        code=code["code"],
        token=tracked["attributionToken"],
        referral_id=signup["referral"]["id"],
        extra_key_id=key["createApiKey"]["apiKey"]["id"],
        rule_id=rule["createRewardRule"]["rewardRule"]["ruleId"],
        reward_id=reward["rewards"]["edges"][0]["node"]["id"],
        coupon_code=coupon_code,
        pool_id=pool_id,
        dead_job_id=await dead_job_of(a),
        webhook_endpoint_id=endpoint["createWebhookEndpoint"]["endpoint"]["id"],
        webhook_delivery_id=deliveries["webhookDeliveries"]["edges"][0]["node"]["id"],
        review_id=review_id,
        list_entry_id=entry["addFraudListEntry"]["entry"]["id"],
        b_program_id=b_program["id"],
        b_code=b_code["code"],
        widget_secret=await widget_secret(a),
        b_widget_secret=await widget_secret(b),
        export_id=await export_of(a, "jane"),
        payouts=await build_payout_world(a, b, clock) if clock is not None else None,
        campaign_id=campaign["createCampaign"]["campaign"]["id"],
        lead_id=lead["submitLead"]["lead"]["id"],
    )


CREATE_RULE = """
mutation($programId: ID!, $input: RewardRuleInput!) {
  createRewardRule(programId: $programId, input: $input) { rewardRule { ruleId } userErrors { field code message } }
}"""
CREDIT_RULE = {
    "name": "Give $10",
    "trigger": "PURCHASE",
    "recipient": "REFERRER",
    "kind": "CREDIT",
    "amount": 1000,
    "currency": "USD",
}
DISCOUNT_RULE = {"name": "Get 15% off", "trigger": "PURCHASE", "recipient": "REFEREE", "kind": "DISCOUNT", "percentBps": 1500}
RULE_PAYLOAD = "{ rewardRule { id } userErrors { field code message } }"
CREATE_POOL = """
mutation($input: CreateCouponPoolInput!) {
  createCouponPool(input: $input) { couponPool { id } userErrors { field code message } }
}"""
ADD_CODES = """
mutation($poolId: ID!, $codes: [String!]!) {
  addCouponCodes(poolId: $poolId, codes: $codes) { couponPool { id } added userErrors { field code message } }
}"""
REDEMPTION_PAYLOAD = "{ transactionId balance userErrors { field code message } }"
CREATE_WEBHOOK = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id } secret userErrors { field code message } }
}"""


def last_30_days() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"from": (now - timedelta(days=30)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}


FRAUD_POLICY_INPUT = {"reviewScore": 70, "signals": [{"signal": "same_device", "weight": 0}]}
SET_FRAUD_POLICY = """
mutation($programId: ID!, $policy: FraudPolicyInput!) {
  setFraudPolicy(programId: $programId, policy: $policy) { policy { version } userErrors { field code message } }
}"""
ADD_LIST_ENTRY = """
mutation($kind: FraudListKind!, $value: String!) {
  addFraudListEntry(kind: $kind, value: $value) { entry { id kind value } userErrors { field code message } }
}"""
RESOLVE_REVIEWS = """
mutation($filter: FraudReviewFilter!) {
  resolveFraudReviews(filter: $filter, resolution: REJECT, limit: 100) {
    resolvedCount reviews { id } userErrors { field code message } }
}"""
SET_CUSTOMER_STATUS = """
mutation($customer: String!, $status: CustomerFraudStatus!) {
  setCustomerFraudStatus(customerExternalId: $customer, status: $status) {
    customer { externalId } status userErrors { field code message } }
}"""


async def export_of(tenant, customer: str) -> str:
    body = await tenant.gql(
        "mutation($c: String!) { exportCustomerData(customerExternalId: $c) { export { id } userErrors { code } } }",
        {"c": customer},
    )
    assert body["exportCustomerData"]["userErrors"] == []
    return body["exportCustomerData"]["export"]["id"]


async def dead_job_of(tenant) -> str:
    """A job of the merchant's that failed every attempt (written directly: no worker runs here)."""
    from app.db import create_session_factory
    from app.worker.models import JobStatus, OutboxJob

    async with create_session_factory(tenant.engine)() as session:
        job = OutboxJob(merchant_id=tenant.id, actor="webhooks.deliver", args={}, status=JobStatus.DEAD.value, attempts=8)
        session.add(job)
        await session.commit()
        return str(job.id)


CREATE_KEY = """
mutation($kind: ApiKeyKind!, $name: String) {
  createApiKey(kind: $kind, name: $name) { key apiKey { id kind } userErrors { field code message } }
}"""

# Everything A can see of its own data, through the API.
A_VIEW = """
query($programId: ID!, $referralId: ID!, $code: String!) {
  program(id: $programId) {
    id name status attributionWindowDays claimWindowDays shareUrlTemplate codeStyle codeLength updatedAt
  }
  referralCode(code: $code) { id code active deactivatedAt customer { externalId } }
  referral(id: $referralId) {
    id status source qualifiedAt referrer { externalId } referee { externalId email } code { code }
    actions { id type attribution }
  }
  programs(first: 100) { edges { node { id name status } } }
  referrals(first: 100) { edges { node { id status } } }
  actions(first: 100) { edges { node { id type idempotencyKey attribution customer { externalId } referral { id } } } }
  referralActions: actions(referralId: $referralId) { edges { node { id type } } }
  apiKeys { id kind last4 active revokedAt expiresAt }
  jane: customer(externalId: "jane") {
    id email name metadata referralCodes { code active }
    balances { kind unit available held }
    rewards { edges { node { id status amount remaining } } }
    ledgerEntries { edges { node { id amount } } }
  }
  rules: rewardRules(programId: $programId) { id ruleId version enabled name }
  deadJobs { edges { node { id status attempts } } }
  webhookEndpoints { id url eventTypes enabled disabledReason previousSecretExpiresAt updatedAt }
  webhookDeliveries { edges { node { id status attemptCount nextAttemptAt attempts { attemptedAt } } } }
  pools: couponPools(programId: $programId) { id name available issued redeemed }
  bob_rewards: rewards(customerExternalId: "bob") { edges { node { id status coupon { code status } } } }
  bob: customer(externalId: "bob") { id email referredBy { id } }
  fraudPolicy(programId: $programId) { version reviewScore }
  fraudPolicyHistory(programId: $programId) { version }
  fraudDecisions(referralId: $referralId) { id outcome }
  openReviews: fraudReviews(programId: $programId) { edges { node { id status signals rewards { id status underReview } } } }
  fraudListEntries { edges { node { id kind value } } }
  janeStatus: customerFraudStatus(customerExternalId: "jane")
  auditLog(first: 100) { edges { node { id action } } }
}"""


async def a_view(a, world: World) -> dict[str, Any]:
    view = await a.gql(A_VIEW, {"programId": world.program_id, "referralId": world.referral_id, "code": world.code})
    assert [e["node"]["type"] for e in view["referralActions"]["edges"]] == ["PURCHASE", "SIGNUP"]  # A sees its own
    assert [e["node"]["id"] for e in view["openReviews"]["edges"]] == [world.review_id]
    assert [e["node"]["id"] for e in view["fraudListEntries"]["edges"]] == [world.list_entry_id]
    return view


async def merchant_rows(engine: AsyncEngine, merchant_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """Every stored row that belongs to the merchant, table by table."""
    rows: dict[str, list[dict[str, Any]]] = {}
    async with system_connection(engine) as connection:
        for table in Base.metadata.sorted_tables:
            if table.name == "merchants":
                query = select(table).where(table.c.id == merchant_id)
            elif "merchant_id" in table.c:
                query = select(table).where(table.c.merchant_id == merchant_id)
            else:
                continue
            result = await connection.execute(query.order_by(*table.primary_key.columns))
            rows[table.name] = [dict(row) for row in result.mappings()]
    return rows


def cross_tenant_references(b_rows: dict[str, list[dict]], a_rows: dict[str, list[dict]]) -> list[str]:
    """B's rows whose foreign keys point at one of A's rows."""
    owned_by_a = {(name, row["id"]) for name, rows in a_rows.items() for row in rows if "id" in row}
    found = []
    for table in Base.metadata.sorted_tables:
        for row in b_rows.get(table.name, []):
            for column in table.columns:
                for fk in column.foreign_keys:
                    if (fk.column.table.name, row[column.name]) in owned_by_a:
                        found.append(f"{table.name}.{column.name} -> {fk.column.table.name} {row[column.name]}")
    return found


# --------------------------------------------------------------------------------------------
# Expectations


def graphql_not_found(field: str) -> Callable[[dict, World], None]:
    def check(body: dict, world: World) -> None:
        errors = body.get("errors") or []
        assert [e["extensions"]["code"] for e in errors if e.get("path", [None])[0] == field] == ["NOT_FOUND"], body
        assert body["data"] is None or body["data"].get(field) is None, body

    check.writes = False  # type: ignore[attr-defined]
    return check


def user_error(field: str, code: str, input_field: str, result: str) -> Callable[[dict, World], None]:
    def check(body: dict, world: World) -> None:
        assert "errors" not in body, body
        payload = body["data"][field]
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(input_field, code)], payload
        assert payload[result] is None, payload

    check.writes = False  # type: ignore[attr-defined]
    return check


def unattributed_action(status: str) -> Callable[[dict, World], None]:
    """The action is B's own, recorded, but A's evidence means nothing to B."""

    def check(body: dict, world: World) -> None:
        assert "errors" not in body, body
        payload = body["data"]["recordAction"]
        assert payload["userErrors"] == [], payload
        assert payload["action"]["attribution"] == status, payload
        assert payload["referral"] is None, payload

    check.writes = True  # type: ignore[attr-defined]
    return check


def nothing_listed(field: str) -> Callable[[dict, World], None]:
    """A list of B's own: B has none, so none of A's may show."""

    def check(body: dict, world: World) -> None:
        assert "errors" not in body, body
        assert body["data"][field]["edges"] == [], body

    check.writes = False  # type: ignore[attr-defined]
    return check


def nothing_resolved(errors: list[tuple[str, str]]) -> Callable[[dict, World], None]:
    def check(body: dict, world: World) -> None:
        assert "errors" not in body, body
        payload = body["data"]["resolveFraudReviews"]
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == errors, payload
        assert payload["resolvedCount"] == 0 and payload["reviews"] == [], payload

    check.writes = False  # type: ignore[attr-defined]
    return check


def nothing_approved(body: dict, world: World) -> None:
    """B's approver naming A's payout: not found, and no code is checked."""
    assert "errors" not in body, body
    payload = body["data"]["approvePayouts"]
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("ids.0", "NOT_FOUND")], payload
    assert payload["approvedCount"] == 0


nothing_approved.writes = False  # type: ignore[attr-defined]


def coupon_unknown(body: dict, world: World) -> None:
    """Validating A's coupon code as B: no such coupon for B."""
    assert "errors" not in body, body
    assert body["data"]["validateCoupon"] == {"valid": False, "reason": "COUPON_NOT_FOUND", "coupon": None}


coupon_unknown.writes = False  # type: ignore[attr-defined]


def own_customer(body: dict, world: World) -> None:
    """B's "jane" is B's own customer, not A's."""
    assert "errors" not in body, body
    payload = body["data"]["upsertCustomer"]
    assert payload["userErrors"] == []
    assert payload["customer"]["externalId"] == "jane"
    assert payload["customer"]["email"] == "jane@b-shop.example"
    assert payload["customer"]["referralCodes"] == []


own_customer.writes = True  # type: ignore[attr-defined]


def own_code_with_same_text(body: dict, world: World) -> None:
    """Codes are unique per merchant: B may own the same text, as a separate code."""
    assert "errors" not in body, body
    payload = body["data"]["issueReferralCode"]
    assert payload["userErrors"] == [], payload
    assert payload["referralCode"]["code"] == world.code
    assert payload["referralCode"]["program"]["id"] == world.b_program_id


own_code_with_same_text.writes = True  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# Every operation that takes an identifier, called by B with A's.


@dataclass(frozen=True)
class Case:
    field: str  # the root Query/Mutation field under test
    name: str
    document: str
    variables: Callable[[World], dict[str, Any]]
    check: Callable[[dict, World], None]
    key: str = "secret"  # or "publishable": B's key of that kind; or "admin": B's OWNER session
    payouts: bool = False  # needs the payout world (A's admins, payouts, batch)
    partners: bool = False  # needs A's affiliate program (PartnerWorld)


def graphql_error(field: str, code: str) -> Callable[[dict, World], None]:
    def check(body: dict, world: World) -> None:
        errors = body.get("errors") or []
        assert [e["extensions"]["code"] for e in errors if e.get("path", [None])[0] == field] == [code], body
        assert body["data"] is None or body["data"].get(field) is None, body

    check.writes = False  # type: ignore[attr-defined]
    return check


def _partner_signature(world: World) -> dict[str, Any]:
    """ann's partner session signed with A's widget secret."""
    from tests.widget.helpers import signed as signed_identity

    identity = signed_identity(world.widget_secret, "ann")
    return {"customerExternalId": "ann", "timestamp": identity["timestamp"], "signature": identity["signature"]}


def _partner_period(world: World) -> dict[str, Any]:
    return {"programId": world.partners.program_id, **last_30_days()}


PARTNER_CASES = [
    Case(
        "partners",
        "partners(A's affiliate program)",
        ops.PARTNERS,
        lambda w: {"programId": w.partners.program_id},
        graphql_not_found("partners"),
        partners=True,
    ),
    Case(
        "partnerGroups",
        "partnerGroups(A's program)",
        ops.PARTNER_GROUPS,
        lambda w: {"programId": w.partners.program_id},
        graphql_not_found("partnerGroups"),
        partners=True,
    ),
    Case(
        "commissionSplitHistory",
        "commissionSplitHistory(A's program)",
        ops.COMMISSION_SPLIT_HISTORY,
        lambda w: {"programId": w.partners.program_id},
        graphql_not_found("commissionSplitHistory"),
        partners=True,
    ),
    Case(
        "partnerSales",
        "partnerSales(A's program)",
        ops.PARTNER_SALES,
        _partner_period,
        graphql_not_found("partnerSales"),
        partners=True,
    ),
    Case(
        "partnerReport",
        "partnerReport(A's program), secret key",
        ops.PARTNER_REPORT,
        _partner_period,
        graphql_not_found("partnerReport"),
        partners=True,
    ),
    Case(
        "partnerReport",
        "partnerReport(A's program), A's partner signature on B's publishable key",
        ops.PARTNER_REPORT,
        lambda w: _partner_period(w) | {"signature": _partner_signature(w)},
        graphql_error("partnerReport", "SIGNATURE_INVALID"),
        key="publishable",
        partners=True,
    ),
    Case(
        "partnerStatement",
        "partnerStatement(A's program, A's partner)",
        ops.PARTNER_STATEMENT,
        lambda w: _partner_period(w) | {"customerExternalId": "ann"},
        graphql_not_found("partnerStatement"),
        partners=True,
    ),
    Case(
        "applyAsPartner",
        "applyAsPartner(A's program)",
        ops.APPLY_AS_PARTNER,
        lambda w: {"programId": w.partners.program_id, "customerExternalId": "b-customer"},
        user_error("applyAsPartner", "NOT_FOUND", "programId", "partner"),
        partners=True,
    ),
    Case(
        "invitePartner",
        "invitePartner(A's program)",
        ops.INVITE_PARTNER,
        lambda w: {"programId": w.partners.program_id, "customerExternalId": "b-customer"},
        user_error("invitePartner", "NOT_FOUND", "programId", "partner"),
        partners=True,
    ),
    Case(
        "decidePartner",
        "decidePartner(A's partner)",
        ops.DECIDE_PARTNER,
        lambda w: {"partnerId": w.partners.partner_id, "decision": "SUSPEND", "reason": "mine now"},
        user_error("decidePartner", "NOT_FOUND", "partnerId", "partner"),
        partners=True,
    ),
    Case(
        "assignPartnerGroup",
        "assignPartnerGroup(A's partner, A's group)",
        ops.ASSIGN_PARTNER_GROUP,
        lambda w: {"partnerId": w.partners.partner_id, "groupId": w.partners.group_id},
        user_error("assignPartnerGroup", "NOT_FOUND", "partnerId", "partner"),
        partners=True,
    ),
    Case(
        "createPartnerGroup",
        "createPartnerGroup(A's program)",
        ops.CREATE_PARTNER_GROUP,
        lambda w: {"programId": w.partners.program_id, "name": "Mine", "commissionBps": 9000},
        user_error("createPartnerGroup", "NOT_FOUND", "programId", "group"),
        partners=True,
    ),
    Case(
        "updatePartnerGroup",
        "updatePartnerGroup(A's group)",
        ops.UPDATE_PARTNER_GROUP,
        lambda w: {"groupId": w.partners.group_id, "commissionBps": 9000},
        user_error("updatePartnerGroup", "NOT_FOUND", "groupId", "group"),
        partners=True,
    ),
    Case(
        "setCommissionSplit",
        "setCommissionSplit(A's program)",
        ops.SET_COMMISSION_SPLIT,
        lambda w: {"programId": w.partners.program_id, "parties": [{"customerExternalId": "b-customer", "shareBps": 9000}]},
        user_error("setCommissionSplit", "NOT_FOUND", "programId", "split"),
        partners=True,
    ),
]


CASES = [
    # Queries
    Case(
        "program",
        "program(A's id)",
        "query($id: ID!) { program(id: $id) { id name } }",
        lambda w: {"id": w.program_id},
        graphql_not_found("program"),
    ),
    Case(
        "referral",
        "referral(A's id)",
        "query($id: ID!) { referral(id: $id) { id status } }",
        lambda w: {"id": w.referral_id},
        graphql_not_found("referral"),
    ),
    Case(
        "referrals",
        "referrals(programId: A's)",
        ops.REFERRALS,
        lambda w: {"programId": w.program_id},
        graphql_not_found("referrals"),
    ),
    Case(
        "actions",
        "actions(customerExternalId: A's referee)",
        "query($c: String) { actions(customerExternalId: $c) { edges { node { id } } } }",
        lambda w: {"c": "bob"},
        graphql_not_found("actions"),
    ),
    Case(
        "actions",
        "actions(customerExternalId: A's referrer)",
        "query($c: String) { actions(customerExternalId: $c) { edges { node { id } } } }",
        lambda w: {"c": "jane"},
        graphql_not_found("actions"),
    ),
    Case(
        "actions",
        "actions(referralId: A's)",
        "query($r: ID) { actions(referralId: $r) { edges { node { id } } } }",
        lambda w: {"r": w.referral_id},
        graphql_not_found("actions"),
    ),
    Case(
        "customer",
        "customer(externalId: A's)",
        "query($e: String!) { customer(externalId: $e) { id email } }",
        lambda w: {"e": "jane"},
        graphql_not_found("customer"),
    ),
    Case(
        "referralCode",
        "referralCode(A's code), secret key",
        "query($c: String!) { referralCode(code: $c) { code active } }",
        lambda w: {"c": w.code},
        graphql_not_found("referralCode"),
    ),
    Case(
        "referralCode",
        "referralCode(A's code), publishable key",
        "query($c: String!) { referralCode(code: $c) { code active } }",
        lambda w: {"c": w.code.lower()},
        graphql_not_found("referralCode"),
        key="publishable",
    ),
    # Mutations
    Case(
        "updateProgram",
        "updateProgram(A's id)",
        ops.UPDATE_PROGRAM,
        lambda w: {"id": w.program_id, "input": {"name": "Hijacked", "status": "PAUSED"}},
        user_error("updateProgram", "NOT_FOUND", "id", "program"),
    ),
    Case(
        "issueReferralCode",
        "issueReferralCode(programId: A's)",
        ops.ISSUE_CODE,
        lambda w: {"input": {"programId": w.program_id, "customerExternalId": "jane"}},
        user_error("issueReferralCode", "NOT_FOUND", "programId", "referralCode"),
    ),
    Case(
        "issueReferralCode",
        "issueReferralCode(vanity: A's code text)",
        """mutation($input: IssueReferralCodeInput!) { issueReferralCode(input: $input) {
              referralCode { code program { id } } userErrors { field code message } } }""",
        lambda w: {"input": {"programId": w.b_program_id, "customerExternalId": "jane", "vanity": w.code}},
        own_code_with_same_text,
    ),
    Case(
        "deactivateReferralCode",
        "deactivateReferralCode(A's code)",
        ops.DEACTIVATE_CODE,
        lambda w: {"code": w.code},
        user_error("deactivateReferralCode", "NOT_FOUND", "code", "referralCode"),
    ),
    Case(
        "trackClick",
        "trackClick(A's code), B's publishable key",
        ops.TRACK_CLICK,
        lambda w: {"input": {"code": w.code, "deviceId": "dev-b"}},
        user_error("trackClick", "CODE_NOT_FOUND", "code", "attributionToken"),
        key="publishable",
    ),
    Case(
        "recordAction",
        "recordAction(referralCode: A's)",
        ops.RECORD_ACTION,
        lambda w: {
            "input": {"type": "SIGNUP", "customerExternalId": "b-newbie", "idempotencyKey": "b-1", "referralCode": w.code}
        },
        unattributed_action("UNKNOWN_CODE"),
    ),
    Case(
        "recordAction",
        "recordAction(attributionToken: A's)",
        ops.RECORD_ACTION,
        lambda w: {
            "input": {"type": "SIGNUP", "customerExternalId": "b-newbie", "idempotencyKey": "b-1", "attributionToken": w.token}
        },
        unattributed_action("UNKNOWN_TOKEN"),
    ),
    Case(
        "recordAction",
        "recordAction(programId: A's)",
        ops.RECORD_ACTION,
        lambda w: {
            "input": {
                "type": "SIGNUP",
                "customerExternalId": "b-newbie",
                "idempotencyKey": "b-1",
                "programId": w.program_id,
                "referralCode": w.b_code,
            }
        },
        user_error("recordAction", "NOT_FOUND", "programId", "action"),
    ),
    Case(
        "recordAction",
        "recordAction(customerExternalId: A's referee)",
        ops.RECORD_ACTION,
        lambda w: {
            "input": {"type": "PURCHASE", "customerExternalId": "bob", "idempotencyKey": "b-1", "amount": 1000, "currency": "USD"}
        },
        unattributed_action("NONE"),
    ),
    Case(
        "claimReferral",
        "claimReferral(programId: A's)",
        ops.CLAIM_REFERRAL,
        lambda w: {"input": {"programId": w.program_id, "customerExternalId": "b-customer", "code": w.b_code}},
        user_error("claimReferral", "NOT_FOUND", "programId", "referral"),
    ),
    Case(
        "claimReferral",
        "claimReferral(code: A's)",
        ops.CLAIM_REFERRAL,
        lambda w: {"input": {"programId": w.b_program_id, "customerExternalId": "b-customer", "code": w.code}},
        user_error("claimReferral", "CODE_NOT_FOUND", "code", "referral"),
    ),
    Case(
        "upsertCustomer",
        "upsertCustomer(externalId: A's)",
        """mutation($input: UpsertCustomerInput!) { upsertCustomer(input: $input) {
              customer { externalId email referralCodes { code } } userErrors { field code message } } }""",
        lambda w: {"input": {"externalId": "jane", "email": "jane@b-shop.example", "name": "Not Jane A"}},
        own_customer,
    ),
    Case(
        "rewardRules",
        "rewardRules(programId: A's)",
        "query($p: ID!) { rewardRules(programId: $p) { id } }",
        lambda w: {"p": w.program_id},
        graphql_not_found("rewardRules"),
    ),
    Case(
        "rewardRule",
        "rewardRule(ruleId: A's)",
        "query($r: ID!) { rewardRule(ruleId: $r) { id } }",
        lambda w: {"r": w.rule_id},
        graphql_not_found("rewardRule"),
    ),
    Case(
        "rewards",
        "rewards(customerExternalId: A's referrer)",
        'query { rewards(customerExternalId: "jane") { edges { node { id } } } }',
        lambda w: {},
        graphql_not_found("rewards"),
    ),
    Case(
        "reward",
        "reward(A's id)",
        "query($id: ID!) { reward(id: $id) { id } }",
        lambda w: {"id": w.reward_id},
        graphql_not_found("reward"),
    ),
    Case(
        "createRewardRule",
        "createRewardRule(programId: A's)",
        "mutation($p: ID!, $input: RewardRuleInput!) { createRewardRule(programId: $p, input: $input) %s }" % RULE_PAYLOAD,
        lambda w: {"p": w.program_id, "input": CREDIT_RULE},
        user_error("createRewardRule", "NOT_FOUND", "programId", "rewardRule"),
    ),
    Case(
        "updateRewardRule",
        "updateRewardRule(ruleId: A's)",
        "mutation($r: ID!, $input: RewardRuleInput!) { updateRewardRule(ruleId: $r, input: $input) %s }" % RULE_PAYLOAD,
        lambda w: {"r": w.rule_id, "input": {**CREDIT_RULE, "amount": 1}},
        user_error("updateRewardRule", "NOT_FOUND", "ruleId", "rewardRule"),
    ),
    Case(
        "setRewardRuleEnabled",
        "setRewardRuleEnabled(ruleId: A's)",
        "mutation($r: ID!) { setRewardRuleEnabled(ruleId: $r, enabled: false) %s }" % RULE_PAYLOAD,
        lambda w: {"r": w.rule_id},
        user_error("setRewardRuleEnabled", "NOT_FOUND", "ruleId", "rewardRule"),
    ),
    Case(
        "redeemCredit",
        "redeemCredit(customerExternalId: A's referrer)",
        "mutation($input: RedeemCreditInput!) { redeemCredit(input: $input) %s }" % REDEMPTION_PAYLOAD,
        lambda w: {"input": {"customerExternalId": "jane", "amount": 500, "currency": "USD", "idempotencyKey": "r-1"}},
        user_error("redeemCredit", "NOT_FOUND", "customerExternalId", "transactionId"),
    ),
    Case(
        "redeemPoints",
        "redeemPoints(customerExternalId: A's referrer)",
        "mutation($input: RedeemPointsInput!) { redeemPoints(input: $input) %s }" % REDEMPTION_PAYLOAD,
        lambda w: {"input": {"customerExternalId": "jane", "points": 5, "idempotencyKey": "r-1"}},
        user_error("redeemPoints", "NOT_FOUND", "customerExternalId", "transactionId"),
    ),
    Case(
        "couponPools",
        "couponPools(programId: A's)",
        "query($p: ID!) { couponPools(programId: $p) { id } }",
        lambda w: {"p": w.program_id},
        graphql_not_found("couponPools"),
    ),
    Case(
        "validateCoupon",
        "validateCoupon(A's coupon code)",
        "query($c: String!) { validateCoupon(code: $c) { valid reason coupon { code } } }",
        lambda w: {"c": w.coupon_code},
        coupon_unknown,
    ),
    Case(
        "createCouponPool",
        "createCouponPool(programId: A's)",
        CREATE_POOL,
        lambda w: {"input": {"programId": w.program_id, "name": "Hijacked"}},
        user_error("createCouponPool", "NOT_FOUND", "programId", "couponPool"),
    ),
    Case(
        "addCouponCodes",
        "addCouponCodes(poolId: A's)",
        ADD_CODES,
        lambda w: {"poolId": w.pool_id, "codes": ["B-PLANTED"]},
        user_error("addCouponCodes", "NOT_FOUND", "poolId", "couponPool"),
    ),
    Case(
        "redeemCoupon",
        "redeemCoupon(A's coupon code)",
        """mutation($input: RedeemCouponInput!) { redeemCoupon(input: $input) {
              coupon { code } userErrors { field code message } } }""",
        lambda w: {"input": {"code": w.coupon_code, "orderId": "b-order-1", "orderAmount": 5000, "currency": "USD"}},
        user_error("redeemCoupon", "COUPON_NOT_FOUND", "code", "coupon"),
    ),
    Case(
        "simulateRewardRules",
        "simulateRewardRules(programId: A's)",
        """query($p: ID!, $rules: [RewardRuleInput!]!) {
              simulateRewardRules(programId: $p, rules: $rules, from: "2020-01-01T00:00:00Z", to: "2020-12-31T00:00:00Z") {
                actionsReplayed } }""",
        lambda w: {"p": w.program_id, "rules": [CREDIT_RULE]},
        graphql_not_found("simulateRewardRules"),
    ),
    Case(
        "retryJob",
        "retryJob(A's dead job id)",
        "mutation($id: ID!) { retryJob(id: $id) { job { id status } userErrors { field code message } } }",
        lambda w: {"id": w.dead_job_id},
        user_error("retryJob", "NOT_FOUND", "id", "job"),
    ),
    Case(
        "updateWebhookEndpoint",
        "updateWebhookEndpoint(A's endpoint id)",
        """mutation($id: ID!, $input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $input) {
              endpoint { id } userErrors { field code message } } }""",
        lambda w: {"id": w.webhook_endpoint_id, "input": {"url": "https://evil.example/hook", "enabled": False}},
        user_error("updateWebhookEndpoint", "NOT_FOUND", "id", "endpoint"),
    ),
    Case(
        "rotateWebhookSecret",
        "rotateWebhookSecret(A's endpoint id)",
        """mutation($id: ID!) { rotateWebhookSecret(id: $id, overlapHours: 0) {
              endpoint { id } secret userErrors { field code message } } }""",
        lambda w: {"id": w.webhook_endpoint_id},
        user_error("rotateWebhookSecret", "NOT_FOUND", "id", "secret"),
    ),
    Case(
        "webhookDeliveries",
        "webhookDeliveries(endpointId: A's)",
        "query($e: ID) { webhookDeliveries(endpointId: $e) { edges { node { id } } } }",
        lambda w: {"e": w.webhook_endpoint_id},
        graphql_not_found("webhookDeliveries"),
    ),
    Case(
        "redeliverWebhook",
        "redeliverWebhook(A's delivery id)",
        """mutation($id: ID!) { redeliverWebhook(id: $id) {
              delivery { id } userErrors { field code message } } }""",
        lambda w: {"id": w.webhook_delivery_id},
        user_error("redeliverWebhook", "NOT_FOUND", "id", "delivery"),
    ),
    # Fraud
    Case(
        "fraudPolicy",
        "fraudPolicy(programId: A's)",
        "query($p: ID!) { fraudPolicy(programId: $p) { version reviewScore } }",
        lambda w: {"p": w.program_id},
        graphql_not_found("fraudPolicy"),
    ),
    Case(
        "fraudPolicyHistory",
        "fraudPolicyHistory(programId: A's)",
        "query($p: ID!) { fraudPolicyHistory(programId: $p) { version } }",
        lambda w: {"p": w.program_id},
        graphql_not_found("fraudPolicyHistory"),
    ),
    Case(
        "simulateFraudPolicy",
        "simulateFraudPolicy(programId: A's)",
        """query($p: ID!, $policy: FraudPolicyInput!, $from: DateTime!, $to: DateTime!) {
              simulateFraudPolicy(programId: $p, policy: $policy, from: $from, to: $to) { referralsScored } }""",
        lambda w: {"p": w.program_id, "policy": FRAUD_POLICY_INPUT, **last_30_days()},
        graphql_not_found("simulateFraudPolicy"),
    ),
    Case(
        "setFraudPolicy",
        "setFraudPolicy(programId: A's)",
        SET_FRAUD_POLICY,
        lambda w: {"programId": w.program_id, "policy": FRAUD_POLICY_INPUT},
        user_error("setFraudPolicy", "NOT_FOUND", "programId", "policy"),
    ),
    Case(
        "fraudDecisions",
        "fraudDecisions(referralId: A's)",
        "query($r: ID!) { fraudDecisions(referralId: $r) { id outcome observations { evidence } } }",
        lambda w: {"r": w.referral_id},
        graphql_not_found("fraudDecisions"),
    ),
    Case(
        "fraudReviews",
        "fraudReviews(programId: A's)",
        "query($p: ID) { fraudReviews(programId: $p) { edges { node { id } } } }",
        lambda w: {"p": w.program_id},
        graphql_not_found("fraudReviews"),
    ),
    Case(
        "fraudReview",
        "fraudReview(A's id)",
        "query($id: ID!) { fraudReview(id: $id) { id signals decisions { observations { evidence } } } }",
        lambda w: {"id": w.review_id},
        graphql_not_found("fraudReview"),
    ),
    Case(
        "resolveFraudReview",
        "resolveFraudReview(A's id)",
        """mutation($id: ID!) { resolveFraudReview(id: $id, resolution: APPROVE, note: "mine now") {
              review { id status } replayed userErrors { field code message } } }""",
        lambda w: {"id": w.review_id},
        user_error("resolveFraudReview", "NOT_FOUND", "id", "review"),
    ),
    Case(
        "resolveFraudReviews",
        "resolveFraudReviews(filter.programId: A's)",
        RESOLVE_REVIEWS,
        lambda w: {"filter": {"programId": w.program_id}},
        nothing_resolved([("filter.programId", "NOT_FOUND")]),
    ),
    Case(
        "removeFraudListEntry",
        "removeFraudListEntry(A's id)",
        "mutation($id: ID!) { removeFraudListEntry(id: $id) { entry { id } userErrors { field code message } } }",
        lambda w: {"id": w.list_entry_id},
        user_error("removeFraudListEntry", "NOT_FOUND", "id", "entry"),
    ),
    Case(
        "customerFraudStatus",
        "customerFraudStatus(A's referrer)",
        'query { customerFraudStatus(customerExternalId: "jane") }',
        lambda w: {},
        graphql_not_found("customerFraudStatus"),
    ),
    Case(
        "setCustomerFraudStatus",
        "setCustomerFraudStatus(A's referrer)",
        SET_CUSTOMER_STATUS,
        lambda w: {"customer": "jane", "status": "BANNED"},
        user_error("setCustomerFraudStatus", "NOT_FOUND", "customerExternalId", "customer"),
    ),
    Case(
        "clearReferrer",
        "clearReferrer(A's referrer)",
        """mutation($customer: String!) { clearReferrer(customerExternalId: $customer, note: "mine now") {
              customer { externalId } approvedReviews { id } userErrors { field code message } } }""",
        lambda w: {"customer": "jane"},
        user_error("clearReferrer", "NOT_FOUND", "customerExternalId", "customer"),
    ),
    Case(
        "auditLog",
        "auditLog(subjectId: A's review)",
        "query($s: ID) { auditLog(subjectId: $s, first: 100) { edges { node { id action } } } }",
        lambda w: {"s": w.review_id},
        nothing_listed("auditLog"),
    ),
    Case(
        "widgetSession",
        "widgetSession(A's customer signed with A's secret), B's publishable key",
        WIDGET_SESSION,
        lambda w: signed(w.widget_secret, "jane"),
        user_error("widgetSession", "SIGNATURE_INVALID", "signature", "session"),
        key="publishable",
    ),
    Case(
        "widgetSession",
        "widgetSession(programId: A's, B's own signature), B's publishable key",
        WIDGET_SESSION,
        lambda w: {**signed(w.b_widget_secret, "b-customer"), "programId": w.program_id},
        user_error("widgetSession", "NOT_FOUND", "programId", "session"),
        key="publishable",
    ),
    Case(
        "programWidget",
        "programWidget(programId: A's)",
        "query($p: ID!) { programWidget(programId: $p) { id texts { title } } }",
        lambda w: {"p": w.program_id},
        graphql_not_found("programWidget"),
    ),
    Case(
        "setProgramWidget",
        "setProgramWidget(programId: A's)",
        SET_PROGRAM_WIDGET,
        lambda w: {"programId": w.program_id, "input": {"texts": [{"locale": "en", "title": "Hijacked"}]}},
        user_error("setProgramWidget", "NOT_FOUND", "programId", "widget"),
    ),
    # Privacy and locale
    Case(
        "customerDataExport",
        "customerDataExport(A's export id)",
        "query($id: ID!) { customerDataExport(id: $id) { id status downloadUrl } }",
        lambda w: {"id": w.export_id},
        graphql_not_found("customerDataExport"),
    ),
    Case(
        "exportCustomerData",
        "exportCustomerData(A's customer)",
        """mutation($c: String!) { exportCustomerData(customerExternalId: $c) {
              export { id } userErrors { field code message } } }""",
        lambda w: {"c": "bob"},
        user_error("exportCustomerData", "NOT_FOUND", "customerExternalId", "export"),
    ),
    Case(
        "eraseCustomer",
        "eraseCustomer(A's customer)",
        """mutation($c: String!) { eraseCustomer(customerExternalId: $c, reason: "not yours") {
              erasure { pseudonym } userErrors { field code message } } }""",
        lambda w: {"c": "bob"},
        user_error("eraseCustomer", "NOT_FOUND", "customerExternalId", "erasure"),
    ),
    Case(
        "customerStatement",
        "customerStatement(A's customer)",
        """query($c: String!) { customerStatement(customerExternalId: $c, from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z") {
              months { lines { closing { amount } } } } }""",
        lambda w: {"c": "jane"},
        graphql_not_found("customerStatement"),
    ),
    Case(
        "programAnalytics",
        "programAnalytics(programId: A's)",
        """query($p: ID!) { programAnalytics(programId: $p, from: "2026-01-01", to: "2026-01-31") {
              funnel { total { clicks } } referrers { leaderboard { customerExternalId } } } }""",
        lambda w: {"p": w.program_id},
        graphql_not_found("programAnalytics"),
    ),
    Case(
        "programAnalytics",
        "programAnalytics(programId: A's), B's owner in the console",
        """query($p: ID!) { programAnalytics(programId: $p, from: "2026-01-01", to: "2026-01-31") {
              money { revenue { net } } } }""",
        lambda w: {"p": w.program_id},
        graphql_not_found("programAnalytics"),
        key="admin",
        payouts=True,
    ),
    Case(
        "rewardReport",
        "rewardReport(programId: A's)",
        """query($p: ID!) { rewardReport(programId: $p, from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z") {
              rows { count } csv } }""",
        lambda w: {"p": w.program_id},
        graphql_not_found("rewardReport"),
    ),
    Case(
        "revokeApiKey",
        "revokeApiKey(A's key id)",
        "mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { id } userErrors { field code message } } }",
        lambda w: {"id": w.extra_key_id},
        user_error("revokeApiKey", "NOT_FOUND", "id", "apiKey"),
    ),
    # The console's configuration pages: B's OWNER session, holding A's ids
    Case(
        "revokeApiKey",
        "revokeApiKey(A's key id), B's owner session",
        'mutation($id: ID!) { revokeApiKey(id: $id, totpCode: "123456") { apiKey { id } userErrors { field code message } } }',
        lambda w: {"id": w.extra_key_id},
        user_error("revokeApiKey", "NOT_FOUND", "id", "apiKey"),
        key="admin",
        payouts=True,
    ),
    Case(
        "updateRewardRule",
        "updateRewardRule(ruleId: A's), B's owner session",
        "mutation($r: ID!, $input: RewardRuleInput!) { updateRewardRule(ruleId: $r, input: $input) %s }" % RULE_PAYLOAD,
        lambda w: {"r": w.rule_id, "input": {**CREDIT_RULE, "amount": 1}},
        user_error("updateRewardRule", "NOT_FOUND", "ruleId", "rewardRule"),
        key="admin",
        payouts=True,
    ),
    Case(
        "updateWebhookEndpoint",
        "updateWebhookEndpoint(A's endpoint id), B's owner session",
        """mutation($id: ID!, $input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $input) {
              endpoint { id } userErrors { field code message } } }""",
        lambda w: {"id": w.webhook_endpoint_id, "input": {"enabled": False}},
        user_error("updateWebhookEndpoint", "NOT_FOUND", "id", "endpoint"),
        key="admin",
        payouts=True,
    ),
    Case(
        "simulateRewardRules",
        "simulateRewardRules(programId: A's), B's owner session",
        """query($p: ID!, $rules: [RewardRuleInput!]!) {
              simulateRewardRules(programId: $p, rules: $rules, from: "2020-01-01T00:00:00Z", to: "2020-12-31T00:00:00Z") {
                actionsReplayed } }""",
        lambda w: {"p": w.program_id, "rules": [CREDIT_RULE]},
        graphql_not_found("simulateRewardRules"),
        key="admin",
        payouts=True,
    ),
    # Admins (B's OWNER session, holding A's ids)
    Case(
        "adminSessions",
        "adminSessions(adminId: A's admin)",
        "query($id: ID) { adminSessions(adminId: $id) { id } }",
        lambda w: {"id": w.payouts.a_admin_id},
        graphql_not_found("adminSessions"),
        key="admin",
        payouts=True,
    ),
    Case(
        "reissueAdminSetup",
        "reissueAdminSetup(A's admin)",
        "mutation($id: ID!) { reissueAdminSetup(id: $id) { admin { id } setupToken userErrors { field code message } } }",
        lambda w: {"id": w.payouts.a_admin_id},
        user_error("reissueAdminSetup", "NOT_FOUND", "id", "admin"),
        key="admin",
        payouts=True,
    ),
    Case(
        "setAdminRole",
        "setAdminRole(A's admin)",
        "mutation($id: ID!) { setAdminRole(id: $id, role: OWNER) { admin { id } userErrors { field code message } } }",
        lambda w: {"id": w.payouts.a_admin_id},
        user_error("setAdminRole", "NOT_FOUND", "id", "admin"),
        key="admin",
        payouts=True,
    ),
    Case(
        "disableAdmin",
        "disableAdmin(A's admin)",
        "mutation($id: ID!) { disableAdmin(id: $id) { admin { id } userErrors { field code message } } }",
        lambda w: {"id": w.payouts.a_admin_id},
        user_error("disableAdmin", "NOT_FOUND", "id", "admin"),
        key="admin",
        payouts=True,
    ),
    Case(
        "revokeAdminSession",
        "revokeAdminSession(A's session)",
        "mutation($id: ID!) { revokeAdminSession(id: $id) { session { id } userErrors { field code message } } }",
        lambda w: {"id": w.payouts.a_session_id},
        user_error("revokeAdminSession", "NOT_FOUND", "id", "session"),
        key="admin",
        payouts=True,
    ),
    # Payouts
    Case(
        "payoutAccount",
        "payoutAccount(A's payee)",
        'query { payoutAccount(customerExternalId: "payee") { masked } }',
        lambda w: {},
        graphql_not_found("payoutAccount"),
        payouts=True,
    ),
    Case(
        "payouts",
        "payouts(customerExternalId: A's payee)",
        'query { payouts(customerExternalId: "payee") { edges { node { id } } } }',
        lambda w: {},
        graphql_not_found("payouts"),
        payouts=True,
    ),
    Case(
        "payout",
        "payout(A's id)",
        "query($id: ID!) { payout(id: $id) { id amount } }",
        lambda w: {"id": w.payouts.payout_id},
        graphql_not_found("payout"),
        payouts=True,
    ),
    Case(
        "payoutBatch",
        "payoutBatch(A's id), B's owner session",
        "query($id: ID!) { payoutBatch(id: $id) { csv downloadUrl } }",
        lambda w: {"id": w.payouts.batch_id},
        graphql_not_found("payoutBatch"),
        key="admin",
        payouts=True,
    ),
    Case(
        "payoutStatement",
        "payoutStatement(A's payee)",
        """query($from: DateTime!, $to: DateTime!) { payoutStatement(customerExternalId: "payee", from: $from, to: $to) {
              totals { earned } } }""",
        lambda w: last_30_days(),
        graphql_not_found("payoutStatement"),
        payouts=True,
    ),
    Case(
        "payoutSchedule",
        "payoutSchedule(A's program)",
        "query($p: ID!) { payoutSchedule(programId: $p) { day } }",
        lambda w: {"p": w.payouts.program_id},
        graphql_not_found("payoutSchedule"),
        payouts=True,
    ),
    Case(
        "payoutRuns",
        "payoutRuns(A's program)",
        "query($p: ID!) { payoutRuns(programId: $p) { period } }",
        lambda w: {"p": w.payouts.program_id},
        graphql_not_found("payoutRuns"),
        payouts=True,
    ),
    Case(
        "setPayoutAccount",
        "setPayoutAccount(A's payee)",
        """mutation { setPayoutAccount(input: {customerExternalId: "payee", method: PAYPAL, paypalEmail: "mallory@evil.example"}) {
              account { id } userErrors { field code message } } }""",
        lambda w: {},
        user_error("setPayoutAccount", "NOT_FOUND", "customerExternalId", "account"),
        payouts=True,
    ),
    Case(
        "requestPayout",
        "requestPayout(A's payee)",
        """mutation { requestPayout(input: {customerExternalId: "payee", currency: "USD", idempotencyKey: "steal-1"}) {
              payout { id } userErrors { field code message } } }""",
        lambda w: {},
        user_error("requestPayout", "NOT_FOUND", "customerExternalId", "payout"),
        payouts=True,
    ),
    Case(
        "approvePayouts",
        "approvePayouts(A's payout), B's owner session",
        """mutation($ids: [ID!]!) { approvePayouts(ids: $ids, expectedTotals: [{currency: "USD", amount: 1000}],
              totpCode: "000000") { approvedCount userErrors { field code message } } }""",
        lambda w: {"ids": [w.payouts.payout_id]},
        nothing_approved,
        key="admin",
        payouts=True,
    ),
    Case(
        "rejectPayout",
        "rejectPayout(A's payout)",
        """mutation($id: ID!) { rejectPayout(id: $id, reason: "mine now") { payout { id } userErrors { field code message } } }""",
        lambda w: {"id": w.payouts.payout_id},
        user_error("rejectPayout", "NOT_FOUND", "id", "payout"),
        payouts=True,
    ),
    Case(
        "markPayoutPaid",
        "markPayoutPaid(A's payout)",
        """mutation($id: ID!) { markPayoutPaid(id: $id, providerReference: "x") { payout { id } userErrors { field code message } } }""",
        lambda w: {"id": w.payouts.payout_id},
        user_error("markPayoutPaid", "NOT_FOUND", "id", "payout"),
        payouts=True,
    ),
    Case(
        "markPayoutFailed",
        "markPayoutFailed(A's payout)",
        """mutation($id: ID!) { markPayoutFailed(id: $id, reason: "x") { payout { id } userErrors { field code message } } }""",
        lambda w: {"id": w.payouts.payout_id},
        user_error("markPayoutFailed", "NOT_FOUND", "id", "payout"),
        payouts=True,
    ),
    Case(
        "releasePayoutHold",
        "releasePayoutHold(A's payout), B's owner session",
        """mutation($id: ID!) { releasePayoutHold(id: $id, note: "x") { payout { id } userErrors { field code message } } }""",
        lambda w: {"id": w.payouts.payout_id},
        user_error("releasePayoutHold", "NOT_FOUND", "id", "payout"),
        key="admin",
        payouts=True,
    ),
    Case(
        "setPayoutSchedule",
        "setPayoutSchedule(A's program)",
        """mutation($p: ID!) { setPayoutSchedule(programId: $p, input: {frequency: WEEKLY, day: 1,
              minimums: [{currency: "USD", amount: 1}]}) { schedule { day } userErrors { field code message } } }""",
        lambda w: {"p": w.payouts.program_id},
        user_error("setPayoutSchedule", "NOT_FOUND", "programId", "schedule"),
        payouts=True,
    ),
    # Campaigns, promotion rules and leads (issue 15)
    Case(
        "campaigns",
        "campaigns(programId: A's)",
        ops.CAMPAIGNS,
        lambda w: {"programId": w.program_id},
        nothing_listed("campaigns"),
    ),
    Case(
        "campaignLeaderboard",
        "campaignLeaderboard(A's contest)",
        ops.CAMPAIGN_LEADERBOARD,
        lambda w: {"campaignId": w.campaign_id},
        graphql_not_found("campaignLeaderboard"),
    ),
    Case(
        "referrerCampaignLeaderboard",
        "referrerCampaignLeaderboard(A's contest, A's referrer)",
        ops.REFERRER_CAMPAIGN_LEADERBOARD,
        lambda w: {"campaignId": w.campaign_id, "customer": "jane"},
        graphql_not_found("referrerCampaignLeaderboard"),
    ),
    Case(
        "referrerCampaignLeaderboard",
        "referrerCampaignLeaderboard(A's contest, B's own customer)",
        ops.REFERRER_CAMPAIGN_LEADERBOARD,
        lambda w: {"campaignId": w.campaign_id, "customer": "b-customer"},
        graphql_not_found("referrerCampaignLeaderboard"),
    ),
    Case(
        "createCampaign",
        "createCampaign(programId: A's)",
        ops.CREATE_CAMPAIGN,
        lambda w: {
            "input": {
                "programId": w.program_id,
                "name": "x",
                "kind": "THRESHOLD_BONUS",
                "currency": "USD",
                "threshold": 1,
                "bonusAmount": 1,
                "startsOn": "2026-01-01",
                "endsOn": "2026-01-02",
            }
        },
        user_error("createCampaign", "NOT_FOUND", "programId", "campaign"),
    ),
    Case(
        "cancelCampaign",
        "cancelCampaign(A's contest)",
        ops.CANCEL_CAMPAIGN,
        lambda w: {"id": w.campaign_id},
        user_error("cancelCampaign", "NOT_FOUND", "id", "campaign"),
    ),
    Case(
        "promotionRules",
        "promotionRules(A's program)",
        "query($p: ID!) { promotionRules(programId: $p) { version text } }",
        lambda w: {"p": w.program_id},
        graphql_not_found("promotionRules"),
    ),
    Case(
        "promotionRulesStatus",
        "promotionRulesStatus(A's program, B's own customer)",
        ops.PROMOTION_RULES_STATUS,
        lambda w: {"programId": w.program_id, "customer": "b-customer"},
        graphql_not_found("promotionRulesStatus"),
    ),
    Case(
        "publishPromotionRules",
        "publishPromotionRules(A's program)",
        ops.PUBLISH_PROMOTION_RULES,
        lambda w: {"programId": w.program_id, "text": "mine", "clauses": []},
        user_error("publishPromotionRules", "NOT_FOUND", "programId", "promotionRules"),
    ),
    Case(
        "acceptPromotionRules",
        "acceptPromotionRules(A's program, B's own customer)",
        ops.ACCEPT_PROMOTION_RULES,
        lambda w: {"programId": w.program_id, "version": 1, "customer": "b-customer"},
        user_error("acceptPromotionRules", "NOT_FOUND", "programId", "status"),
    ),
    Case("leads", "leads(programId: A's)", ops.LEADS, lambda w: {"programId": w.program_id}, nothing_listed("leads")),
    Case("lead", "lead(A's id)", ops.LEAD, lambda w: {"id": w.lead_id}, graphql_not_found("lead")),
    Case(
        "referrerLeads",
        "referrerLeads(A's referrer)",
        ops.REFERRER_LEADS,
        lambda w: {"customer": "jane"},
        graphql_not_found("referrerLeads"),
    ),
    Case(
        "leadSettings",
        "leadSettings(A's program)",
        "query($p: ID!) { leadSettings(programId: $p) { feeAmount } }",
        lambda w: {"p": w.program_id},
        graphql_not_found("leadSettings"),
    ),
    Case(
        "submitLead",
        "submitLead(programId: A's, B's own customer)",
        ops.SUBMIT_LEAD,
        lambda w: {"input": {"programId": w.program_id, "customerExternalId": "b-customer", "company": "x"}},
        user_error("submitLead", "NOT_FOUND", "programId", "lead"),
    ),
    Case(
        "moveLead",
        "moveLead(A's lead)",
        ops.MOVE_LEAD,
        lambda w: {"input": {"id": w.lead_id, "status": "CONTACTED"}},
        user_error("moveLead", "NOT_FOUND", "id", "lead"),
    ),
    Case(
        "setLeadSettings",
        "setLeadSettings(A's program)",
        ops.SET_LEAD_SETTINGS,
        lambda w: {"programId": w.program_id, "input": {"feeAmount": 1, "currency": "USD"}},
        user_error("setLeadSettings", "NOT_FOUND", "programId", "settings"),
    ),
]

CASES += PARTNER_CASES

# Root fields that take no identifier another merchant could hold.
NO_FOREIGN_ID = {
    "viewer": "no arguments: always the caller's merchant",
    "apiKeys": "no arguments; test_list_queries_show_only_own_rows checks it lists only the caller's keys",
    "programs": "only status/first/after; test_list_queries_show_only_own_rows passes A's cursor",
    "createProgram": "creates a new row; takes no id",
    "createApiKey": "creates a new key for the caller; takes no id",
    "deadJobs": "only first/after; lists jobs where merchant_id is the caller (test_dead_jobs_are_per_merchant)",
    "createWebhookEndpoint": "creates a new endpoint for the caller; takes no id",
    "webhookEndpoints": "no arguments; test_webhooks_are_per_merchant checks it lists only the caller's endpoints",
    "webhookEventTypes": "the static event catalogue; no merchant data",
    "fraudListEntries": "only kind/first/after; test_fraud_queues_lists_and_audit_logs_show_only_own_rows checks it",
    "addFraudListEntry": "adds to the caller's own list; test_fraud_queues_lists_and_audit_logs_show_only_own_rows adds A's value",
    "widgetSettings": "no arguments; test_widget_settings_and_secrets_are_per_merchant",
    "setWidgetAllowedOrigins": "the caller's own list; test_widget_settings_and_secrets_are_per_merchant sets A's origins",
    "rotateWidgetSecret": "the caller's own secret; test_widget_settings_and_secrets_are_per_merchant",
    "me": "no arguments: the session's own admin",
    "admins": "no arguments; test_admin_and_payout_lists_show_only_own_rows checks it",
    "login": "public (takes credentials, no key); an admin of A cannot log in at B: test_admin_and_payout_lists_show_only_own_rows",
    "logout": "no arguments: ends the session making the call",
    "completeAdminSetup": "public: takes a one-time token, which names its admin",
    "changeAdminPassword": "the session's own admin",
    "createAdmin": "creates an admin of the caller's merchant",
    "startTotpEnrollment": "the session's own admin",
    "confirmTotpEnrollment": "the session's own admin",
    "resetTotp": "the session's own admin",
    "payoutBatches": "only first/after; test_admin_and_payout_lists_show_only_own_rows checks it",
    "payoutSettings": "no arguments: the caller's merchant's settings",
    "setPayoutSettings": "changes the caller's merchant's settings; takes no id",
    "privacySettings": "no arguments: the caller's own; test_privacy_and_locale_settings_are_per_merchant",
    "setPrivacySettings": "the caller's own; test_privacy_and_locale_settings_are_per_merchant",
    "localeSettings": "no arguments: the caller's own; test_privacy_and_locale_settings_are_per_merchant",
    "setLocaleSettings": "the caller's own; test_privacy_and_locale_settings_are_per_merchant",
}


def _root_fields() -> dict[str, set[str]]:
    schema = graphql.build_schema(build_schema(make_settings()).as_str())
    return {"Query": set(schema.query_type.fields), "Mutation": set(schema.mutation_type.fields)}


def test_every_root_field_is_covered():
    fields = _root_fields()
    known = {case.field for case in CASES} | set(NO_FOREIGN_ID)
    unknown = (fields["Query"] | fields["Mutation"]) - known
    assert not unknown, f"add isolation cases (or a NO_FOREIGN_ID reason) for: {sorted(unknown)}"
    stale = known - (fields["Query"] | fields["Mutation"])
    assert not stale, f"cases for fields that no longer exist: {sorted(stale)}"
    assert not {case.field for case in CASES} & set(NO_FOREIGN_ID)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_other_merchant_cannot_reach_data_by_its_identifiers(case: Case, db, tenant, other_tenant, clock):
    a, b = tenant, other_tenant
    world = await build_world(a, b, clock if case.payouts else None)
    if case.partners:
        world.partners = await build_partner_world(a)
    view_before = await a_view(a, world)
    rows_before = await merchant_rows(db, a.id)
    b_rows_before = await merchant_rows(db, b.id)
    assert rows_before["customers"] and b_rows_before["customers"]  # the comparison below sees real rows

    key = {"publishable": b.publishable_key, "secret": b.secret_key}.get(case.key) or world.payouts.b_owner_token
    body = await b.raw(case.document, case.variables(world), key=key)
    case.check(body, world)

    assert await a_view(a, world) == view_before
    assert await merchant_rows(db, a.id) == rows_before
    b_rows = await merchant_rows(db, b.id)
    if not case.check.writes:  # type: ignore[attr-defined]
        assert b_rows == b_rows_before, "a refused call must write nothing"
    assert cross_tenant_references(b_rows, rows_before) == []


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_without_a_key_every_operation_is_refused(case: Case, db, tenant, other_tenant, client):
    world = await build_world(tenant, other_tenant)
    if case.payouts:  # refused before anything is read: A's real payouts are not needed
        world.payouts = unreachable_payout_world()
    if case.partners:
        world.partners = unreachable_partner_world()
    rows_before = await merchant_rows(db, tenant.id)
    response = await client.post("/graphql", json={"query": case.document, "variables": case.variables(world)})
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"], body
    assert await merchant_rows(db, tenant.id) == rows_before


def _ids(connection: dict) -> set[str]:
    return {edge["node"]["id"] for edge in connection["edges"]}


LISTS = """
query($after: String) {
  programs(first: 100, after: $after) { edges { node { id } } }
  referrals(first: 100, after: $after) { edges { node { id } } }
  actions(first: 100, after: $after) { edges { node { id } } }
  apiKeys { id }
}"""


async def test_list_queries_show_only_own_rows(tenant, other_tenant):
    a, b = tenant, other_tenant
    world = await build_world(a, b)
    b_tracked = await click(b, world.b_code)
    b_signup = await record(
        b,
        type="SIGNUP",
        customerExternalId="b-friend",
        idempotencyKey="b-signup",
        attributionToken=b_tracked["attributionToken"],
    )
    assert b_signup["action"]["attribution"] == "REFERRAL_CREATED"

    a_lists = await a.gql(LISTS)
    b_lists = await b.gql(LISTS)
    for field in ("programs", "referrals", "actions"):
        a_ids, b_ids = _ids(a_lists[field]), _ids(b_lists[field])
        assert a_ids and b_ids, field
        assert not a_ids & b_ids, field
    assert _ids(b_lists["referrals"]) == {b_signup["referral"]["id"]}
    assert _ids(b_lists["actions"]) == {b_signup["action"]["id"]}
    assert _ids(b_lists["programs"]) == {world.b_program_id}
    a_keys, b_keys = {k["id"] for k in a_lists["apiKeys"]}, {k["id"] for k in b_lists["apiKeys"]}
    assert len(a_keys) == 3 and len(b_keys) == 2 and not a_keys & b_keys

    # A cursor taken from A's list pages through B's rows only.
    newest_first = await a.gql(ops.REFERRALS, {"first": 1})
    a_cursor = newest_first["referrals"]["pageInfo"]["endCursor"]
    after_a = await b.gql(LISTS, {"after": a_cursor})
    for field in ("programs", "referrals", "actions"):
        assert not _ids(after_a[field]) & _ids(a_lists[field]), field


async def test_same_idempotency_key_at_two_merchants_makes_two_actions(tenant, other_tenant):
    a, b = tenant, other_tenant
    purchase = {"type": "PURCHASE", "customerExternalId": "bob", "idempotencyKey": "order-1", "amount": 500, "currency": "EUR"}
    first_a = await record(a, **purchase)
    first_b = await record(b, **purchase)
    assert first_a["userErrors"] == first_b["userErrors"] == []
    assert first_a["replayed"] is False and first_b["replayed"] is False
    assert first_a["action"]["id"] != first_b["action"]["id"]

    # A reusing B's key with a different input is no IDEMPOTENCY_CONFLICT: keys are per merchant ...
    other_b = await record(b, **{**purchase, "idempotencyKey": "order-2"})
    other_a = await record(a, **{**purchase, "idempotencyKey": "order-2", "amount": 999})
    assert other_a["userErrors"] == [] and other_a["replayed"] is False
    assert other_a["action"]["amount"]["amount"] == 999 and other_b["action"]["amount"]["amount"] == 500

    # ... and a retry replays each merchant's own action.
    retry_b = await record(b, **purchase)
    assert retry_b["replayed"] is True and retry_b["action"]["id"] == first_b["action"]["id"]

    listed = "query { actions(first: 100) { edges { node { id idempotencyKey amount { amount } } } } }"
    a_actions = (await a.gql(listed))["actions"]["edges"]
    b_actions = (await b.gql(listed))["actions"]["edges"]
    assert {e["node"]["id"] for e in a_actions} == {first_a["action"]["id"], other_a["action"]["id"]}
    assert {e["node"]["id"] for e in b_actions} == {first_b["action"]["id"], other_b["action"]["id"]}


async def test_same_code_text_at_two_merchants_resolves_to_each_merchants_own(tenant, other_tenant):
    a, b = tenant, other_tenant
    a_program = await active_program(a, clearance=PAY_AT_SIGNUP)
    b_program = await active_program(b, clearance=PAY_AT_SIGNUP)
    await code_for(a, a_program["id"], "jane", vanity="FRIENDS10")
    await code_for(b, b_program["id"], "jane", vanity="friends10")

    b_click = await click(b, "FRIENDS10")
    assert b_click["userErrors"] == []
    b_signup = await record(
        b, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", attributionToken=b_click["attributionToken"]
    )
    a_signup = await record(a, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", referralCode="friends10")
    assert b_signup["action"]["attribution"] == a_signup["action"]["attribution"] == "REFERRAL_CREATED"

    # A's token at B is unknown, even though the code text is the same.
    a_click = await click(a, "FRIENDS10", device_id="dev-a")
    crossed = await record(
        b, type="SIGNUP", customerExternalId="carol", idempotencyKey="c", attributionToken=a_click["attributionToken"]
    )
    assert crossed["action"]["attribution"] == "UNKNOWN_TOKEN" and crossed["referral"] is None

    by_id = "query($id: ID!) { referral(id: $id) { program { id } code { id } } }"
    b_referral = (await b.gql(by_id, {"id": b_signup["referral"]["id"]}))["referral"]
    a_referral = (await a.gql(by_id, {"id": a_signup["referral"]["id"]}))["referral"]
    assert b_referral["program"]["id"] == b_program["id"]
    assert a_referral["program"]["id"] == a_program["id"]
    assert a_referral["code"]["id"] != b_referral["code"]["id"]

    deactivated = await b.gql(ops.DEACTIVATE_CODE, {"code": "FRIENDS10"})
    assert deactivated["deactivateReferralCode"]["referralCode"]["active"] is False
    still = await a.gql('query { referralCode(code: "FRIENDS10") { active } }')
    assert still["referralCode"]["active"] is True


async def test_dead_jobs_are_per_merchant(tenant, other_tenant):
    mine = await dead_job_of(tenant)
    theirs = await dead_job_of(other_tenant)
    listed = await tenant.gql("{ deadJobs { edges { node { id } } } }")
    assert [e["node"]["id"] for e in listed["deadJobs"]["edges"]] == [mine]
    assert theirs != mine


async def test_webhooks_are_per_merchant(tenant, other_tenant):
    a, b = tenant, other_tenant
    world = await build_world(a, b)
    b_endpoint = await b.gql(
        CREATE_WEBHOOK, {"input": {"url": "https://hooks.b-shop.example/", "eventTypes": ["reward.granted"]}}
    )
    b_id = b_endpoint["createWebhookEndpoint"]["endpoint"]["id"]
    listed = "{ webhookEndpoints { id } webhookDeliveries { edges { node { id } } } }"
    a_lists, b_lists = await a.gql(listed), await b.gql(listed)
    assert [e["id"] for e in a_lists["webhookEndpoints"]] == [world.webhook_endpoint_id]
    assert [e["id"] for e in b_lists["webhookEndpoints"]] == [b_id]
    assert world.webhook_delivery_id in _ids(a_lists["webhookDeliveries"])
    assert len(_ids(a_lists["webhookDeliveries"])) == 2  # jane's credit and bob's coupon
    assert _ids(b_lists["webhookDeliveries"]) == set()


FRAUD_LISTS = """
{
  fraudReviews(status: null, first: 100) { edges { node { id } } }
  fraudListEntries(first: 100) { edges { node { id } } }
  auditLog(first: 100) { edges { node { id action } } }
}"""


async def test_fraud_queues_lists_and_audit_logs_show_only_own_rows(tenant, other_tenant):
    a, b = tenant, other_tenant
    world = await build_world(a, b)
    await record(b, type="SIGNUP", customerExternalId="b-referrer", idempotencyKey="b-own", context={"deviceId": "dev-b"})
    b_alias = await record(
        b,
        type="SIGNUP",
        customerExternalId="b-alias",
        idempotencyKey="b-alias",
        referralCode=world.b_code,
        context={"deviceId": "dev-b"},
    )
    assert b_alias["action"]["attribution"] == "REFERRAL_CREATED"
    b_entry = await b.gql(ADD_LIST_ENTRY, {"kind": "EMAIL", "value": "fraudster@a-shop.example"})  # A's too
    assert b_entry["addFraudListEntry"]["userErrors"] == []
    assert b_entry["addFraudListEntry"]["entry"]["id"] != world.list_entry_id

    a_lists, b_lists = await a.gql(FRAUD_LISTS), await b.gql(FRAUD_LISTS)
    assert _ids(a_lists["fraudReviews"]) == {world.review_id}
    [b_review] = _ids(b_lists["fraudReviews"])
    assert b_review != world.review_id
    assert _ids(a_lists["fraudListEntries"]) == {world.list_entry_id}
    # B's own entry, and the mark its flagged referral put on b-referrer (referrer memory)
    assert b_entry["addFraudListEntry"]["entry"]["id"] in _ids(b_lists["fraudListEntries"])
    assert len(_ids(b_lists["fraudListEntries"])) == 2 and not _ids(a_lists["fraudListEntries"]) & _ids(
        b_lists["fraudListEntries"]
    )
    assert [e["node"]["action"] for e in b_lists["auditLog"]["edges"]] == [
        "fraud_list.added",
        "widget.secret_rotated",
        "fraud_policy.changed",
    ]  # its program pays at signup
    assert not _ids(a_lists["auditLog"]) & _ids(b_lists["auditLog"])
    assert {e["node"]["action"] for e in a_lists["auditLog"]["edges"]} == {
        "fraud_policy.changed",
        "fraud_list.added",
        "widget.secret_rotated",
        "customer.export_requested",
        "lead.submitted",
    }

    # B rejecting its whole queue leaves A's review open and A's referral alone
    resolved = await b.gql(RESOLVE_REVIEWS, {"filter": {}})
    assert [r["id"] for r in resolved["resolveFraudReviews"]["reviews"]] == [b_review]
    still_open = await a.gql("{ fraudReviews { edges { node { id status referral { status } } } } }")
    assert [
        (e["node"]["id"], e["node"]["status"], e["node"]["referral"]["status"]) for e in still_open["fraudReviews"]["edges"]
    ] == [(world.review_id, "OPEN", "PENDING")]


async def test_marking_a_customer_with_the_same_external_id_marks_only_ones_own(tenant, other_tenant):
    a, b = tenant, other_tenant
    world = await build_world(a, b)
    view_before = await a_view(a, world)
    b_jane = await b.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "jane"}})
    assert b_jane["upsertCustomer"]["userErrors"] == []

    banned = await b.gql(SET_CUSTOMER_STATUS, {"customer": "jane", "status": "BANNED"})
    assert banned["setCustomerFraudStatus"]["userErrors"] == []
    assert (await b.gql('{ customerFraudStatus(customerExternalId: "jane") }'))["customerFraudStatus"] == "BANNED"
    assert (await a.gql('{ customerFraudStatus(customerExternalId: "jane") }'))["customerFraudStatus"] == "NONE"
    assert await a_view(a, world) == view_before  # A's jane: referrals, rewards and review untouched
    assert view_before["referral"]["status"] != "REJECTED"


async def test_widget_settings_and_secrets_are_per_merchant(tenant, other_tenant, client):
    a, b = tenant, other_tenant
    world = await build_world(a, b)
    await a.gql(SET_ORIGINS, {"origins": ["https://a-shop.example"]})
    b_set = await b.gql(SET_ORIGINS, {"origins": ["https://a-shop.example", "https://b-shop.example"]})  # A's too
    assert b_set["setWidgetAllowedOrigins"]["userErrors"] == []
    b_rotated = await widget_secret(b, overlap_hours=0)  # B rotating leaves A's secret alone

    settings = "{ widgetSettings { allowedOrigins secretLast4 } }"
    assert (await a.gql(settings))["widgetSettings"] == {
        "allowedOrigins": ["https://a-shop.example"],
        "secretLast4": world.widget_secret[-4:],
    }
    assert (await b.gql(settings))["widgetSettings"]["secretLast4"] == b_rotated[-4:]
    a_session = await a.gql(WIDGET_SESSION, signed(world.widget_secret, "jane"), key=a.publishable_key)
    assert a_session["widgetSession"]["session"]["code"] == world.code
    # B's own customer named jane, signed by B, gets B's code, never A's
    b_session = await b.gql(WIDGET_SESSION, signed(b_rotated, "jane"), key=b.publishable_key)
    assert b_session["widgetSession"]["userErrors"] == [] and b_session["widgetSession"]["session"]["code"] != world.code

    # B listing A's origin grants A's key nothing, nor B's key anything from B's list at A
    preflight = {"Origin": "https://b-shop.example", "Access-Control-Request-Method": "POST"}
    assert (await client.options(f"/graphql?pk={a.publishable_key}", headers=preflight)).status_code == 403
    assert (await client.options(f"/graphql?pk={b.publishable_key}", headers=preflight)).status_code == 204


SET_ORIGINS = """
mutation($origins: [String!]!) { setWidgetAllowedOrigins(origins: $origins) { settings { allowedOrigins } userErrors { code } } }"""
ADMIN_AND_PAYOUT_LISTS = """
{
  admins { id email }
  payoutBatches(first: 100) { edges { node { id } } }
  payouts(first: 100) { edges { node { id } } }
  payoutSettings { coolingOffHours }
}"""


async def test_admin_and_payout_lists_show_only_own_rows(db, tenant, other_tenant, clock):
    from tests.payouts import helpers as payouts

    a, b = tenant, other_tenant
    world = await build_world(a, b, clock)
    a_owner = await payouts.make_admin(a, email="owner@a-shop.example")
    a_lists = await a.gql(ADMIN_AND_PAYOUT_LISTS, key=a_owner.token)
    b_lists = await b.gql(ADMIN_AND_PAYOUT_LISTS, key=world.payouts.b_owner_token)
    assert world.payouts.a_admin_id in {x["id"] for x in a_lists["admins"]}
    assert not {x["id"] for x in a_lists["admins"]} & {x["id"] for x in b_lists["admins"]}
    assert _ids(a_lists["payoutBatches"]) == {world.payouts.batch_id} and _ids(b_lists["payoutBatches"]) == set()
    assert _ids(a_lists["payouts"]) == {world.payouts.payout_id} and _ids(b_lists["payouts"]) == set()
    assert a_lists["payoutSettings"] == {"coolingOffHours": 0} and b_lists["payoutSettings"] == {"coolingOffHours": 72}
    # A's admin, at B: the login names A's merchant, never B's
    login = await b.gql(payouts.LOGIN, {"email": a_owner.email, "password": a_owner.password, "merchantId": str(b.id)})
    assert login["login"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    # B's owner cannot use A's setup tokens or sessions to reach A
    assert (await b.raw("{ me { id } }", key=a_owner.token))["data"]["me"]["id"] == a_owner.id  # a token is its own merchant's


async def test_privacy_and_locale_settings_are_per_merchant(tenant, other_tenant):
    a, b = tenant, other_tenant
    changed = await a.gql("""mutation { setPrivacySettings(retentionMonths: 6) { settings { retentionMonths } userErrors { code } }
                                        setLocaleSettings(input: {timeZone: "Asia/Tehran", calendar: JALALI, locale: "fa",
                                                                  arabicScriptCodes: true}) {
                                          settings { timeZone } userErrors { code } } }""")
    assert changed["setPrivacySettings"]["userErrors"] == changed["setLocaleSettings"]["userErrors"] == []
    shown = "{ privacySettings { retentionMonths } localeSettings { timeZone calendar locale arabicScriptCodes } }"
    assert await a.gql(shown) == {
        "privacySettings": {"retentionMonths": 6},
        "localeSettings": {"timeZone": "Asia/Tehran", "calendar": "JALALI", "locale": "fa", "arabicScriptCodes": True},
    }
    assert await b.gql(shown) == {
        "privacySettings": {"retentionMonths": 13},
        "localeSettings": {"timeZone": "UTC", "calendar": "GREGORIAN", "locale": "en", "arabicScriptCodes": False},
    }
    program = await active_program(b, clearance=PAY_AT_SIGNUP)
    refused = await b.gql(
        ops.ISSUE_CODE, {"input": {"programId": program["id"], "customerExternalId": "x", "vanity": "ریحانه۱۲"}}
    )
    assert refused["issueReferralCode"]["userErrors"][0]["code"] == "CODE_INVALID"  # A's setting is not B's
