"""Fraud work run by the worker: clearing referrals whose quiet period ended, and checking
referrals again when new evidence arrives."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.fraud import clearance, rescreening
from app.fraud.identifiers import RESCREEN_JOB
from app.referrals.customers import EMAIL_CHANGED_JOB
from app.referrals.models import Customer
from app.worker.registry import job


@job("fraud.clear_due", every=timedelta(minutes=1))
async def clear_due(session: AsyncSession) -> None:
    """Referrals whose rewards waited out their quiet period are screened again and cleared."""
    await clearance.clear_due(session)


@job(EMAIL_CHANGED_JOB)
async def email_changed(session: AsyncSession, *, customer_id: str, at: str) -> None:
    """A customer's mailbox changed after the fact: their referrals are judged again by the new one."""
    await rescreen(session, customer_id=customer_id, identifiers="", at=at)


@job(RESCREEN_JOB)
async def rescreen(session: AsyncSession, *, customer_id: str, identifiers: str, at: str, action_id: str = "") -> None:
    """A customer was seen with new evidence: the referrals it may change are checked again."""
    customer = await session.get(Customer, uuid.UUID(customer_id))
    if customer is None:
        return
    await rescreening.rescreen(
        session,
        merchant_id=customer.merchant_id,
        customer_id=customer.id,
        identifiers=rescreening.parse_identifiers(identifiers),
        at=datetime.fromisoformat(at),
        action_id=uuid.UUID(action_id) if action_id else None,
    )
