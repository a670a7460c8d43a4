"""Schemathesis over the whole GraphQL schema: generated queries and mutations, with a secret
and with a publishable key, against a real server on each database. Whatever the input, the
answer is never a 5xx and never "Unexpected error." (a bug the caller could not have caused)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import _empty_all_tables
from tests.servers import ServerLog, referral_command, running_server

KEY = r"(?:sk|pk)_[A-Za-z0-9]{32}"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))  # per operation; ~60 operations x 2 keys x 2 databases in about a minute


@pytest.fixture(scope="module")
async def fuzz_server(engine, owner_engine, database_url):
    env = {
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "SECRET_KEY": "fuzz-secret",
        "RATE_LIMITS_ENABLED": "0",
        "BROKER_URL": "stub://",
        "EMBEDDED_WORKER": "0",
    }
    created = subprocess.run(
        [referral_command(), "merchants", "create", "Fuzz Shop"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    keys = dict(zip(("secret", "publishable"), re.findall(KEY, created), strict=True))
    log = ServerLog()
    with running_server(log, **env) as port:
        yield port, keys, log
    await _empty_all_tables(owner_engine)  # the next tests start from an empty database


def test_no_generated_request_is_a_server_error(fuzz_server):
    port, keys, log = fuzz_server
    schema = schemathesis.graphql.from_url(f"http://127.0.0.1:{port}/graphql")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 55  # every query and mutation field

    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def no_server_error(case):
            for key in keys.values():
                response = case.call(headers={"Authorization": f"Bearer {key}"})
                failed = response.status_code >= 500 or "Unexpected error." in response.text
                assert not failed, (operation.label, case.body, response.text[:500], log.tail())  # noqa: B023 (runs at once)

        no_server_error()
        calls += 1
    assert calls == len(operations)
