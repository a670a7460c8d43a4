"""Every payouts test ends with `referral ledger verify` (rewards ledger and payouts)."""

from __future__ import annotations

import pytest

from tests.payouts.helpers import assert_books_balance


@pytest.fixture
async def books_verified_at_teardown(db):
    yield
    await assert_books_balance(db)  # torn down before `db`, which empties the tables


@pytest.fixture(autouse=True)
def _books_verified_after_each_test(request: pytest.FixtureRequest) -> None:
    if "db" in request.fixturenames:
        request.getfixturevalue("books_verified_at_teardown")
