"""Every payouts test ends with `referral ledger verify` (rewards ledger and payouts), and
may move the second factor's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.merchants import totp
from tests.payouts.helpers import assert_books_balance


@pytest.fixture
async def books_verified_at_teardown(db):
    yield
    await assert_books_balance(db)  # torn down before `db`, which empties the tables


@pytest.fixture(autouse=True)
def _books_verified_after_each_test(request: pytest.FixtureRequest) -> None:
    if "db" in request.fixturenames:
        request.getfixturevalue("books_verified_at_teardown")


class Clock:
    """The time second factors are checked at; starts mid-step, so codes never straddle."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.now = now.replace(second=10 if now.second < 30 else 40, microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    found = Clock()
    monkeypatch.setattr(totp, "current_time", found)
    return found
