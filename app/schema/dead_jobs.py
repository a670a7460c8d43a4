"""Background jobs that failed every attempt (the dead-letter state), and retrying them."""

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
from app.schema.permissions import SecretKey
from app.schema.scalars import JSON
from app.schema.transactions import mutate, query
from app.worker import models, outbox

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
JobStatus: TypeAlias = models.JobStatus
strawberry.enum(JobStatus, name="JobStatus")


@strawberry.type
class Job:
    id: strawberry.ID
    actor: str = strawberry.field(description='"<domain>.<event>", e.g. "webhooks.deliver".')
    args: JSON
    status: JobStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_model(cls, m: models.OutboxJob) -> Job:
        return cls(
            id=gid(m.id),
            actor=m.actor,
            args=m.args,
            status=models.JobStatus(m.status),
            attempts=m.attempts,
            last_error=m.last_error,
            created_at=m.created_at,
            finished_at=m.finished_at,
        )


@strawberry.type
class JobPayload:
    job: Job | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class JobQuery:
    @strawberry.field(permission_classes=[SecretKey], description="Your jobs that failed every attempt, newest first.")
    async def dead_jobs(self, info: Info, first: int | None = 20, after: str | None = None) -> Connection[Job]:
        async def work(session: AsyncSession) -> Connection[Job]:
            page = await outbox.list_dead_jobs(session, merchant_id=info.context.merchant_id, first=first, after=after)
            return to_connection(page, Job.from_model)

        return await query(info, work)


@strawberry.type
class JobMutation:
    @strawberry.mutation(permission_classes=[SecretKey], description="Run a dead job again, with a fresh set of attempts.")
    async def retry_job(self, info: Info, id: strawberry.ID) -> JobPayload:
        async def work(session: AsyncSession) -> JobPayload:
            job = await outbox.retry_dead_job(session, merchant_id=info.context.merchant_id, job_id=validation.parse_id(id, "id"))
            return JobPayload(job=Job.from_model(job))

        return await mutate(info, JobPayload, work)
