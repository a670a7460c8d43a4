"""`GET /analytics/{programId}/{report}.csv?from=YYYY-MM-DD&to=YYYY-MM-DD[&granularity=WEEK]`: a
program's report as CSV, streamed. The HTTP twin of `programAnalytics`: the same credentials
(`Authorization: Bearer` with a secret key or an admin session, checked by the same permission
class), the same rate limits, the same merchant scope."""

from __future__ import annotations

import uuid
from datetime import date
from types import SimpleNamespace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.analytics import export, reports
from app.errors import DomainError, ErrorCode
from app.schema.context import Context
from app.schema.errors import PublicError
from app.schema.permissions import SecretKeyOrAdmin

PATH = "/analytics/{program_id}/{report}.csv"
STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "RATE_LIMITED": 429}


def _refused(code: str, message: str, status: int | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status or STATUS.get(code, 400))


def _day(request: Request, name: str) -> date:
    try:
        return date.fromisoformat(request.query_params.get(name, ""))
    except ValueError:
        raise DomainError(name, ErrorCode.INVALID_INPUT, f"{name} is a date: YYYY-MM-DD") from None


async def download(request: Request) -> Response:
    context = Context(
        request=request,
        response=None,
        settings=request.app.state.settings,
        session_factory=request.app.state.session_factory,
        rate_limiter=request.app.state.rate_limiter,
    )
    try:
        refusal = await context.admit()
        if refusal is not None:
            return _refused("RATE_LIMITED", refusal.message)
        try:
            await SecretKeyOrAdmin().has_permission(None, SimpleNamespace(context=context))
        except PublicError as error:
            return _refused(error.code, error.message)
        report = request.path_params["report"]
        try:
            program_id = uuid.UUID(request.path_params["program_id"])
        except ValueError:
            return _refused("NOT_FOUND", "program not found")
        merchant_id = context.merchant_id
        weekly = request.query_params.get("granularity", "DAY").upper() == "WEEK"

        async def work(session: AsyncSession) -> tuple[reports.Period, list[list[Any]]]:
            first, last = _day(request, "from"), _day(request, "to")
            period = await reports.period_of(session, merchant_id=merchant_id, program_id=program_id, first=first, last=last)
            return period, await export.rows_of(session, merchant_id=merchant_id, period=period, report=report, weekly=weekly)

        try:
            period, rows = await context.run(work)
        except DomainError as error:
            return _refused(error.code.value, error.message)
    finally:
        await context.close()
    filename = f"{report}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return StreamingResponse(
        export.stream(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


def routes() -> list[Route]:
    return [Route(PATH, download, methods=["GET"])]
