"""The Python server client (sdk/python, package referral-client) against a running server:
the README's flow, idempotency keys by default, retries on network errors only, typed errors,
signed widget customers and Standard Webhooks verification."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from referral_client import (
    APIError,
    AsyncReferralClient,
    IdempotencyConflict,
    NotFound,
    ReferralClient,
    TransportError,
    UserError,
    WebhookVerificationError,
    sign_customer,
    verify_webhook,
)

from app.webhooks import signing
from tests.rewards.helpers import create_rule, credit_rule
from tests.scenarios import active_program, click
from tests.widget.helpers import WIDGET_SESSION, widget_secret


class DropFirstResponse(httpx.HTTPTransport):
    """The server does the work, then the connection breaks before the answer arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        response = super().handle_request(request)
        if self.requests == 1:
            response.read()
            raise httpx.ReadError("connection reset by peer")
        return response


class Answer(httpx.BaseTransport):
    def __init__(self, status: int, text: str) -> None:
        self.status, self.text, self.requests = status, text, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return httpx.Response(self.status, text=self.text)


async def in_thread(function, *args, **kwargs):
    return await asyncio.to_thread(function, *args, **kwargs)


async def test_the_readme_flow_signup_and_purchase_through_the_client(live_server, tenant):
    program = await active_program(tenant)
    await create_rule(tenant, program["id"], **credit_rule())
    with ReferralClient(live_server, tenant.secret_key) as client:
        jane = await in_thread(client.upsert_customer, "jane", email="jane@example.com", name="Jane Doe")
        assert (jane.external_id, jane.email, jane.name) == ("jane", "jane@example.com", "Jane Doe")
        code = await in_thread(client.issue_referral_code, program_id=program["id"], customer_external_id="jane")
        assert code.share_url == f"https://shop.example/?ref={code.code}" and code.active

        tracked = await click(tenant, code.code, device_id="dev-bob")  # the widget, in bob's browser
        from_browser = {
            "code": code.code,
            "attributionToken": tracked["attributionToken"],
            "deviceId": "dev-bob",
            "deviceFingerprint": "fp1_abc",
        }
        signup = await in_thread(
            client.record_action,
            type="SIGNUP",
            customer_external_id="bob",
            idempotency_key="signup-bob",
            attribution=from_browser,
            context={"email": "bob@example.com"},
        )
        assert (signup.attribution, signup.referral_status, signup.replayed) == ("REFERRAL_CREATED", "PENDING", False)
        purchase = await in_thread(
            client.record_action,
            type="PURCHASE",
            customer_external_id="bob",
            idempotency_key="order-1001",
            order_id="1001",
            amount=4999,
            currency="USD",
        )
        assert purchase.referral_id == signup.referral_id and purchase.referral_status == "QUALIFIED"
        assert [(r.recipient, r.kind, r.amount, r.unit, r.customer_external_id) for r in purchase.rewards] == [
            ("REFERRER", "CREDIT", 1000, "USD", "jane")
        ]
    actions = await tenant.gql('{ actions(customerExternalId: "bob") { edges { node { type idempotencyKey } } } }')
    assert [e["node"]["idempotencyKey"] for e in actions["actions"]["edges"]] == ["order-1001", "signup-bob"]


async def test_a_broken_connection_is_retried_with_the_same_idempotency_key(live_server, tenant):
    await active_program(tenant)
    transport = DropFirstResponse()
    with ReferralClient(live_server, tenant.secret_key, transport=transport) as client:
        recorded = await in_thread(
            client.record_action, type="PURCHASE", customer_external_id="bob", order_id="77", amount=1500, currency="EUR"
        )  # no idempotency key given: the client makes one
    assert transport.requests == 2
    assert recorded.replayed is True  # the first attempt had written it; the retry found it
    actions = await tenant.gql('{ actions(customerExternalId: "bob") { edges { node { id idempotencyKey } } } }')
    [action] = [e["node"] for e in actions["actions"]["edges"]]
    assert action["id"] == recorded.action_id and action["idempotencyKey"].startswith("rc-")


async def test_a_server_that_answered_is_not_asked_again(tenant):
    transport = Answer(503, "upstream unavailable")
    with (
        ReferralClient("http://api.invalid", tenant.secret_key, transport=transport) as client,
        pytest.raises(APIError) as failed,
    ):
        client.upsert_customer("jane")
    assert transport.requests == 1 and failed.value.code == "HTTP_503"


async def test_an_unreachable_api_is_tried_again_then_reported():
    from tests.sdk.conftest import free_port

    client = ReferralClient(f"http://127.0.0.1:{free_port()}", "sk_x", retries=2)
    started = time.monotonic()
    with pytest.raises(TransportError, match="could not reach"):
        await in_thread(client.upsert_customer, "jane")
    assert 0.7 < time.monotonic() - started < 5  # 0.25 s + 0.5 s between the three tries


async def test_refusals_come_back_as_typed_errors(live_server, tenant):
    await active_program(tenant)
    with ReferralClient(live_server, tenant.secret_key) as client:
        with pytest.raises(UserError) as bad_currency:
            await in_thread(client.record_action, type="PURCHASE", customer_external_id="bob", amount=100, currency="DOLLARS")
        assert (bad_currency.value.field, bad_currency.value.code) == ("currency", "INVALID_CURRENCY")

        await in_thread(
            client.record_action, type="PURCHASE", customer_external_id="bob", idempotency_key="o-1", amount=100, currency="USD"
        )
        with pytest.raises(IdempotencyConflict):
            await in_thread(
                client.record_action,
                type="PURCHASE",
                customer_external_id="bob",
                idempotency_key="o-1",
                amount=999,
                currency="USD",
            )
        with pytest.raises(NotFound) as missing:
            await in_thread(
                client.issue_referral_code, program_id="01a2e8a4-0000-7000-8000-000000000000", customer_external_id="jane"
            )
        assert missing.value.field == "programId"
    with ReferralClient(live_server, tenant.publishable_key) as browser_key:
        with pytest.raises(APIError) as forbidden:
            await in_thread(browser_key.upsert_customer, "jane")
        assert forbidden.value.code == "FORBIDDEN"
    with ReferralClient(live_server, "sk_not_a_key") as wrong:
        with pytest.raises(APIError) as unauthenticated:
            await in_thread(wrong.upsert_customer, "jane")
        assert unauthenticated.value.code == "UNAUTHENTICATED"


async def test_the_async_client_does_the_same(live_server, tenant):
    program = await active_program(tenant)
    async with AsyncReferralClient(live_server, tenant.secret_key) as client:
        code = await client.issue_referral_code(program_id=program["id"], customer_external_id="jane")
        again = await client.issue_referral_code(program_id=program["id"], customer_external_id="jane")
        assert code == again
        signup = await client.record_action(type="SIGNUP", customer_external_id="bob", referral_code=code.code)
        assert signup.attribution == "REFERRAL_CREATED"
        with pytest.raises(UserError):
            await client.upsert_customer("bob", email="not an email")


async def test_a_customer_signed_by_the_client_opens_the_widget_panel(live_server, tenant):
    await active_program(tenant)
    secret = await widget_secret(tenant)
    with ReferralClient(live_server, tenant.secret_key, widget_secret=secret) as client:
        signed = client.sign_customer("jane")
    assert signed.as_data_attributes()["data-customer-id"] == "jane"
    session = await tenant.gql(
        WIDGET_SESSION,
        {"customer": signed.customer_id, "timestamp": signed.timestamp, "signature": signed.signature},
        key=tenant.publishable_key,
    )
    assert session["widgetSession"]["userErrors"] == [] and session["widgetSession"]["session"]["code"]
    forged = sign_customer("wsec_someone-else", "jane")
    refused = await tenant.gql(
        WIDGET_SESSION,
        {"customer": "jane", "timestamp": forged.timestamp, "signature": forged.signature},
        key=tenant.publishable_key,
    )
    assert refused["widgetSession"]["userErrors"][0]["code"] == "SIGNATURE_INVALID"


def _webhook(secrets: list[str], body: str, *, at: int | None = None) -> dict[str, str]:
    at = int(time.time()) if at is None else at
    return {
        "Webhook-Id": "msg_01",
        "Webhook-Timestamp": str(at),
        "Webhook-Signature": signing.signature_header(secrets, "msg_01", at, body),
    }


def test_webhooks_signed_by_the_server_verify_and_anything_else_does_not():
    secret, rotated = signing.new_secret(), signing.new_secret()
    body = json.dumps({"type": "reward.granted", "timestamp": "2026-11-28T10:00:00Z", "data": {"reward": {"id": "r1"}}})
    assert verify_webhook(secret, _webhook([secret], body), body.encode())["type"] == "reward.granted"
    assert verify_webhook(secret, _webhook([rotated, secret], body), body)["data"] == {"reward": {"id": "r1"}}  # overlap
    client = ReferralClient("http://api.invalid", "sk_x", webhook_secret=secret)
    assert client.verify_webhook(_webhook([secret], body), body)["type"] == "reward.granted"
    for headers, sent in (
        (_webhook([secret], body), body.replace("r1", "r2")),  # tampered
        (_webhook([rotated], body), body),  # another secret
        (_webhook([secret], body, at=int(time.time()) - 600), body),  # a replay
        ({"webhook-id": "msg_01"}, body),  # headers missing
    ):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(secret, headers, sent)
