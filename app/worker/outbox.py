"""The transactional outbox.

`enqueue` writes the job row in the caller's transaction; `dispatch_committed` sends the
jobs of a committed transaction to dramatiq; `relay` re-sends jobs that are still pending
after a while (a crash between commit and send, a lost message, a broker outage). Running a
job (`run_job`) locks its row, runs the handler and marks it DONE in one transaction, so a
job delivered twice, or to two workers, has its effects once.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app.db import attach, changed_rows, insert_many, insert_one, new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.pagination import Page, paginate
from app.worker import registry
from app.worker.models import JobStatus, OutboxJob

logger = logging.getLogger("app.worker")
_PENDING = "outbox_pending"
RELAY_AFTER = timedelta(seconds=30)


async def enqueue(
    session: AsyncSession,
    actor: str,
    *,
    merchant_id: uuid.UUID | None = None,
    run_key: str | None = None,
    delay: timedelta | None = None,
    **args: Any,
) -> OutboxJob | None:
    """Write a job in the current transaction; it is sent once the transaction commits.
    With a `run_key` that already exists, nothing is written and None is returned."""
    values = job_row(actor, merchant_id, args, run_key=run_key, delay=delay)
    conflict = ("run_key",) if run_key is not None else None
    job = await insert_one(session, OutboxJob, values, ignoring_conflicts=conflict)
    if job is None:
        return None
    session.info.setdefault(_PENDING, []).append(job)
    return job


async def enqueue_many(session: AsyncSession, actor: str, *, merchant_id: uuid.UUID | None, args: list[dict[str, Any]]) -> None:
    """Jobs of one actor, one per `args`, in one multi-row INSERT (an action's webhook
    deliveries); sent once the transaction commits."""
    jobs = await insert_many(session, OutboxJob, [job_row(actor, merchant_id, one) for one in args])
    session.info.setdefault(_PENDING, []).extend(jobs)


def job_row(
    actor: str,
    merchant_id: uuid.UUID | None,
    args: dict[str, Any],
    *,
    run_key: str | None = None,
    delay: timedelta | None = None,
    job_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The row of a new job (every column a new job sets); `job_id` and `now` when a statement
    of the caller's wrote it (see `written`)."""
    now = now or utcnow()
    return dict(
        id=job_id or new_id(),
        merchant_id=merchant_id,
        actor=actor,
        args={k: str(v) for k, v in args.items()},
        run_key=run_key,
        status=JobStatus.PENDING,
        attempts=0,
        created_at=now,
        not_before=now + delay if delay else None,
    )


def written(session: AsyncSession, values: dict[str, Any]) -> OutboxJob:
    """A job that a statement of the caller's wrote with `values` (`job_row`), in this
    transaction: sent once it commits, like one `enqueue` wrote."""
    job = attach(session, OutboxJob, {"last_error": None, "sent_at": None, "finished_at": None} | values)
    session.info.setdefault(_PENDING, []).append(job)
    return job


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, previous_transaction: object) -> None:
    """A rolled-back transaction's jobs were never written: never send them. A savepoint
    rolled back keeps the list: the outer transaction's jobs still commit (a job of the
    savepoint sent anyway finds no row and does nothing)."""
    if not getattr(previous_transaction, "nested", False):
        session.info.pop(_PENDING, None)


def pending_jobs(session: AsyncSession) -> list[OutboxJob]:
    """The jobs the current transaction has written so far (sent once it commits)."""
    return list(session.info.get(_PENDING, []))


async def dispatch_committed(session: AsyncSession) -> None:
    """Send the jobs of the transaction just committed. A failure to send is only logged:
    the relay sends them again."""
    pending = session.info.pop(_PENDING, [])
    for job in pending:
        await send(job)


async def send(job: OutboxJob) -> None:
    from app.worker import broker

    delay_ms = None
    if job.not_before is not None:
        delay_ms = max(0, int((job.not_before - utcnow()).total_seconds() * 1000))
    try:
        await broker.send(broker.actor_for(job.actor), str(job.id), delay_ms)
    except Exception:
        logger.warning("could not send job; the relay will", exc_info=True, extra={"job_id": str(job.id), "actor": job.actor})


async def relay(session: AsyncSession, *, older_than: timedelta = RELAY_AFTER, limit: int = 500) -> int:
    """Send again the jobs still pending `older_than` after they were last sent (or tried),
    and, for a delayed job, `older_than` after it fell due (the broker delivers it then)."""
    now = utcnow()
    due = list(
        (
            await session.scalars(
                select(OutboxJob)
                .where(
                    OutboxJob.status == JobStatus.PENDING,
                    func.coalesce(OutboxJob.sent_at, OutboxJob.created_at) <= now - older_than,
                    (OutboxJob.not_before.is_(None)) | (OutboxJob.not_before <= now - older_than),
                )
                .order_by(OutboxJob.id)
                .limit(limit)
            )
        ).all()
    )
    for job in due:
        job.sent_at = now
    await session.commit()
    for job in due:
        await send(job)
    return len(due)


async def run_job(factory: async_sessionmaker[AsyncSession], job_id: str) -> None:
    """The body of every actor: run the job once in effect, whatever the deliveries."""
    try:
        identifier = uuid.UUID(job_id)
    except ValueError:
        logger.error("malformed job id", extra={"job_id": job_id})
        return
    async with factory() as session:
        attempts = await session.scalar(
            update(OutboxJob)
            .where(OutboxJob.id == identifier, OutboxJob.status == JobStatus.PENDING)
            .values(attempts=OutboxJob.attempts + 1)
            .returning(OutboxJob.attempts)
        )
        await session.commit()
        if attempts is None:
            return  # done, dead, or not ours
        job = await session.scalar(select(OutboxJob).where(OutboxJob.id == identifier).with_for_update())
        if job is None or job.status != JobStatus.PENDING:
            await session.rollback()
            return  # a concurrent delivery finished it while we waited for the lock
        spec = registry.HANDLERS.get(job.actor)
        if spec is None:
            raise RuntimeError(f"no handler for job {job.actor}")
        try:
            if spec.own_transactions:
                args = dict(job.args)
                await session.rollback()  # no lock or transaction while the handler waits on the network
                await spec.handler(factory, **args)
                await session.execute(
                    update(OutboxJob)
                    .where(OutboxJob.id == identifier, OutboxJob.status == JobStatus.PENDING)
                    .values(status=JobStatus.DONE, finished_at=utcnow())
                )
            else:
                await registry.call(spec, session, job.args)
                job.status = JobStatus.DONE
                job.finished_at = utcnow()
            await session.commit()
        except Exception as error:
            await session.rollback()
            dead = attempts >= spec.max_attempts
            await session.execute(
                update(OutboxJob)
                .where(OutboxJob.id == identifier)
                .values(
                    last_error=f"{type(error).__name__}: {error}"[:2000],
                    status=JobStatus.DEAD if dead else JobStatus.PENDING,
                    finished_at=utcnow() if dead else None,
                    sent_at=utcnow(),  # dramatiq retries it: the relay waits before sending it too
                )
            )
            await session.commit()
            if dead:
                logger.error("job failed for good", exc_info=error, extra={"job_id": job_id, "actor": spec.name})
                return
            raise  # dramatiq retries it, with backoff
        await dispatch_committed(session)


async def list_dead_jobs(
    session: AsyncSession, *, merchant_id: uuid.UUID | None, first: int | None, after: str | None
) -> Page[OutboxJob]:
    query = select(OutboxJob).where(OutboxJob.status == JobStatus.DEAD)
    query = query.where(OutboxJob.merchant_id == merchant_id) if merchant_id else query
    return await paginate(session, query, OutboxJob.id, first=first, after=after)


async def retry_dead_job(session: AsyncSession, *, merchant_id: uuid.UUID | None, job_id: uuid.UUID) -> OutboxJob:
    """Give a dead job a fresh set of attempts; it is sent after the transaction commits."""
    query = select(OutboxJob).where(OutboxJob.id == job_id)
    if merchant_id is not None:
        query = query.where(OutboxJob.merchant_id == merchant_id)
    job = await session.scalar(query.with_for_update())
    if job is None:
        raise NotFound("id", "job")
    if job.status != JobStatus.DEAD:
        raise DomainError("id", ErrorCode.INVALID_STATUS_TRANSITION, f"the job is {job.status.value}, not DEAD")
    job.status = JobStatus.PENDING
    job.attempts = 0
    job.finished_at = None
    job.sent_at = utcnow()
    await session.flush()
    session.info.setdefault(_PENDING, []).append(job)
    return job


def bucket(now: datetime, every: timedelta) -> datetime:
    """The start of the period `now` falls in: the run key of a scheduled job."""
    seconds = int(every.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=now.tzinfo)


async def schedule_due(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Enqueue each scheduled job once per period. Any number of workers may call this at
    once: the run key (job name + period) is unique, so only one of them creates the run."""
    now = now or utcnow()
    created = 0
    for spec in registry.HANDLERS.values():
        if spec.every is not None:
            run_key = f"{spec.name}@{bucket(now, spec.every).isoformat()}"
            created += await enqueue(session, spec.name, run_key=run_key) is not None
    await session.commit()
    await dispatch_committed(session)
    return created


async def prune(session: AsyncSession, *, keep: timedelta = timedelta(days=7)) -> int:
    """Forget finished scheduled runs after a week (one row per period would pile up)."""
    result = await session.execute(
        delete(OutboxJob).where(
            OutboxJob.run_key.is_not(None),
            OutboxJob.status == JobStatus.DONE,
            OutboxJob.finished_at < utcnow() - keep,
        )
    )
    await session.commit()
    return changed_rows(result)
