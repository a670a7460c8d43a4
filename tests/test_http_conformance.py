"""The graphql-http audit (the GraphQL over HTTP spec's own checks, an npm package) against
a server on each database: no warning, no error. Several audits look types up with `__type`,
which production mode refuses (introspection off), so the server runs with APP_ENV=test; the
HTTP handling is the same in both modes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.servers import running_server

AUDIT = Path(__file__).parent / "conformance"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None or not (AUDIT / "node_modules" / "graphql-http").is_dir():
        if REQUIRE_SERVICES:
            pytest.fail("node and tests/conformance/node_modules are needed (make test runs npm ci there)")
        pytest.skip("node or the graphql-http package is missing (npm ci --prefix tests/conformance)")
    return node


async def test_the_graphql_over_http_audit_passes_without_warnings(node, db, database_url):
    env = {
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "SECRET_KEY": "conformance-secret",
        "BROKER_URL": "stub://",
        "EMBEDDED_WORKER": "0",
    }
    with running_server(**env) as port:
        audit = subprocess.run(
            [node, str(AUDIT / "audit.mjs"), f"http://127.0.0.1:{port}/graphql"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    report = json.loads(audit.stdout)
    failing = [f"{r['id']} {r['status']}: {r['name']} ({r['reason']})" for r in report["results"] if r["status"] != "ok"]
    assert failing == []
    assert report["ok"] == len(report["results"]) >= 50
