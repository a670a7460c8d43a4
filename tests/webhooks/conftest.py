"""Webhook test fixtures: a real HTTP receiver on 127.0.0.1, and running the delivery jobs
of the outbox directly (no broker)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_session_factory
from app.webhooks import service
from app.webhooks.models import WebhookEndpoint
from app.worker import outbox
from app.worker.models import JobStatus, OutboxJob
from tests.conftest import system_connection, test_settings


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """An HTTP server in a thread: records every request and answers with the scripted
    replies in order (then `default`)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode()
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                reply = receiver.replies.pop(0) if receiver.replies else receiver.default
                payload = reply.body.encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST  # a followed redirect would show up as a request too

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def settings() -> Settings:
    """The API's settings (overrides the root fixture): private targets allowed."""
    return test_settings(allow_private_webhook_targets=True)


@pytest.fixture(autouse=True)
def job_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    """The worker reads the process settings; give it the API's (same SECRET_KEY)."""
    current = {"settings": settings}
    monkeypatch.setattr("app.webhooks.jobs.get_settings", lambda: current["settings"])

    def use(**overrides: Any) -> Settings:
        current["settings"] = test_settings(**{"allow_private_webhook_targets": True, **overrides})
        return current["settings"]

    return use


async def pending_delivery_jobs(engine: AsyncEngine) -> list[OutboxJob]:
    async with create_session_factory(engine)() as session:
        return list(
            (
                await session.scalars(
                    select(OutboxJob)
                    .where(OutboxJob.actor == service.DELIVER_JOB, OutboxJob.status == JobStatus.PENDING.value)
                    .order_by(OutboxJob.id)
                )
            ).all()
        )


async def run_deliveries(engine: AsyncEngine) -> list[OutboxJob]:
    """Run the delivery jobs pending now (not the retries they schedule); returns them."""
    jobs = await pending_delivery_jobs(engine)
    for job in jobs:
        await outbox.run_job(create_session_factory(engine), str(job.id))
    return jobs


async def emit(engine: AsyncEngine, merchant_id, event_type: str = "reward.granted", data: dict | None = None):
    async with create_session_factory(engine)() as session:
        deliveries = await service.emit(session, merchant_id, event_type, data or {"id": "r-1", "amount": 1000})
        await session.commit()
    return deliveries


async def set_endpoint(engine: AsyncEngine, endpoint_id, **values: Any) -> None:
    async with system_connection(engine) as connection:
        await connection.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(**values))


CREATE_ENDPOINT = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    endpoint { id url eventTypes enabled disabledReason }
    secret
    userErrors { field code message }
  }
}"""

DELIVERIES = """
query($endpointId: ID, $status: WebhookDeliveryStatus) {
  webhookDeliveries(endpointId: $endpointId, status: $status) {
    edges { node {
      id eventType status attemptCount nextAttemptAt deliveredAt lastError
      attempts { attemptedAt statusCode latencyMs responseExcerpt error }
    } }
  }
}"""

ENDPOINTS = "{ webhookEndpoints { id url enabled disabledReason failingSince previousSecretExpiresAt } }"


async def create_endpoint(tenant, url: str, event_types: list[str] | None = None) -> tuple[str, str]:
    data = await tenant.gql(CREATE_ENDPOINT, {"input": {"url": url, "eventTypes": event_types or ["reward.granted"]}})
    payload = data["createWebhookEndpoint"]
    assert payload["userErrors"] == [], payload
    return payload["endpoint"]["id"], payload["secret"]


async def deliveries(tenant, **variables: Any) -> list[dict[str, Any]]:
    data = await tenant.gql(DELIVERIES, variables)
    return [edge["node"] for edge in data["webhookDeliveries"]["edges"]]
