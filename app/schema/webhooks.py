"""Webhook endpoints, their signing secrets, and the deliveries made to them."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.schema.common import gid
from app.schema.errors import UserError
from app.schema.pagination import Connection, to_connection
from app.schema.permissions import SecretKey, SecretKeyOrAdmin, SecretKeyOrManager
from app.schema.transactions import mutate, query
from app.webhooks import events, models, service

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
WebhookDeliveryStatus: TypeAlias = models.DeliveryStatus
strawberry.enum(WebhookDeliveryStatus, name="WebhookDeliveryStatus")


@strawberry.type(description="A URL of yours that receives signed events. The signing secret is shown only when made.")
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = strawberry.field(description="Why it is disabled (by you, or after 5 days of failures).")
    disabled_at: datetime | None
    failing_since: datetime | None = strawberry.field(description="First failure since the last successful delivery.")
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="After a rotation, the old secret also signs until then."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: models.WebhookEndpoint) -> WebhookEndpoint:
        return cls(
            id=gid(m.id),
            url=m.url,
            description=m.description,
            event_types=list(m.event_types),
            enabled=m.enabled,
            disabled_reason=m.disabled_reason,
            disabled_at=m.disabled_at,
            failing_since=m.failing_since,
            previous_secret_expires_at=m.previous_secret_expires_at,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )


@strawberry.type(description="One try at sending a delivery.")
class WebhookAttempt:
    attempted_at: datetime
    status_code: int | None = strawberry.field(description="None when no response came (or no request was made).")
    latency_ms: int | None
    response_excerpt: str | None = strawberry.field(description="The first 500 characters of the response body.")
    error: str | None

    @classmethod
    def from_model(cls, m: models.WebhookAttempt) -> WebhookAttempt:
        return cls(
            attempted_at=m.attempted_at,
            status_code=m.status_code,
            latency_ms=m.latency_ms,
            response_excerpt=m.response_excerpt,
            error=m.error,
        )


@strawberry.type(description="One event for one endpoint; its id is the `webhook-id` header, the same on every attempt.")
class WebhookDelivery:
    id: strawberry.ID
    endpoint_id: strawberry.ID
    event_id: strawberry.ID
    event_type: str
    status: WebhookDeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    created_at: datetime
    attempts: list[WebhookAttempt]

    @classmethod
    def from_model(cls, m: models.WebhookDelivery, attempts: list[models.WebhookAttempt]) -> WebhookDelivery:
        return cls(
            id=gid(m.id),
            endpoint_id=gid(m.endpoint_id),
            event_id=gid(m.event_id),
            event_type=m.event_type,
            status=models.DeliveryStatus(m.status),
            attempt_count=m.attempt_count,
            next_attempt_at=m.next_attempt_at,
            delivered_at=m.delivered_at,
            last_error=m.last_error,
            created_at=m.created_at,
            attempts=[WebhookAttempt.from_model(a) for a in attempts],
        )


@strawberry.type
class WebhookEventType:
    type: str
    description: str


@strawberry.input
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="https (http outside production).")
    event_types: list[str] = strawberry.field(description="See webhookEventTypes.")
    description: str | None = None


@strawberry.input
class UpdateWebhookEndpointInput:
    url: str | None = None
    event_types: list[str] | None = None
    enabled: bool | None = strawberry.field(default=None, description="Enabling again clears the failing streak.")
    description: str | None = None


@strawberry.type
class WebhookEndpointPayload:
    endpoint: WebhookEndpoint | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookSecretPayload:
    endpoint: WebhookEndpoint | None = None
    secret: str | None = strawberry.field(default=None, description='"whsec_...": shown this once; store it now.')
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookDeliveryPayload:
    delivery: WebhookDelivery | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Every event type an endpoint can subscribe to.")
    def webhook_event_types(self) -> list[WebhookEventType]:
        return [WebhookEventType(type=name, description=text) for name, text in events.EVENT_TYPES.items()]

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="Your webhook endpoints, oldest first.")
    async def webhook_endpoints(self, info: Info) -> list[WebhookEndpoint]:
        async def work(session: AsyncSession) -> list[WebhookEndpoint]:
            return [
                WebhookEndpoint.from_model(e) for e in await service.list_endpoints(session, merchant_id=info.context.merchant_id)
            ]

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="Deliveries with their attempts, newest first.")
    async def webhook_deliveries(
        self,
        info: Info,
        endpoint_id: strawberry.ID | None = None,
        status: WebhookDeliveryStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[WebhookDelivery]:
        async def work(session: AsyncSession) -> Connection[WebhookDelivery]:
            merchant_id = info.context.merchant_id
            page = await service.list_deliveries(
                session,
                merchant_id=merchant_id,
                endpoint_id=validation.parse_id(endpoint_id, "endpointId") if endpoint_id is not None else None,
                status=models.DeliveryStatus(status.value) if status is not None else None,
                first=first,
                after=after,
            )
            attempts = await service.attempts_of(session, merchant_id=merchant_id, delivery_ids=[d.id for d in page.items])
            return to_connection(page, lambda d: WebhookDelivery.from_model(d, attempts[d.id]))

        return await query(info, work)


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        permission_classes=[SecretKeyOrManager], description="Add an endpoint; the payload shows its secret once."
    )
    async def create_webhook_endpoint(self, info: Info, input: CreateWebhookEndpointInput) -> WebhookSecretPayload:
        async def work(session: AsyncSession) -> WebhookSecretPayload:
            made = await service.create_endpoint(
                session,
                merchant_id=info.context.merchant_id,
                settings=info.context.settings,
                url=input.url,
                event_types=input.event_types,
                description=input.description,
            )
            return WebhookSecretPayload(endpoint=WebhookEndpoint.from_model(made.endpoint), secret=made.secret)

        return await mutate(info, WebhookSecretPayload, work)

    @strawberry.mutation(permission_classes=[SecretKeyOrManager])
    async def update_webhook_endpoint(
        self, info: Info, id: strawberry.ID, input: UpdateWebhookEndpointInput
    ) -> WebhookEndpointPayload:
        async def work(session: AsyncSession) -> WebhookEndpointPayload:
            endpoint = await service.update_endpoint(
                session,
                merchant_id=info.context.merchant_id,
                endpoint_id=validation.parse_id(id, "id"),
                settings=info.context.settings,
                url=input.url,
                event_types=input.event_types,
                enabled=input.enabled,
                description=input.description,
            )
            return WebhookEndpointPayload(endpoint=WebhookEndpoint.from_model(endpoint))

        return await mutate(info, WebhookEndpointPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="A new signing secret, shown once. The old one keeps signing next to it (two signatures) for "
        "overlapHours (0 to 168), so your receivers can switch without losing webhooks.",
    )
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID, overlap_hours: int = 24) -> WebhookSecretPayload:
        async def work(session: AsyncSession) -> WebhookSecretPayload:
            made = await service.rotate_secret(
                session,
                merchant_id=info.context.merchant_id,
                endpoint_id=validation.parse_id(id, "id"),
                settings=info.context.settings,
                overlap_hours=overlap_hours,
            )
            return WebhookSecretPayload(endpoint=WebhookEndpoint.from_model(made.endpoint), secret=made.secret)

        return await mutate(info, WebhookSecretPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKeyOrManager],
        description="Send a delivery again now (same webhook-id), with a fresh retry schedule.",
    )
    async def redeliver_webhook(self, info: Info, id: strawberry.ID) -> WebhookDeliveryPayload:
        async def work(session: AsyncSession) -> WebhookDeliveryPayload:
            merchant_id = info.context.merchant_id
            delivery = await service.redeliver(session, merchant_id=merchant_id, delivery_id=validation.parse_id(id, "id"))
            attempts = await service.attempts_of(session, merchant_id=merchant_id, delivery_ids=[delivery.id])
            return WebhookDeliveryPayload(delivery=WebhookDelivery.from_model(delivery, attempts[delivery.id]))

        return await mutate(info, WebhookDeliveryPayload, work)
