"""A referral's status, written here only: PENDING -> QUALIFIED (the referee's first purchase or
subscription), and -> REJECTED (fraud, a reviewer, a ban) from any other status, for good."""

from __future__ import annotations

from datetime import datetime

from app.referrals.models import Referral, ReferralStatus


def at_creation(qualified_at: datetime | None) -> str:
    """A referral created by a purchase or a subscription is qualified from the start."""
    return (ReferralStatus.QUALIFIED if qualified_at is not None else ReferralStatus.PENDING).value


def qualify(referral: Referral, *, at: datetime) -> bool:
    """QUALIFIED at `at`, if it was PENDING; False when nothing changed."""
    if referral.status != ReferralStatus.PENDING:
        return False
    referral.status = ReferralStatus.QUALIFIED
    referral.qualified_at = at
    return True


def reject(referral: Referral) -> bool:
    """REJECTED; False when it already was."""
    if referral.status == ReferralStatus.REJECTED:
        return False
    referral.status = ReferralStatus.REJECTED
    return True
