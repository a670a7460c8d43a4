"""Reports as CSV over HTTP: the same credentials and merchant scope as the GraphQL query."""

from __future__ import annotations

import csv
import io

from app.merchants.models import AdminRole
from tests.analytics.helpers import roll_up, today
from tests.analytics.test_reports import shop_with_two_referrers
from tests.payouts.helpers import make_admin


async def get_csv(tenant, path: str, key: str | None, **params) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await tenant.client.get(path, params=params, headers=headers)
    return response.status_code, response.headers.get("content-type", ""), response.text


async def test_reports_download_as_csv_with_a_secret_key_or_an_admin_session(db, tenant):
    program = await shop_with_two_referrers(tenant)
    await roll_up(db, tenant.id)
    day = today().isoformat()
    status, media, text = await get_csv(tenant, f"/analytics/{program}/funnel.csv", tenant.secret_key, **{"from": day, "to": day})
    assert (status, media) == (200, "text/csv; charset=utf-8")
    assert list(csv.reader(io.StringIO(text))) == [
        ["channel", "clicks", "signups", "referred", "qualified", "rewarded"],
        ["*", "3", "4", "4", "3", "4"],
        ["", "1", "2", "2", "1", "2"],
        ["email", "1", "1", "1", "1", "1"],
        ["whatsapp", "1", "1", "1", "1", "1"],
    ]
    reviewer = await make_admin(tenant, AdminRole.REVIEWER)
    status, _, text = await get_csv(tenant, f"/analytics/{program}/leaderboard.csv", reviewer.token, **{"from": day, "to": day})
    assert status == 200
    assert list(csv.reader(io.StringIO(text)))[1:] == [
        ["1", "", "jane", "2", "3", "EUR", "3000"],
        ["1", "", "jane", "2", "3", "USD", "5000"],
        ["2", "1", "kim", "1", "1", "USD", "2000"],
    ]
    status, _, text = await get_csv(tenant, f"/analytics/{program}/series.csv", tenant.secret_key, **{"from": day, "to": day})
    rows = list(csv.DictReader(io.StringIO(text)))
    revenue = {r["unit"]: (r["count"], r["amount"]) for r in rows if r["measure"] == "revenue"}
    assert revenue == {"EUR": ("1", "3000"), "USD": ("2", "7000")}  # one row per currency, never added together
    status, _, text = await get_csv(tenant, f"/analytics/{program}/totals.csv", tenant.secret_key, **{"from": day, "to": day})
    assert status == 200 and "reward_granted,CREDIT,USD,4,4000" in text


async def test_csv_refuses_strangers_browsers_and_other_merchants(db, tenant, other_tenant):
    program = await shop_with_two_referrers(tenant)
    day = today().isoformat()
    period = {"from": day, "to": day}
    path = f"/analytics/{program}/series.csv"
    assert (await get_csv(tenant, path, None, **period))[0] == 401
    assert (await get_csv(tenant, path, "sk_not_a_key", **period))[0] == 401
    assert (await get_csv(tenant, path, tenant.publishable_key, **period))[0] == 403
    status, _, text = await get_csv(tenant, path, other_tenant.secret_key, **period)
    assert status == 404 and "jane" not in text
    assert (await get_csv(tenant, f"/analytics/{program}/nonsense.csv", tenant.secret_key, **period))[0] == 400
    assert (await get_csv(tenant, path, tenant.secret_key, **{"from": "yesterday", "to": day}))[0] == 400
    assert (await get_csv(tenant, "/analytics/not-an-id/series.csv", tenant.secret_key, **period))[0] == 404
