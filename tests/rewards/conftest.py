"""Every rewards test that touches the database ends with `referral ledger verify`: whatever
a scenario did, every transaction sums to zero, every cached balance equals its entries and
lots match balances."""

from __future__ import annotations

import pytest

from tests.rewards.helpers import assert_ledger_consistent


@pytest.fixture
async def ledger_verified_at_teardown(db):
    yield
    await assert_ledger_consistent(db)  # torn down before `db`, which empties the tables


@pytest.fixture(autouse=True)
def _ledger_verified_after_each_test(request: pytest.FixtureRequest) -> None:
    """Sync, so that a test without a database (pure rule logic) does not get one."""
    if "db" in request.fixturenames:
        request.getfixturevalue("ledger_verified_at_teardown")
