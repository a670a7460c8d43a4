"""The `referral` command line, run as a real subprocess against its own SQLite file, with
the keys it prints checked against the API."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.db import create_engine
from app.main import create_app

REPO_ROOT = Path(__file__).resolve().parent.parent
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
KEY = r"(?:sk|pk)_[A-Za-z0-9]{32}"


@dataclass
class Cli:
    cwd: Path
    database_url: str
    app_env: str = "development"

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "APP_ENV": self.app_env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
            **env,
        }
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            cwd=self.cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert result.returncode == 0, f"referral {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def create_merchant(self, name: str = "Shop") -> dict[str, str]:
        out = self.run("merchants", "create", name).stdout
        return {
            "id": re.search(rf"merchant id:\s+({UUID})", out).group(1),
            "secret": re.search(r"secret key:\s+(sk_\S+)", out).group(1),
            "publishable": re.search(r"publishable key:\s+(pk_\S+)", out).group(1),
        }

    def keys(self, merchant_id: str) -> list[dict[str, str]]:
        """`keys list`, parsed: id, masked key, kind, state, the rest."""
        rows = []
        for line in self.run("keys", "list", merchant_id).stdout.splitlines():
            key_id, masked, kind, rest = line.split(maxsplit=3)
            rows.append({"id": key_id, "masked": masked, "kind": kind, "rest": rest, "line": line})
        return rows


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `referral migrate`, copied for each test (migrating takes most of a CLI test's time)."""
    directory = tmp_path_factory.mktemp("cli-template")
    cli = Cli(directory, f"sqlite+aiosqlite:///{directory / 'cli.db'}")
    result = cli.run("migrate")
    assert "database migrated to head" in result.stdout
    assert not (directory / "cli.db-wal").exists() or (directory / "cli.db-wal").stat().st_size == 0
    return directory / "cli.db"


@pytest.fixture
def cli(tmp_path: Path, migrated_template: Path) -> Cli:
    shutil.copy(migrated_template, tmp_path / "cli.db")
    return Cli(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")


@pytest.fixture
async def api(cli: Cli) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the CLI's database, to check what the printed keys can do."""
    engine = create_engine(cli.database_url)
    app = create_app(Settings(database_url=cli.database_url, app_env="test", secret_key="t"), engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cli") as client:
        yield client
    await engine.dispose()


async def viewer(api: httpx.AsyncClient, key: str) -> dict:
    response = await api.post(
        "/graphql", json={"query": "query { viewer { id name } }"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    return response.json()


async def works(api: httpx.AsyncClient, key: str, merchant_id: str) -> bool:
    body = await viewer(api, key)
    if "errors" in body:
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"], body
        return False
    assert body["data"]["viewer"]["id"] == merchant_id
    return True


def test_migrate_creates_the_schema_and_can_run_again(tmp_path: Path):
    cli = Cli(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    assert "database migrated to head" in cli.run("migrate").stdout
    assert (tmp_path / "fresh.db").exists()
    assert "database migrated to head" in cli.run("migrate").stdout  # nothing left to do, no error
    assert cli.run("merchants", "list").stdout == ""


async def test_merchants_create_prints_working_keys(cli: Cli, api):
    merchant = cli.create_merchant("Shop")
    assert merchant["secret"] != merchant["publishable"]
    assert re.fullmatch(KEY, merchant["secret"]) and re.fullmatch(KEY, merchant["publishable"])

    body = await viewer(api, merchant["secret"])
    assert body["data"]["viewer"] == {"id": merchant["id"], "name": "Shop"}
    # The publishable key is a real key too, limited to widget operations.
    forbidden = await viewer(api, merchant["publishable"])
    assert [e["extensions"]["code"] for e in forbidden["errors"]] == ["FORBIDDEN"]

    other = cli.create_merchant("Other Shop")
    assert other["id"] != merchant["id"] and other["secret"] != merchant["secret"]
    listed = cli.run("merchants", "list").stdout.splitlines()
    assert sorted(listed) == sorted([f"{merchant['id']}  Shop", f"{other['id']}  Other Shop"])


def test_merchants_create_refuses_an_empty_name(cli: Cli):
    result = cli.run("merchants", "create", "   ", check=False)
    assert result.returncode != 0
    assert "REQUIRED" in result.stderr
    assert cli.run("merchants", "list").stdout == ""


def test_keys_list_shows_masked_keys_only(cli: Cli):
    merchant = cli.create_merchant()
    output = cli.run("keys", "list", merchant["id"]).stdout
    for plaintext in (merchant["secret"], merchant["publishable"]):
        assert plaintext not in output
        assert plaintext[3:] not in output
        assert plaintext[3:-4] not in output
    rows = cli.keys(merchant["id"])
    assert {(row["masked"], row["kind"]) for row in rows} == {
        (f"sk_…{merchant['secret'][-4:]}", "secret"),
        (f"pk_…{merchant['publishable'][-4:]}", "publishable"),
    }
    assert all(row["rest"].startswith("active") for row in rows)


def test_keys_commands_refuse_a_malformed_merchant_id(cli: Cli):
    result = cli.run("keys", "list", "not-a-merchant", check=False)
    assert result.returncode != 0 and "not-a-merchant" in result.stderr


async def test_keys_rotate_retires_the_old_secret_key_at_once(cli: Cli, api):
    merchant = cli.create_merchant()
    out = cli.run("keys", "rotate", merchant["id"], "--kind", "secret").stdout
    new_key = re.search(r"new secret key: (sk_\S+)", out).group(1)
    assert "stop working now" in out

    assert await works(api, new_key, merchant["id"])
    assert not await works(api, merchant["secret"], merchant["id"])
    # Publishable keys are another kind: untouched.
    states = {row["masked"]: row["rest"].split()[0] for row in cli.keys(merchant["id"])}
    assert states == {
        f"sk_…{merchant['secret'][-4:]}": "revoked",
        f"sk_…{new_key[-4:]}": "active",
        f"pk_…{merchant['publishable'][-4:]}": "active",
    }


async def test_keys_rotate_with_grace_keeps_the_old_key_working(cli: Cli, api):
    merchant = cli.create_merchant()
    out = cli.run("keys", "rotate", merchant["id"], "--kind", "secret", "--grace-hours", "2").stdout
    new_key = re.search(r"new secret key: (sk_\S+)", out).group(1)
    assert "in 2 h" in out

    assert await works(api, new_key, merchant["id"])
    assert await works(api, merchant["secret"], merchant["id"])
    old = next(row for row in cli.keys(merchant["id"]) if row["masked"] == f"sk_…{merchant['secret'][-4:]}")
    assert re.match(r"active expires \d{4}-\d\d-\d\d \d\d:\d\d", old["rest"]), old["line"]


async def test_keys_rotate_publishable(cli: Cli, api):
    merchant = cli.create_merchant()
    out = cli.run("keys", "rotate", merchant["id"], "--kind", "publishable").stdout
    new_key = re.search(r"new publishable key: (pk_\S+)", out).group(1)
    assert await works(api, merchant["secret"], merchant["id"])
    states = {row["masked"]: row["rest"].split()[0] for row in cli.keys(merchant["id"])}
    assert states[f"pk_…{merchant['publishable'][-4:]}"] == "revoked"
    assert states[f"pk_…{new_key[-4:]}"] == "active"


@pytest.mark.parametrize("command", [["rotate"], ["create"], ["list"], ["create", "--kind", "publishable"]])
def test_keys_commands_for_an_unknown_merchant_fail_cleanly(cli: Cli, command: list[str]):
    result = cli.run("keys", command[0], "01a21292-0006-74d8-87dc-be0af73ba8d2", *command[1:], check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == "error: merchant NOT_FOUND: merchant not found"
    assert result.stdout == ""


async def test_keys_create_and_revoke(cli: Cli, api):
    merchant = cli.create_merchant()
    out = cli.run("keys", "create", merchant["id"], "--kind", "secret", "--name", "deploy").stdout
    match = re.search(rf"(sk_\S+)\s+\(shown once; id ({UUID})\)", out)
    second_key, second_id = match.group(1), match.group(2)
    assert await works(api, second_key, merchant["id"])
    assert any(row["id"] == second_id and row["line"].rstrip().endswith("deploy") for row in cli.keys(merchant["id"]))

    assert cli.run("keys", "revoke", merchant["id"], second_id).stdout.strip() == f"revoked {second_id}"
    assert not await works(api, second_key, merchant["id"])
    assert await works(api, merchant["secret"], merchant["id"])

    again = cli.run("keys", "revoke", merchant["id"], second_id, check=False)
    assert again.returncode != 0 and "ALREADY_REVOKED" in again.stderr

    # The last secret key stays: revoking it would lock the merchant out.
    first_id = next(row["id"] for row in cli.keys(merchant["id"]) if row["masked"] == f"sk_…{merchant['secret'][-4:]}")
    last = cli.run("keys", "revoke", merchant["id"], first_id, check=False)
    assert last.returncode != 0 and "LAST_SECRET_KEY" in last.stderr
    assert await works(api, merchant["secret"], merchant["id"])


def test_keys_revoke_refuses_another_merchants_key(cli: Cli):
    a = cli.create_merchant("A")
    b = cli.create_merchant("B")
    b_key_id = cli.keys(b["id"])[0]["id"]
    result = cli.run("keys", "revoke", a["id"], b_key_id, check=False)
    assert result.returncode != 0 and "NOT_FOUND" in result.stderr
    assert all(row["rest"].startswith("active") for row in cli.keys(b["id"]))


def test_keys_revoke_refuses_a_malformed_key_id(cli: Cli):
    merchant = cli.create_merchant()
    result = cli.run("keys", "revoke", merchant["id"], "nope", check=False)
    assert result.returncode != 0 and result.stderr.strip() == "error: 'nope' is not a key id"


def _demo_keys(output: str) -> tuple[str, str, str]:
    merchant_id = re.search(rf"Demo Shop \(({UUID})\)", output).group(1)
    secret = re.search(r"Secret key:\s+(sk_\S+)", output).group(1)
    publishable = re.search(r"Publishable key:\s+(pk_\S+)", output).group(1)
    return merchant_id, secret, publishable


async def test_demo_creates_one_merchant_and_shows_the_same_keys_again(cli: Cli, api):
    first = cli.run("demo").stdout
    second = cli.run("demo").stdout
    assert _demo_keys(first) == _demo_keys(second)
    merchant_id, secret, publishable = _demo_keys(first)
    assert cli.run("merchants", "list").stdout.splitlines() == [f"{merchant_id}  Demo Shop"]

    keys_file = cli.cwd / ".referral-demo-keys"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    keys = json.loads(keys_file.read_text())
    assert {k: keys[k] for k in ("merchant_id", "secret_key", "publishable_key")} == {
        "merchant_id": merchant_id,
        "secret_key": secret,
        "publishable_key": publishable,
    }
    assert await works(api, secret, merchant_id)
    assert f'"Authorization": "Bearer {secret}"' in first
    # the demo shop: a running program, Jane's link, the widget secret and the shop's origins
    assert keys["widget_secret"].startswith("wsec_") and f"Widget secret:    {keys['widget_secret']}" in first
    assert keys["referral_link"] == f"http://localhost:8000/demo/?ref={keys['referrer_code']}"
    assert f"Referral link:    {keys['referral_link']}" in first and "Demo shop:        http://localhost:8000/demo/" in first
    assert json.loads(keys_file.read_text()) == keys  # the second run kept everything
    settings = await api.post(
        "/graphql",
        json={"query": "{ widgetSettings { allowedOrigins secretConfigured } }"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert settings.json()["data"]["widgetSettings"] == {
        "allowedOrigins": ["http://localhost:8000", "http://127.0.0.1:8000"],
        "secretConfigured": True,
    }


def test_demo_makes_a_new_merchant_when_the_database_was_reset(cli: Cli, migrated_template: Path):
    first_id, first_secret, _ = _demo_keys(cli.run("demo").stdout)
    shutil.copy(migrated_template, cli.cwd / "cli.db")  # a fresh database, the old keys file stays
    second_id, second_secret, _ = _demo_keys(cli.run("demo").stdout)
    assert second_id != first_id and second_secret != first_secret
    assert cli.run("merchants", "list").stdout.splitlines() == [f"{second_id}  Demo Shop"]


def test_demo_is_refused_in_production(cli: Cli):
    cli.app_env = "production"
    result = cli.run("demo", check=False, SECRET_KEY="prod-secret")
    assert result.returncode != 0 and "development only" in result.stderr
    assert not (cli.cwd / ".referral-demo-keys").exists()
    cli.app_env = "development"
    assert cli.run("merchants", "list").stdout == ""


def test_merchants_limits_sets_shows_and_resets_one_merchants_budgets(cli: Cli):
    merchant = cli.create_merchant()

    shown = cli.run("merchants", "limits", merchant["id"], "--secret-key", "6000/minute", "--publishable-ip", "30/minute").stdout
    assert "secret_key       6000/minute\n" in shown and "publishable_ip   30/minute\n" in shown
    assert "secret_ip        3000/minute  (default)" in shown

    reset = cli.run("merchants", "limits", merchant["id"], "--secret-key", "default").stdout
    assert "secret_key       3000/minute  (default)" in reset and "publishable_ip   30/minute\n" in reset


def test_merchants_limits_refuses_what_is_not_a_rate_limit(cli: Cli):
    merchant = cli.create_merchant()

    result = cli.run("merchants", "limits", merchant["id"], "--secret-key", "lots", check=False)

    assert result.returncode != 0 and "is not a rate limit" in result.stderr and "Traceback" not in result.stderr


def test_db_commands_say_that_sqlite_has_no_row_level_security(cli: Cli):
    assert "the application's merchant filters are the only wall" in cli.run("db", "check").stdout
    refused = cli.run("db", "grant", "someone", check=False)
    assert refused.returncode != 0 and "SQLite has no roles" in refused.stderr


async def test_admins_create_prints_a_setup_token_that_sets_the_password(cli: Cli, api):
    merchant = cli.create_merchant("Shop")
    out = cli.run("admins", "create", merchant["id"], "Owner@Shop.example", "--role", "OWNER").stdout
    token = re.search(r"setup token:\s+(setup_\S+)", out).group(1)
    assert "owner@shop.example (OWNER" in out and "completeAdminSetup" in out
    assert "owner@shop.example  OWNER     INVITED   no second factor" in cli.run("admins", "list", merchant["id"]).stdout

    async def gql(query: str, variables: dict, key: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = await api.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        return response.json()["data"]

    done = await gql(
        "mutation($t: String!, $p: String!) { completeAdminSetup(token: $t, password: $p) { admin { status } } }",
        {"t": token, "p": "a sentence nobody has used 77"},
    )
    assert done["completeAdminSetup"]["admin"]["status"] == "ACTIVE"
    login = await gql(
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        {"e": "owner@shop.example", "p": "a sentence nobody has used 77"},
    )
    me = await gql("{ me { email role } }", {}, key=login["login"]["token"])
    assert me["me"] == {"email": "owner@shop.example", "role": "OWNER"}

    reset = cli.run("admins", "reset-setup", merchant["id"], "owner@shop.example").stdout
    assert re.search(r"setup token:\s+setup_\S+", reset)
    assert "second factor removed" in cli.run("admins", "reset-totp", merchant["id"], "owner@shop.example").stdout
    unknown = cli.run("admins", "create", str(__import__("uuid").uuid4()), "x@shop.example", check=False)
    assert unknown.returncode != 0 and "NOT_FOUND" in unknown.stderr


def test_secrets_reencrypt_and_payout_runs_by_hand(cli: Cli):
    assert "every stored secret is now under key 's0'" in cli.run("secrets", "reencrypt").stdout
    assert cli.run("payouts", "run-due").stdout == ""
    assert "ledger verify: every transaction balances" in cli.run("ledger", "verify").stdout
