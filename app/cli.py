"""The `referral` command line: serve, migrate, merchants, keys, admins, secrets, payouts, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import get_settings
from app.db import create_engine, create_session_factory
from app.errors import DomainError, NotFound
from app.merchants import service as merchants
from app.merchants.models import ApiKeyKind


async def _in_transaction(work: Callable[[Any], Awaitable[Any]]) -> Any:
    settings = get_settings()
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine, reason=f"cli {' '.join(sys.argv[1:3])}")() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


def _run(work: Callable[[Any], Awaitable[Any]]) -> Any:
    try:
        return asyncio.run(_in_transaction(work))
    except DomainError as error:
        sys.exit(f"error: {error.field or ''} {error.code.value}: {error.message}".replace("  ", " "))


def _on_engine(work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(engine)` on DATABASE_URL's engine, without a session (schema and role work)."""

    async def run() -> Any:
        engine = create_engine(get_settings().database_url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_migrate(args: argparse.Namespace) -> None:
    from app.migrations import upgrade

    _on_engine(lambda engine: upgrade(engine, args.revision))
    print(f"database migrated to {args.revision}")


def cmd_db_grant(args: argparse.Namespace) -> None:
    """As the tables' owner (DATABASE_URL of the migrations): let the API's role use them."""
    from app.migrations import grant_app_role

    if get_settings().is_sqlite:
        sys.exit("error: SQLite has no roles; row-level security is PostgreSQL's")
    _on_engine(lambda engine: grant_app_role(engine, args.role))
    print(f"{args.role} may use the tables; row-level security applies to it")


def cmd_db_check(args: argparse.Namespace) -> None:
    """As the API's role: does row-level security hold for this login?"""
    from app.migrations import row_level_security_gaps

    if get_settings().is_sqlite:
        print("SQLite has no row-level security: the application's merchant filters are the only wall")
        return
    gaps = _on_engine(row_level_security_gaps)
    for gap in gaps:
        print(gap)
    if gaps:
        sys.exit("row-level security does not hold for this login")
    print("row-level security holds for this login")


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from app.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        log_config=None,
        proxy_headers=False,  # client IPs come from TRUSTED_PROXIES handling in the app
        http="app.server:GuardedHttpToolsProtocol",  # header size limit and deadline
        loop="uvloop",
        timeout_keep_alive=settings.keepalive_timeout_seconds,
        limit_concurrency=settings.max_connections,
        server_header=False,
    )


def cmd_merchants_create(args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> Any:
        merchant = await merchants.create_merchant(session, name=args.name)
        secret = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.SECRET, name="cli")
        publishable = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.PUBLISHABLE, name="cli")
        return merchant, secret, publishable

    merchant, secret, publishable = _run(work)
    print(f"merchant id:      {merchant.id}")
    print(f"secret key:       {secret.plaintext}   (shown once)")
    print(f"publishable key:  {publishable.plaintext}")


def cmd_merchants_list(args: argparse.Namespace) -> None:
    for merchant in _run(lambda session: merchants.list_merchants(session)):
        print(f"{merchant.id}  {merchant.name}")


def cmd_merchants_limits(args: argparse.Namespace) -> None:
    from app.ratelimits import DEFAULT_BUDGETS, MERCHANT_BUDGETS

    changes = {
        budget.value: (None if value == "default" else value)
        for budget in MERCHANT_BUDGETS
        if (value := getattr(args, budget.value)) is not None
    }

    async def work(session: AsyncSession) -> Any:
        merchant_id = await _existing_merchant_id(session, args.merchant)
        return await merchants.set_rate_limits(session, merchant_id=merchant_id, changes=changes)

    own = _run(work)
    for budget in MERCHANT_BUDGETS:
        value = own.get(budget.value)
        print(f"{budget.value:<16} {value or DEFAULT_BUDGETS[budget]}{'' if value else '  (default)'}")
    print("API processes pick changes up within a minute.")


def _merchant_id(value: str, what: str = "merchant id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        sys.exit(f"error: {value!r} is not a {what}")


async def _existing_merchant_id(session: Any, value: str) -> uuid.UUID:
    merchant_id = _merchant_id(value)
    if await merchants.get_merchant(session, merchant_id=merchant_id) is None:
        raise NotFound("merchant", "merchant")
    return merchant_id


def cmd_keys_create(args: argparse.Namespace) -> None:
    kind = ApiKeyKind(args.kind)

    async def work(session: AsyncSession) -> Any:
        merchant_id = await _existing_merchant_id(session, args.merchant)  # not an IntegrityError traceback
        return await merchants.create_api_key(session, merchant_id=merchant_id, kind=kind, name=args.name)

    issued = _run(work)
    print(f"{issued.plaintext}   (shown once; id {issued.api_key.id})")


def cmd_keys_list(args: argparse.Namespace) -> None:
    from app.db import utcnow

    now = utcnow()

    async def work(session: AsyncSession) -> Any:
        return await merchants.list_api_keys(session, merchant_id=await _existing_merchant_id(session, args.merchant))

    for key in _run(work):
        state = "active" if key.is_active(now) else "revoked" if key.revoked_at else "expired"
        expiry = f" expires {key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at and state == "active" else ""
        print(f"{key.id}  {key.masked}  {key.kind:<11}  {state}{expiry}  {key.name or ''}")


def cmd_keys_revoke(args: argparse.Namespace) -> None:
    key_id = _merchant_id(args.key_id, "key id")
    _run(lambda s: merchants.revoke_api_key(s, merchant_id=_merchant_id(args.merchant), key_id=key_id))
    print(f"revoked {key_id}")


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    kind = ApiKeyKind(args.kind)
    grace = timedelta(hours=args.grace_hours)
    issued = _run(lambda s: merchants.rotate_api_keys(s, merchant_id=_merchant_id(args.merchant), kind=kind, grace=grace))
    retired = f"in {args.grace_hours} h" if args.grace_hours else "now"
    print(f"new {kind.value} key: {issued.plaintext}   (shown once; old {kind.value} keys stop working {retired})")


def cmd_worker(args: argparse.Namespace) -> None:
    """Production workers: dramatiq processes on BROKER_URL (Redis or RabbitMQ)."""
    settings = get_settings()
    if settings.broker_url.startswith("stub://"):
        sys.exit(
            "error: set BROKER_URL to redis://... or amqp://...; with the in-process broker, `referral serve` runs the worker"
        )
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "app.worker.entry",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
    ]
    os.execvp(command[0], command)


def cmd_rewards_release_due(args: argparse.Namespace) -> None:
    from app.rewards import lifecycle

    released = _run(lambda s: lifecycle.release_due_rewards(s, limit=args.limit))
    print(f"released {released} held rewards")


def cmd_rewards_expire_due(args: argparse.Namespace) -> None:
    from app.rewards import lifecycle

    expired = _run(lambda s: lifecycle.expire_due_rewards(s, limit=args.limit))
    print(f"expired {expired} rewards")


def cmd_ledger_verify(args: argparse.Namespace) -> None:
    from app.payouts import reconcile

    problems = _run(lambda s: reconcile.verify(s))
    for problem in problems:
        print(f"{problem.what}: {problem.detail}")
    if problems:
        sys.exit(f"ledger verify: {len(problems)} problem(s)")
    print(
        "ledger verify: every transaction balances, every cached balance and lot matches its entries, "
        "and payouts in flight hold exactly what is set aside for them"
    )


# --- merchant admins, secrets, payouts -------------------------------------------------------


def cmd_admins_create(args: argparse.Namespace) -> None:
    from app.merchants import admins, audit
    from app.merchants.models import AdminRole

    async def work(session: AsyncSession) -> Any:
        merchant_id = await _existing_merchant_id(session, args.merchant)
        return await admins.create_admin(
            session, merchant_id=merchant_id, email=args.email, role=AdminRole(args.role), actor=audit.SYSTEM
        )

    _print_setup(_run(work), "created")


def _print_setup(issued: Any, what: str) -> None:
    settings = get_settings()
    print(f"admin {what}: {issued.admin.email} ({issued.admin.role.value}, id {issued.admin.id})")
    print(f"setup token:  {issued.token}   (shown once; valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC)")
    print("set the password with it, at the GraphQL API:")
    print(
        f'  {settings.base_url}/graphql  mutation {{ completeAdminSetup(token: "{issued.token}", password: "...") '
        "{ admin { id status } userErrors { field code message } } }"
    )


def cmd_admins_list(args: argparse.Namespace) -> None:
    from app.merchants import admins

    async def work(session: AsyncSession) -> Any:
        return await admins.list_admins(session, merchant_id=await _existing_merchant_id(session, args.merchant))

    for admin in _run(work):
        factor = "totp" if admin.totp_enabled_at else "no second factor"
        print(f"{admin.id}  {admin.email}  {admin.role.value:<8}  {admin.status.value:<8}  {factor}")


def cmd_admins_reset_setup(args: argparse.Namespace) -> None:
    from app.merchants import admins, audit

    async def work(session: AsyncSession) -> Any:
        admin = await admins.find_by_email(
            session, merchant_id=await _existing_merchant_id(session, args.merchant), email=args.email
        )
        return await admins.reissue_setup(session, merchant_id=admin.merchant_id, admin_id=admin.id, actor=audit.SYSTEM)

    _print_setup(_run(work), "can set a new password")


def cmd_admins_reset_totp(args: argparse.Namespace) -> None:
    from app.merchants import admins, totp

    async def work(session: AsyncSession) -> Any:
        admin = await admins.find_by_email(
            session, merchant_id=await _existing_merchant_id(session, args.merchant), email=args.email
        )
        return await totp.operator_reset(session, merchant_id=admin.merchant_id, admin_id=admin.id)

    admin = _run(work)
    print(
        f"second factor removed for {admin.email}: they enroll again before any money action "
        "(announced with admin.totp_changed and audited)"
    )


def cmd_secrets_reencrypt(args: argparse.Namespace) -> None:
    from app.reencrypt import reencrypt_all

    async def work() -> dict[str, int]:
        settings = get_settings()
        engine = create_engine(settings.database_url)
        try:
            return await reencrypt_all(create_session_factory(engine), settings)
        finally:
            await engine.dispose()

    from app import crypto

    counts = asyncio.run(work())
    for column, count in counts.items():
        print(f"{column}: {count} rewritten")
    print(f"every stored secret is now under key {crypto.keyring(get_settings()).primary_id!r}")


def cmd_payouts_run_due(args: argparse.Namespace) -> None:
    """What the worker's scheduler does every 15 minutes, by hand (and the chunks at once)."""
    from app.payouts import runs

    async def work(session: AsyncSession) -> Any:
        started = await runs.start_due_runs(session)
        for run in started:
            after = await runs.run_chunk(session, run_id=run.id, after=None)
            while after is not None:
                after = await runs.run_chunk(session, run_id=run.id, after=after)
        return started

    for run in _run(work):
        print(
            f"run {run.id}: program {run.program_id}, period {run.period}: {run.payouts_created} payouts, "
            f"{run.customers_without_account} customers without a payout account"
        )


def cmd_privacy_reencrypt(args: argparse.Namespace) -> None:
    from app.personal import reencrypt

    counts = _on_engine(lambda engine: reencrypt(create_session_factory(engine, reason="cli privacy reencrypt")))
    for column, count in counts.items():
        print(f"{column}: {count} rewritten")
    print(f"privacy reencrypt: {sum(counts.values())} value(s) now under the first ENCRYPTION_KEYS key")


def cmd_privacy_retention(args: argparse.Namespace) -> None:
    from app.privacy import retention

    results = _on_engine(
        lambda engine: _apply_retention(create_session_factory(engine, reason="cli privacy retention"), retention)
    )
    for merchant_id, applied in results.items():
        changed = ", ".join(f"{name} {count}" for name, count in applied.changed.items() if count) or "nothing new"
        print(f"{merchant_id}: coarsened through {applied.cutoff:%Y-%m-%d %H:%M} UTC: {changed}")


async def _apply_retention(factory: Any, retention: Any) -> dict[uuid.UUID, Any]:
    async with factory() as session:
        return await retention.apply_all(session)


def cmd_analytics_backfill(args: argparse.Namespace) -> None:
    """Rebuild the daily rollups from the raw rows: one transaction per merchant."""
    from app.analytics import rollup

    async def backfill(engine: AsyncEngine) -> list[tuple[uuid.UUID, int]]:
        factory = create_session_factory(engine, reason="cli analytics backfill")
        async with factory() as session:
            ids = [await _existing_merchant_id(session, args.merchant)] if args.merchant else await rollup.merchant_ids(session)
        done = []
        for merchant_id in ids:
            async with factory() as session:
                done.append((merchant_id, await rollup.rebuild(session, merchant_id=merchant_id)))
                await session.commit()
        return done

    try:
        for merchant_id, days in _on_engine(backfill):
            print(f"{merchant_id}: {days} day(s) recounted")
    except DomainError as error:
        sys.exit(f"error: {error.message}")


def cmd_demo(args: argparse.Namespace) -> None:
    """Create the demo merchant and shop once (app.demo.setup) and print how to use them.
    Development only: the plaintext keys are kept in a local, git-ignored file."""
    from app.demo import setup

    settings = get_settings()
    if settings.is_production:
        sys.exit("error: the demo merchant is for development only")
    keys = _run(lambda session: setup.ensure_demo(session, settings=settings, keys=setup.read_keys()))
    setup.write_keys(keys)
    url = f"http://{settings.host}:{settings.port}/graphql"
    print(
        "\n"
        f"  Demo merchant:    Demo Shop ({keys['merchant_id']})\n"
        f"  Secret key:       {keys['secret_key']}\n"
        f"  Publishable key:  {keys['publishable_key']}\n"
        f"  Widget secret:    {keys['widget_secret']}   (signs customer ids for the share panel)\n"
        f"  GraphQL:          {url}  (GraphiQL: open it in a browser; add the header\n"
        f'                    {{"Authorization": "Bearer {keys["secret_key"]}"}})\n'
        f"  Demo shop:        http://localhost:{settings.port}/demo/\n"
        f"  Referral link:    {keys['referral_link']}\n"
        f"                    (Jane's link: open it, sign up, buy, then sign in as Jane to see her referral and reward)\n"
    )


MERCHANT_ID_HELP = "the merchant's id (a UUID, from `referral merchants list`)"


def _command(
    group: Any, name: str, help: str, func: Callable[[argparse.Namespace], None] | None = None
) -> argparse.ArgumentParser:
    """A sub-command whose one-line help shows in its group's listing and as its own description."""
    parser: argparse.ArgumentParser = group.add_parser(name, help=help, description=help)
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def _group(commands: Any, name: str, help: str) -> Any:
    """A command with sub-commands (`referral keys ...`)."""
    return _command(commands, name, help).add_subparsers(dest="action", required=True, metavar="ACTION")


def build_parser() -> argparse.ArgumentParser:
    """Every command and option has a help line, and every option with a default says it
    (tests/test_cli_help.py walks the parser to keep it so)."""
    parser = argparse.ArgumentParser(prog="referral", description="Referral program backend.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _command(commands, "serve", "run the API server (uvicorn)", cmd_serve)
    serve.add_argument("--host", help="address to listen on (default: HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT, else 8000)")
    serve.add_argument("--workers", type=int, default=1, help="API processes (default: %(default)s)")

    worker = _command(commands, "worker", "run background workers (dramatiq) on BROKER_URL", cmd_worker)
    worker.add_argument("--processes", type=int, default=2, help="worker processes (default: %(default)s)")
    worker.add_argument("--threads", type=int, default=4, help="threads per worker process (default: %(default)s)")

    migrate = _command(commands, "migrate", "apply database migrations (DATABASE_URL)", cmd_migrate)
    migrate.add_argument("revision", nargs="?", default="head", help="alembic revision to migrate to (default: %(default)s)")

    db_commands = _group(commands, "db", "database roles (PostgreSQL)")
    grant = _command(db_commands, "grant", "as the tables' owner: let ROLE (the API's login) use the tables", cmd_db_grant)
    grant.add_argument("role", help="the PostgreSQL role the API logs in as")
    _command(db_commands, "check", "as the API's login: is row-level security enforced for it?", cmd_db_check)

    _command(commands, "demo", "create the demo merchant (once) and print its keys (development only)", cmd_demo)

    merchant_commands = _group(commands, "merchants", "manage merchants")
    create = _command(merchant_commands, "create", "create a merchant with a secret and a publishable key", cmd_merchants_create)
    create.add_argument("name", help="the merchant's name, as shown to its admins")
    _command(merchant_commands, "list", "list every merchant: id and name", cmd_merchants_list)
    limits = _command(
        merchant_commands,
        "limits",
        "show or set one merchant's request budgets (e.g. 6000/minute; 'default' resets one)",
        cmd_merchants_limits,
    )
    limits.add_argument("merchant", help=MERCHANT_ID_HELP)
    budgets = {
        "secret_key": "requests with one secret key",
        "secret_ip": "requests with a secret key, per client IP",
        "publishable_key": "requests with one publishable key",
        "publishable_ip": "requests with a publishable key, per visitor IP",
    }
    for budget, counts in budgets.items():
        limits.add_argument(
            f"--{budget.replace('_', '-')}",
            dest=budget,
            metavar="LIMIT",
            help=f"{counts}, e.g. 6000/minute; 'default' resets it (default: unchanged)",
        )

    key_commands = _group(commands, "keys", "manage API keys")
    key_create = _command(key_commands, "create", "issue an API key (printed once)", cmd_keys_create)
    key_create.add_argument("merchant", help=MERCHANT_ID_HELP)
    key_create.add_argument("--kind", choices=["secret", "publishable"], default="secret", help="key kind (default: %(default)s)")
    key_create.add_argument("--name", help="a label shown in `keys list` (default: none)")
    key_list = _command(key_commands, "list", "list a merchant's keys, masked, with their state", cmd_keys_list)
    key_list.add_argument("merchant", help=MERCHANT_ID_HELP)
    key_revoke = _command(key_commands, "revoke", "revoke one key at once", cmd_keys_revoke)
    key_revoke.add_argument("merchant", help=MERCHANT_ID_HELP)
    key_revoke.add_argument("key_id", help="the key's id (from `keys list`)")
    key_rotate = _command(key_commands, "rotate", "issue a new key and retire the old ones of that kind", cmd_keys_rotate)
    key_rotate.add_argument("merchant", help=MERCHANT_ID_HELP)
    key_rotate.add_argument("--kind", choices=["secret", "publishable"], default="secret", help="key kind (default: %(default)s)")
    key_rotate.add_argument(
        "--grace-hours", type=int, default=0, help="keep old keys working this long (default: %(default)s, they stop now)"
    )

    reward_commands = _group(commands, "rewards", "scheduled reward work, by hand")
    release = _command(
        reward_commands, "release-due", "make HELD rewards whose hold has passed AVAILABLE", cmd_rewards_release_due
    )
    release.add_argument("--limit", type=int, default=500, help="at most this many rewards (default: %(default)s)")
    expire = _command(
        reward_commands, "expire-due", "expire unspent credit, points and coupons past their date", cmd_rewards_expire_due
    )
    expire.add_argument("--limit", type=int, default=500, help="at most this many rewards (default: %(default)s)")

    ledger_commands = _group(commands, "ledger", "the rewards ledger")
    _command(ledger_commands, "verify", "check balances against entries and payouts in flight", cmd_ledger_verify)

    admin_commands = _group(commands, "admins", "merchant admins")
    admin_create = _command(admin_commands, "create", "create an admin; prints a one-time setup token", cmd_admins_create)
    admin_create.add_argument("merchant", help=MERCHANT_ID_HELP)
    admin_create.add_argument("email", help="the admin's email address (their login)")
    admin_create.add_argument(
        "--role",
        choices=["OWNER", "ADMIN", "REVIEWER", "FINANCE"],
        default="OWNER",
        help="what the admin may do (default: %(default)s)",
    )
    admin_list = _command(admin_commands, "list", "list a merchant's admins, roles and second factors", cmd_admins_list)
    admin_list.add_argument("merchant", help=MERCHANT_ID_HELP)
    admin_setup = _command(admin_commands, "reset-setup", "a new setup token (a forgotten password)", cmd_admins_reset_setup)
    admin_setup.add_argument("merchant", help=MERCHANT_ID_HELP)
    admin_setup.add_argument("email", help="the admin's email address")
    admin_totp = _command(
        admin_commands, "reset-totp", "remove an admin's second factor (lost phone and recovery codes)", cmd_admins_reset_totp
    )
    admin_totp.add_argument("merchant", help=MERCHANT_ID_HELP)
    admin_totp.add_argument("email", help="the admin's email address")

    secret_commands = _group(commands, "secrets", "secrets at rest")
    _command(secret_commands, "reencrypt", "rewrite stored secrets under the first ENCRYPTION_KEYS key", cmd_secrets_reencrypt)

    payout_commands = _group(commands, "payouts", "payouts")
    _command(payout_commands, "run-due", "start the scheduled payout runs that are due, now", cmd_payouts_run_due)

    privacy_commands = _group(commands, "privacy", "personal data at rest")
    _command(
        privacy_commands,
        "reencrypt",
        "rewrite encrypted personal data under the first ENCRYPTION_KEYS key (after a rotation)",
        cmd_privacy_reencrypt,
    )
    _command(
        privacy_commands,
        "retention",
        "coarsen what is older than each merchant's retention period now (the worker does it daily)",
        cmd_privacy_retention,
    )

    analytics_commands = _group(commands, "analytics", "merchant analytics")
    backfill = _command(analytics_commands, "backfill", "rebuild the daily rollups from the raw rows", cmd_analytics_backfill)
    backfill.add_argument("--merchant", help="only this merchant (id) (default: every merchant)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
