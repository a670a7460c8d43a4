"""Emitting the catalogue's events from the domain code, with their payloads (built only
when an endpoint listens). Here, above app.webhooks, because payloads name customers by
their external ids: app.webhooks itself knows no domain."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.referrals import customers
from app.webhooks import events
from app.webhooks.service import emit, emit_many


async def _external_ids(session: AsyncSession, merchant_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    return await customers.external_ids(session, merchant_id=merchant_id, ids=ids)


async def referral_event(session: AsyncSession, event_type: str, referral: Any) -> None:
    async def payload() -> dict[str, Any]:
        ids = await _external_ids(session, referral.merchant_id, [referral.referrer_id, referral.referee_id])
        return events.referral_data(
            referral, referrer_external_id=ids.get(referral.referrer_id), referee_external_id=ids.get(referral.referee_id)
        )

    await emit(session, referral.merchant_id, event_type, payload)


async def reward_event(session: AsyncSession, event_type: str, reward: Any, **extra: Any) -> None:
    async def payload() -> dict[str, Any]:
        ids = await _external_ids(session, reward.merchant_id, [reward.customer_id])
        return {**events.reward_data(reward, customer_external_id=ids.get(reward.customer_id)), **extra}

    await emit(session, reward.merchant_id, event_type, payload)


async def reward_events(session: AsyncSession, emitted: list[tuple[str, Any]]) -> None:
    """Events of several rewards of one merchant (an action's grants), written together
    (`emit_many`), their customers' external ids read once if at all."""
    if not emitted:
        return
    merchant_id = emitted[0][1].merchant_id
    known: dict[uuid.UUID, str] = {}

    def payload_of(reward: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def payload() -> dict[str, Any]:
            if reward.customer_id not in known:
                known.update(await _external_ids(session, merchant_id, [r.customer_id for _type, r in emitted]))
            return events.reward_data(reward, customer_external_id=known.get(reward.customer_id))

        return payload

    await emit_many(session, merchant_id, [(event_type, payload_of(reward)) for event_type, reward in emitted])


async def fraud_referral_rejected(session: AsyncSession, referral: Any, decision: Any | None) -> None:
    async def payload() -> dict[str, Any]:
        ids = await _external_ids(session, referral.merchant_id, [referral.referrer_id, referral.referee_id])
        data = events.referral_data(
            referral, referrer_external_id=ids.get(referral.referrer_id), referee_external_id=ids.get(referral.referee_id)
        )
        return {**data, "fraudDecision": events.fraud_decision_data(decision) if decision is not None else None}

    await emit(session, referral.merchant_id, events.REFERRAL_REJECTED, payload)


async def fraud_review_event(session: AsyncSession, event_type: str, review: Any, decisions: list[Any]) -> None:
    await emit(session, review.merchant_id, event_type, events.fraud_review_data(review, decisions))
