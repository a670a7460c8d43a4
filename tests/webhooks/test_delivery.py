"""Signed webhooks end to end: events emitted with the change, delivered by the outbox job
to a real HTTP receiver, verified as a merchant would, retried, and given up on."""

from __future__ import annotations

import dataclasses
import inspect
import ipaddress
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.db import create_session_factory, utcnow
from app.webhooks import delivery as delivery_module
from app.webhooks import service, signing
from app.webhooks.models import WebhookDelivery
from app.webhooks.verify import verify
from app.worker import outbox
from app.worker.models import OutboxJob
from tests.conftest import system_connection
from tests.scenarios import active_program, code_for, record
from tests.webhooks.conftest import (
    ENDPOINTS,
    Reply,
    create_endpoint,
    deliveries,
    emit,
    pending_delivery_jobs,
    run_deliveries,
    set_endpoint,
)

CREATE_RULE = """
mutation($programId: ID!, $input: RewardRuleInput!) {
  createRewardRule(programId: $programId, input: $input) { rewardRule { id } userErrors { field code message } }
}"""


async def test_reward_granted_arrives_signed_and_verifies(db, tenant, receiver):
    endpoint_id, secret = await create_endpoint(tenant, receiver.url, ["reward.granted", "referral.created"])
    assert secret.startswith("whsec_") and len(signing.secret_bytes(secret)) == 24
    program = await active_program(tenant)
    code = await code_for(tenant, program["id"], "jane")
    rule = await tenant.gql(
        CREATE_RULE,
        {
            "programId": program["id"],
            "input": {
                "name": "Give $10",
                "trigger": "PURCHASE",
                "recipient": "REFERRER",
                "kind": "CREDIT",
                "amount": 1000,
                "currency": "USD",
            },
        },
    )
    assert rule["createRewardRule"]["userErrors"] == []
    signup = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s-1", referralCode=code["code"])
    assert signup["action"]["attribution"] == "REFERRAL_CREATED"
    purchase = await record(tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="p-1", amount=5000, currency="USD")
    assert purchase["userErrors"] == []

    assert len(await run_deliveries(db)) == 2  # referral.created, reward.granted (not subscribed: the others)
    by_type = {r.json["type"]: r for r in receiver.requests}
    assert set(by_type) == {"referral.created", "reward.granted"}
    granted = by_type["reward.granted"]
    assert granted.headers["content-type"] == "application/json"
    assert abs(int(granted.headers["webhook-timestamp"]) - time.time()) < 30
    assert granted.headers["webhook-signature"].startswith("v1,") and " " not in granted.headers["webhook-signature"]
    data = granted.json["data"]
    assert (data["customerExternalId"], data["amount"], data["unit"], data["kind"]) == ("jane", 1000, "USD", "CREDIT")
    assert by_type["referral.created"].json["data"]["refereeExternalId"] == "bob"

    # The documented verification accepts it, and refuses a tampered body or an old timestamp.
    assert verify(secret, granted.headers, granted.body)
    assert verify(secret, granted.headers, granted.body.encode())
    assert not verify(secret, granted.headers, granted.body.replace("1000", "9000"))
    assert not verify(signing.new_secret(), granted.headers, granted.body)
    old = int(time.time()) - 301
    replayed = {
        **granted.headers,
        "webhook-timestamp": str(old),
        "webhook-signature": signing.signature(secret, granted.headers["webhook-id"], old, granted.body),
    }
    assert not verify(secret, replayed, granted.body)
    assert verify(secret, replayed, granted.body, tolerance=400)  # only the age was wrong

    listed = await deliveries(tenant, endpointId=endpoint_id, status="DELIVERED")
    assert {d["eventType"] for d in listed} == {"referral.created", "reward.granted"}
    delivered = next(d for d in listed if d["eventType"] == "reward.granted")
    assert delivered["id"] == granted.headers["webhook-id"]
    assert delivered["attemptCount"] == 1 and delivered["deliveredAt"] is not None
    [attempt] = delivered["attempts"]
    assert attempt["statusCode"] == 200 and attempt["responseExcerpt"] == "ok" and attempt["error"] is None
    assert attempt["latencyMs"] >= 0

    # A duplicate job for a delivered delivery sends nothing.
    async with create_session_factory(db)() as session:
        job = await outbox.enqueue(
            session, service.DELIVER_JOB, merchant_id=tenant.id, delivery_id=uuid.UUID(delivered["id"]), attempt=0
        )
        await session.commit()
    await outbox.run_job(create_session_factory(db), str(job.id))
    assert len(receiver.requests) == 2


async def test_no_endpoint_costs_one_query_and_writes_nothing(db, tenant, count_statements):
    async with create_session_factory(db)() as session:
        with count_statements() as counter:
            made = await service.emit(session, tenant.id, "reward.granted", {"id": "x"})
        await session.commit()
    # (a job's session on PostgreSQL also sets its row-level security scope when it begins)
    queries = [s for s in counter.statements if not s.startswith("BEGIN") and "set_config" not in s]
    assert made == [] and queries == [counter.statements[-1]]
    assert counter.statements[-1].lstrip().upper().startswith("SELECT")
    assert await pending_delivery_jobs(db) == []


async def test_only_subscribed_and_enabled_endpoints_get_the_event(db, tenant, receiver):
    await create_endpoint(tenant, receiver.url, ["reward.voided"])
    off_id, _ = await create_endpoint(tenant, receiver.url, ["reward.granted"])
    await tenant.gql(
        "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: false}) { userErrors { code } } }", {"id": off_id}
    )
    assert await emit(db, tenant.id, "reward.granted") == []
    with pytest.raises(ValueError):
        await emit(db, tenant.id, "reward.exploded")


async def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(db, tenant, receiver):
    endpoint_id, old_secret = await create_endpoint(tenant, receiver.url)
    rotated = await tenant.gql(
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret endpoint { previousSecretExpiresAt } userErrors { code } } }",
        {"id": endpoint_id},
    )
    new_secret = rotated["rotateWebhookSecret"]["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    assert rotated["rotateWebhookSecret"]["endpoint"]["previousSecretExpiresAt"] is not None

    await emit(db, tenant.id)
    await run_deliveries(db)
    during = receiver.requests[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verify(new_secret, during.headers, during.body) and verify(old_secret, during.headers, during.body)

    await set_endpoint(db, uuid.UUID(endpoint_id), previous_secret_expires_at=utcnow() - timedelta(seconds=1))
    await emit(db, tenant.id)
    await run_deliveries(db)
    after = receiver.requests[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verify(new_secret, after.headers, after.body) and not verify(old_secret, after.headers, after.body)

    bad = await tenant.gql(
        "mutation($id: ID!) { rotateWebhookSecret(id: $id, overlapHours: 1000) { secret userErrors { field code } } }",
        {"id": endpoint_id},
    )
    assert bad["rotateWebhookSecret"] == {"secret": None, "userErrors": [{"field": "overlapHours", "code": "INVALID_INPUT"}]}


async def test_failures_are_retried_with_growing_delays_and_every_attempt_logged(db, tenant, receiver):
    receiver.default = Reply(500, "boom " * 200)
    endpoint_id, _ = await create_endpoint(tenant, receiver.url)
    [made] = await emit(db, tenant.id)

    delays = []
    for _ in range(3):
        [job] = await run_deliveries(db)
        [retry] = await pending_delivery_jobs(db)
        assert retry.id != job.id and retry.args["delivery_id"] == str(made.id)
        delays.append((retry.not_before - retry.created_at).total_seconds())
    assert delays == pytest.approx([5, 30, 120], abs=1)
    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # the same id every time

    [listed] = await deliveries(tenant, endpointId=endpoint_id)
    assert listed["status"] == "PENDING" and listed["attemptCount"] == 3 and listed["nextAttemptAt"] is not None
    assert [a["statusCode"] for a in listed["attempts"]] == [500, 500, 500]
    assert all(a["error"] == "HTTP 500" and len(a["responseExcerpt"]) == 500 for a in listed["attempts"])
    endpoints = (await tenant.gql(ENDPOINTS))["webhookEndpoints"]
    assert endpoints[0]["failingSince"] is not None and endpoints[0]["enabled"] is True

    # The schedule spans about a day; after its last step the delivery fails for good.
    assert timedelta(hours=20) < sum(delivery_module.RETRY_DELAYS, timedelta()) < timedelta(hours=30)
    async with create_session_factory(db)() as session:
        row = await session.get_one(WebhookDelivery, made.id)
        row.retry_step = len(delivery_module.RETRY_DELAYS)
        await session.commit()
    await run_deliveries(db)
    assert await pending_delivery_jobs(db) == []
    [final] = await deliveries(tenant, endpointId=endpoint_id)
    assert final["status"] == "FAILED" and final["attemptCount"] == 4 and final["nextAttemptAt"] is None

    # A success ends the endpoint's failing streak.
    receiver.default = Reply(204, "")
    await emit(db, tenant.id)
    await run_deliveries(db)
    assert (await tenant.gql(ENDPOINTS))["webhookEndpoints"][0]["failingSince"] is None


async def test_redirects_are_not_followed(db, tenant, receiver):
    receiver.replies = [Reply(302, "moved", {"location": receiver.url + "/elsewhere"})]
    endpoint_id, _ = await create_endpoint(tenant, receiver.url)
    await emit(db, tenant.id)
    await run_deliveries(db)
    assert [r.path for r in receiver.requests] == ["/hooks"]
    [listed] = await deliveries(tenant, endpointId=endpoint_id)
    [attempt] = listed["attempts"]
    assert attempt["statusCode"] == 302 and "redirect" in attempt["error"]
    assert listed["status"] == "PENDING" and len(await pending_delivery_jobs(db)) == 1


async def test_private_targets_are_refused_unless_allowed(db, tenant, receiver, job_settings):
    job_settings(allow_private_webhook_targets=False)
    endpoint_id, _ = await create_endpoint(tenant, receiver.url)
    await emit(db, tenant.id)
    await run_deliveries(db)
    assert receiver.requests == []  # no request made
    [listed] = await deliveries(tenant, endpointId=endpoint_id)
    [attempt] = listed["attempts"]
    assert attempt["statusCode"] is None and "127.0.0.1" in attempt["error"] and "non-public" in attempt["error"]
    assert listed["status"] == "PENDING"  # retried like any failure

    job_settings(allow_private_webhook_targets=True)
    await run_deliveries(db)
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "100.64.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        # IPv6 forms that carry a forbidden IPv4 address: 6to4, Teredo, NAT64, compatible, ISATAP
        "2002:7f00:1::",
        "2002:a00:1::1",
        "2002:a9fe:a9fe::",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::808:808",
        "::127.0.0.1",
        "::a00:1",
        "2606:2800:220:1:0:5efe:7f00:1",
        "2606:2800:220:1:200:5efe:a00:1",
    ],
)
def test_non_public_addresses_are_forbidden(address):
    assert delivery_module.forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
        "::ffff:93.184.216.34",
        "2002:5db8:d822::1",
        "64:ff9b::5db8:d822",  # 6to4 and NAT64 of a public address
    ],
)
def test_public_addresses_are_allowed(address):
    assert not delivery_module.forbidden(ipaddress.ip_address(address))


async def test_hostnames_are_resolved_before_the_check():
    with pytest.raises(delivery_module.RefusedTarget, match="non-public"):
        await delivery_module.resolve("localhost", 80, allow_private=False)
    assert await delivery_module.resolve("localhost", 80, allow_private=True) in ("127.0.0.1", "::1")


async def test_endpoint_failing_for_five_days_is_disabled(db, tenant, receiver):
    receiver.default = Reply(503, "down")
    endpoint_id, _ = await create_endpoint(tenant, receiver.url)
    await emit(db, tenant.id)
    await run_deliveries(db)
    assert (await tenant.gql(ENDPOINTS))["webhookEndpoints"][0]["enabled"] is True

    await set_endpoint(db, uuid.UUID(endpoint_id), failing_since=utcnow() - timedelta(days=5, minutes=1))
    await emit(db, tenant.id)  # a second delivery, so two jobs are pending
    await run_deliveries(db)
    [endpoint] = (await tenant.gql(ENDPOINTS))["webhookEndpoints"]
    assert endpoint["enabled"] is False and "failed continuously" in endpoint["disabledReason"]
    assert await pending_delivery_jobs(db) == []
    assert {d["status"] for d in await deliveries(tenant, endpointId=endpoint_id)} == {"FAILED"}
    sent = len(receiver.requests)
    assert await emit(db, tenant.id) == []  # a disabled endpoint gets nothing new

    # Redelivery needs the endpoint enabled again; enabling clears the streak.
    [one, *_] = await deliveries(tenant, endpointId=endpoint_id)
    refused = await tenant.gql(
        "mutation($id: ID!) { redeliverWebhook(id: $id) { userErrors { field code } } }", {"id": one["id"]}
    )
    assert refused["redeliverWebhook"]["userErrors"] == [{"field": "id", "code": "INVALID_STATUS_TRANSITION"}]
    enabled = await tenant.gql(
        "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: true}) { endpoint { enabled disabledReason } } }",
        {"id": endpoint_id},
    )
    assert enabled["updateWebhookEndpoint"]["endpoint"] == {"enabled": True, "disabledReason": None}
    assert len(receiver.requests) == sent


async def test_redeliver_sends_again_with_the_same_id(db, tenant, receiver):
    endpoint_id, secret = await create_endpoint(tenant, receiver.url)
    await emit(db, tenant.id)
    await run_deliveries(db)
    [first] = await deliveries(tenant, endpointId=endpoint_id)
    assert first["status"] == "DELIVERED"

    again = await tenant.gql(
        "mutation($id: ID!) { redeliverWebhook(id: $id) { delivery { id status } userErrors { code } } }", {"id": first["id"]}
    )
    assert again["redeliverWebhook"] == {"delivery": {"id": first["id"], "status": "PENDING"}, "userErrors": []}
    # Twice in a row: the second job finds the attempt made and does nothing.
    await tenant.gql("mutation($id: ID!) { redeliverWebhook(id: $id) { userErrors { code } } }", {"id": first["id"]})
    await run_deliveries(db)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [first["id"], first["id"]]
    assert verify(secret, receiver.requests[1].headers, receiver.requests[1].body)
    [after] = await deliveries(tenant, endpointId=endpoint_id)
    assert after["status"] == "DELIVERED" and after["attemptCount"] == 2 and len(after["attempts"]) == 2


async def test_secrets_are_not_stored_in_plaintext(db, tenant, receiver, settings):
    endpoint_id, secret = await create_endpoint(tenant, receiver.url)
    rotated = await tenant.gql("mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }", {"id": endpoint_id})
    new_secret = rotated["rotateWebhookSecret"]["secret"]
    await emit(db, tenant.id)
    await run_deliveries(db)

    dump = []
    async with system_connection(db) as connection:
        for table in ("webhook_endpoints", "webhook_deliveries", "webhook_attempts", "outbox_jobs"):
            rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()
            dump.extend(json.dumps([str(v) for v in row]) for row in rows)
    everything = "\n".join(dump)
    for plaintext in (secret, new_secret):
        assert plaintext not in everything and plaintext.removeprefix("whsec_") not in everything
        assert signing.secret_bytes(plaintext).hex() not in everything

    async with create_session_factory(db)() as session:
        endpoint = await service.get_endpoint(session, merchant_id=tenant.id, endpoint_id=uuid.UUID(endpoint_id))
    assert signing.decrypt(endpoint.secret_encrypted, settings, endpoint.id) == new_secret
    with pytest.raises(ValueError):
        signing.decrypt(endpoint.secret_encrypted, dataclasses.replace(settings, secret_key="another-key"), endpoint.id)
    with pytest.raises(ValueError):  # bound to its endpoint: copied to another row, it does not decrypt
        signing.decrypt(endpoint.secret_encrypted, settings, uuid.uuid4())


async def test_endpoint_input_is_validated(tenant):
    bad = await tenant.gql(
        """mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) {
             endpoint { id } secret userErrors { field code } } }""",
        {"input": {"url": "ftp://hooks.example/", "eventTypes": ["reward.granted"]}},
    )
    assert bad["createWebhookEndpoint"] == {
        "endpoint": None,
        "secret": None,
        "userErrors": [{"field": "url", "code": "INVALID_URL"}],
    }
    unknown = await tenant.gql(
        """mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { userErrors { field code } } }""",
        {"input": {"url": "https://hooks.example/", "eventTypes": ["reward.granted", "nope"]}},
    )
    assert unknown["createWebhookEndpoint"]["userErrors"] == [{"field": "eventTypes.1", "code": "INVALID_INPUT"}]
    catalogue = await tenant.gql("{ webhookEventTypes { type } }")
    assert len(catalogue["webhookEventTypes"]) == 20
    for event_type in (
        "referral.rejected",
        "payout.on_hold",
        "payout_account.changed",
        "admin.totp_changed",
        "customer.erased",
        "customer.export_ready",
        "lead.status_changed",
    ):
        assert {"type": event_type} in catalogue["webhookEventTypes"]


async def test_production_requires_https(session, tenant):
    from tests.conftest import test_settings

    production = test_settings(app_env="production")
    with pytest.raises(service.DomainError) as refused:
        await service.create_endpoint(
            session, merchant_id=tenant.id, settings=production, url="http://hooks.example/", event_types=["reward.granted"]
        )
    assert (refused.value.field, refused.value.code.value) == ("url", "INVALID_URL")
    made = await service.create_endpoint(
        session, merchant_id=tenant.id, settings=production, url="https://hooks.example/", event_types=["reward.granted"]
    )
    assert made.endpoint.url == "https://hooks.example/"


def test_readme_quotes_the_verification_code():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert inspect.getsource(verify) in readme


async def test_delivery_rows_and_jobs_commit_with_the_change_only(db, tenant, receiver):
    await create_endpoint(tenant, receiver.url)
    async with create_session_factory(db)() as session:
        await service.emit(session, tenant.id, "reward.granted", {"id": "x"})
        await session.rollback()
        assert (await session.scalars(select(WebhookDelivery))).all() == []
        assert (await session.scalars(select(OutboxJob))).all() == []


@pytest.mark.parametrize("host", ["[2002:7f00:1::]", "[64:ff9b::7f00:1]", "[::ffff:7f00:1]", "[2002:a9fe:a9fe::1]"])
async def test_an_ipv6_literal_carrying_a_private_ipv4_address_is_never_contacted(db, tenant, receiver, job_settings, host):
    job_settings(allow_private_webhook_targets=False)
    endpoint_id, _ = await create_endpoint(tenant, f"https://{host}:8443/hooks")
    await emit(db, tenant.id)

    await run_deliveries(db)

    [listed] = await deliveries(tenant, endpointId=endpoint_id)
    [attempt] = listed["attempts"]
    assert attempt["statusCode"] is None and "non-public" in attempt["error"]
