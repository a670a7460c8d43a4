"""Scheduled payout runs: per program, weekly or monthly on a given day, paying each customer's
available commission earned in the program, per currency, when it reaches the minimum.

The worker's scheduler calls `start_due_runs` every few minutes; a run is unique per program
and period ("2026-11", "2026-W48"), so a period is paid once whatever the number of workers,
retries or restarts. A run goes through its customers in chunks, one job (one transaction)
per chunk, each queuing the next: a crash repeats a chunk, never half of one. Days are UTC
days; monthly runs take days 1 to 28 so every month has them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money
from app.db import insert_ignoring_conflicts, new_id, utcnow
from app.errors import DomainError, ErrorCode
from app.merchants import audit
from app.payouts import funds
from app.payouts.models import Frequency, Payout, PayoutAccount, PayoutRun, PayoutSchedule
from app.payouts.service import announce_created
from app.referrals import programs
from app.referrals.models import Customer
from app.rewards.models import Reward, RewardStatus
from app.worker import outbox

CHUNK = 500  # customers per job
CHUNK_JOB = "payouts.run_chunk"
MAX_CURRENCIES = 20


def period_of(schedule: PayoutSchedule, now: datetime) -> str | None:
    """The period a run made now belongs to, or None before the schedule's day in it."""
    if schedule.frequency == Frequency.MONTHLY:
        return f"{now:%Y-%m}" if now.day >= schedule.day else None
    year, week, weekday = now.isocalendar()
    return f"{year}-W{week:02d}" if weekday >= schedule.day else None


def _minimums(values: dict[str, int]) -> dict[str, int]:
    if not values:
        raise DomainError("minimums", ErrorCode.REQUIRED, "name at least one currency and its minimum")
    if len(values) > MAX_CURRENCIES:
        raise DomainError("minimums", ErrorCode.TOO_MANY, f"at most {MAX_CURRENCIES} currencies")
    found = {}
    for currency, amount in values.items():
        code = money.currency(currency, "minimums")
        if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= money.MAX_AMOUNT:
            raise DomainError("minimums", ErrorCode.INVALID_AMOUNT, "a minimum is a positive whole number of minor units")
        found[code] = amount
    return found


async def set_schedule(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    frequency: Frequency,
    day: int,
    minimums: dict[str, int],
    enabled: bool,
    actor: audit.Actor,
) -> PayoutSchedule:
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id, field="programId")
    top = 7 if frequency is Frequency.WEEKLY else 28
    if isinstance(day, bool) or not 1 <= day <= top:
        raise DomainError("day", ErrorCode.INVALID_INPUT, f"day is 1 to {top} for a {frequency.value.lower()} schedule")
    found = _minimums(minimums)
    schedule = await session.scalar(
        select(PayoutSchedule)
        .where(PayoutSchedule.merchant_id == merchant_id, PayoutSchedule.program_id == program_id)
        .with_for_update()
    )
    if schedule is None:
        schedule = PayoutSchedule(id=new_id(), merchant_id=merchant_id, program_id=program_id)
        session.add(schedule)
    schedule.frequency, schedule.day, schedule.minimums, schedule.enabled = frequency, day, found, enabled
    schedule.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="payout_schedule.changed",
        subject_id=program_id,
        details={"frequency": frequency.value, "day": day, "minimums": found, "enabled": enabled},
    )
    return schedule


async def get_schedule(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> PayoutSchedule | None:
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id, field="programId")
    return await session.scalar(
        select(PayoutSchedule).where(PayoutSchedule.merchant_id == merchant_id, PayoutSchedule.program_id == program_id)
    )


async def list_runs(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> list[PayoutRun]:
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id, field="programId")
    query = select(PayoutRun).where(PayoutRun.program_id == program_id).order_by(PayoutRun.id.desc()).limit(100)
    return list((await session.scalars(query)).all())


async def start_due_runs(session: AsyncSession, *, now: datetime | None = None) -> list[PayoutRun]:
    """Create the runs that are due (every merchant's) and queue their first chunk."""
    now = now or utcnow()
    started = []
    for schedule in (await session.scalars(select(PayoutSchedule).where(PayoutSchedule.enabled.is_(True)))).all():
        period = period_of(schedule, now)
        if period is None:
            continue
        run = await session.scalar(
            insert_ignoring_conflicts(session, PayoutRun, ["program_id", "period"])
            .values(
                id=new_id(),
                merchant_id=schedule.merchant_id,
                program_id=schedule.program_id,
                period=period,
                status="RUNNING",
                payouts_created=0,
                customers_without_account=0,
                started_at=now,
            )
            .returning(PayoutRun)
        )
        if run is not None:
            started.append(run)
            await outbox.enqueue(session, CHUNK_JOB, merchant_id=schedule.merchant_id, run_id=run.id, after="")
    return started


async def run_chunk(
    session: AsyncSession, *, run_id: uuid.UUID, after: uuid.UUID | None, now: datetime | None = None
) -> uuid.UUID | None:
    """Pay the next CHUNK customers (by id) of the run's program; queue the next chunk, or
    finish the run. Returns where the next chunk starts (None: the run is done)."""
    now = now or utcnow()
    run = await session.scalar(select(PayoutRun).where(PayoutRun.id == run_id).with_for_update())
    if run is None or run.status == "DONE":
        return None
    schedule = await session.scalar(select(PayoutSchedule).where(PayoutSchedule.program_id == run.program_id))
    minimums = dict(schedule.minimums) if schedule is not None else {}
    payable = [
        Reward.program_id == run.program_id,
        Reward.kind == funds.KIND,
        Reward.status == RewardStatus.AVAILABLE,
        Reward.remaining > 0,
        Reward.unit.in_(sorted(minimums)),
    ]
    later = [Reward.customer_id > after] if after is not None else []
    customer_ids = list(
        (
            await session.scalars(
                select(Reward.customer_id)
                .where(*payable, *later)
                .group_by(Reward.customer_id)
                .order_by(Reward.customer_id)
                .limit(CHUNK)
            )
        ).all()
    )
    sums = (
        (
            await session.execute(
                select(Reward.customer_id, Reward.unit, func.sum(Reward.remaining))
                .where(*payable, Reward.customer_id.in_(customer_ids))
                .group_by(Reward.customer_id, Reward.unit)
            )
        ).all()
        if customer_ids
        else []
    )
    destinations = (
        {
            a.customer_id: a
            for a in (
                await session.scalars(
                    select(PayoutAccount).where(
                        PayoutAccount.customer_id.in_(customer_ids), PayoutAccount.superseded_at.is_(None)
                    )
                )
            ).all()
        }
        if customer_ids
        else {}
    )
    people = (
        {c.id: c for c in (await session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))).all()}
        if customer_ids
        else {}
    )
    done_keys = (
        set(
            (
                await session.scalars(
                    select(Payout.idempotency_key).where(Payout.run_id == run.id, Payout.customer_id.in_(customer_ids))
                )
            ).all()
        )
        if customer_ids
        else set()
    )
    claims, without_account = [], set()
    for customer_id, unit, total in sorted(sums, key=lambda r: (r[0], r[1])):
        if total < minimums.get(unit, 0):
            continue
        if customer_id not in destinations:
            without_account.add(customer_id)
            continue
        key = f"run:{run.id}:{customer_id}:{unit}"
        if key in done_keys:
            continue
        claims.append(
            funds.Claim(
                customer=people[customer_id],
                account=destinations[customer_id],
                currency=unit,
                amount=None,
                idempotency_key=key,
                request_hash=funds.request_hash("RUN", run.id, customer_id, unit),
                run_id=run.id,
            )
        )
    created = []
    if claims:
        taken = await funds.take(
            session, merchant_id=run.merchant_id, claims=claims, actor=audit.SYSTEM, program_id=run.program_id, now=now
        )
        created = [t.payout for t in taken if t.payout is not None]
        await announce_created(session, created)
    run.payouts_created += len(created)
    run.customers_without_account += len(without_account)
    if len(customer_ids) == CHUNK:
        await outbox.enqueue(session, CHUNK_JOB, merchant_id=run.merchant_id, run_id=run.id, after=customer_ids[-1])
        await session.flush()
        return customer_ids[-1]
    run.status = "DONE"
    run.finished_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        merchant_id=run.merchant_id,
        actor=audit.SYSTEM,
        action="payout_run.finished",
        subject_id=run.id,
        details={
            "program_id": str(run.program_id),
            "period": run.period,
            "payouts": run.payouts_created,
            "customers_without_account": run.customers_without_account,
        },
    )
    return None
