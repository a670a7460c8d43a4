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
        sys.exit("error: set BROKER_URL to redis://... or amqp://...; with the in-process broker, `referral serve` runs the worker")
    command = [sys.executable, "-m", "dramatiq", "app.worker.entry", "--processes", str(args.processes), "--threads", str(args.threads)]
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
    print("ledger verify: every transaction balances, every cached balance and lot matches its entries, "
          "and payouts in flight hold exactly what is set aside for them")


# --- merchant admins, secrets, payouts -------------------------------------------------------


def cmd_admins_create(args: argparse.Namespace) -> None:
    from app.merchants import admins, audit
    from app.merchants.models import AdminRole

    async def work(session: AsyncSession) -> Any:
        merchant_id = await _existing_merchant_id(session, args.merchant)
        return await admins.create_admin(session, merchant_id=merchant_id, email=args.email, role=AdminRole(args.role),
                                         actor=audit.SYSTEM)

    _print_setup(_run(work), "created")


def _print_setup(issued: Any, what: str) -> None:
    settings = get_settings()
    print(f"admin {what}: {issued.admin.email} ({issued.admin.role}, id {issued.admin.id})")
    print(f"setup token:  {issued.token}   (shown once; valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC)")
    print("set the password with it, at the GraphQL API:")
    print(f'  {settings.base_url}/graphql  mutation {{ completeAdminSetup(token: "{issued.token}", password: "...") '
          "{ admin { id status } userErrors { field code message } } }")


def cmd_admins_list(args: argparse.Namespace) -> None:
    from app.merchants import admins

    async def work(session: AsyncSession) -> Any:
        return await admins.list_admins(session, merchant_id=await _existing_merchant_id(session, args.merchant))

    for admin in _run(work):
        factor = "totp" if admin.totp_enabled_at else "no second factor"
        print(f"{admin.id}  {admin.email}  {admin.role:<8}  {admin.status:<8}  {factor}")


def cmd_admins_reset_setup(args: argparse.Namespace) -> None:
    from app.merchants import admins, audit

    async def work(session: AsyncSession) -> Any:
        admin = await admins.find_by_email(session, merchant_id=await _existing_merchant_id(session, args.merchant), email=args.email)
        return await admins.reissue_setup(session, merchant_id=admin.merchant_id, admin_id=admin.id, actor=audit.SYSTEM)

    _print_setup(_run(work), "can set a new password")


def cmd_admins_reset_totp(args: argparse.Namespace) -> None:
    from app.merchants import admins, totp

    async def work(session: AsyncSession) -> Any:
        admin = await admins.find_by_email(session, merchant_id=await _existing_merchant_id(session, args.merchant), email=args.email)
        return await totp.operator_reset(session, merchant_id=admin.merchant_id, admin_id=admin.id)

    admin = _run(work)
    print(f"second factor removed for {admin.email}: they enroll again before any money action "
          "(announced with admin.totp_changed and audited)")


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
        print(f"run {run.id}: program {run.program_id}, period {run.period}: {run.payouts_created} payouts, "
              f"{run.customers_without_account} customers without a payout account")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="referral", description="Referral program backend.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API server (uvicorn)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    worker = commands.add_parser("worker", help="run background workers (dramatiq) on BROKER_URL")
    worker.add_argument("--processes", type=int, default=2)
    worker.add_argument("--threads", type=int, default=4)
    worker.set_defaults(func=cmd_worker)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(func=cmd_migrate)

    db_commands = commands.add_parser("db", help="database roles (PostgreSQL)").add_subparsers(dest="action", required=True)
    grant = db_commands.add_parser("grant", help="as the tables' owner: let ROLE (the API's login) use the tables")
    grant.add_argument("role")
    grant.set_defaults(func=cmd_db_grant)
    db_commands.add_parser("check", help="as the API's login: is row-level security enforced for it?").set_defaults(
        func=cmd_db_check
    )

    demo = commands.add_parser("demo", help="create the demo merchant (once) and print its keys")
    demo.set_defaults(func=cmd_demo)

    merchant_commands = commands.add_parser("merchants", help="manage merchants").add_subparsers(dest="action", required=True)
    create = merchant_commands.add_parser("create", help="create a merchant with a secret and a publishable key")
    create.add_argument("name")
    create.set_defaults(func=cmd_merchants_create)
    merchant_commands.add_parser("list").set_defaults(func=cmd_merchants_list)
    limits = merchant_commands.add_parser(
        "limits", help="show or set one merchant's request budgets (e.g. 6000/minute; 'default' resets one)"
    )
    limits.add_argument("merchant", help="merchant id")
    for budget in ("secret_key", "secret_ip", "publishable_key", "publishable_ip"):
        limits.add_argument(f"--{budget.replace('_', '-')}", dest=budget, metavar="LIMIT")
    limits.set_defaults(func=cmd_merchants_limits)

    key_commands = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    key_create = key_commands.add_parser("create")
    key_create.add_argument("merchant", help="merchant id")
    key_create.add_argument("--kind", choices=["secret", "publishable"], default="secret")
    key_create.add_argument("--name")
    key_create.set_defaults(func=cmd_keys_create)
    key_list = key_commands.add_parser("list")
    key_list.add_argument("merchant", help="merchant id")
    key_list.set_defaults(func=cmd_keys_list)
    key_revoke = key_commands.add_parser("revoke")
    key_revoke.add_argument("merchant", help="merchant id")
    key_revoke.add_argument("key_id")
    key_revoke.set_defaults(func=cmd_keys_revoke)
    key_rotate = key_commands.add_parser("rotate", help="issue a new key and retire the old ones of that kind")
    key_rotate.add_argument("merchant", help="merchant id")
    key_rotate.add_argument("--kind", choices=["secret", "publishable"], default="secret")
    key_rotate.add_argument("--grace-hours", type=int, default=0, help="keep old keys working this long")
    key_rotate.set_defaults(func=cmd_keys_rotate)
    reward_commands = commands.add_parser("rewards", help="scheduled reward work, by hand").add_subparsers(dest="action", required=True)
    release = reward_commands.add_parser("release-due", help="make HELD rewards whose hold has passed AVAILABLE")
    release.add_argument("--limit", type=int, default=500)
    release.set_defaults(func=cmd_rewards_release_due)
    expire = reward_commands.add_parser("expire-due", help="expire unspent credit, points and coupons past their date")
    expire.add_argument("--limit", type=int, default=500)
    expire.set_defaults(func=cmd_rewards_expire_due)

    ledger_commands = commands.add_parser("ledger", help="the rewards ledger").add_subparsers(dest="action", required=True)
    ledger_commands.add_parser("verify", help="check balances against entries").set_defaults(func=cmd_ledger_verify)

    admin_commands = commands.add_parser("admins", help="merchant admins").add_subparsers(dest="action", required=True)
    admin_create = admin_commands.add_parser("create", help="create an admin; prints a one-time setup token")
    admin_create.add_argument("merchant", help="merchant id")
    admin_create.add_argument("email")
    admin_create.add_argument("--role", choices=["OWNER", "ADMIN", "REVIEWER", "FINANCE"], default="OWNER")
    admin_create.set_defaults(func=cmd_admins_create)
    admin_list = admin_commands.add_parser("list")
    admin_list.add_argument("merchant", help="merchant id")
    admin_list.set_defaults(func=cmd_admins_list)
    admin_setup = admin_commands.add_parser("reset-setup", help="a new setup token (a forgotten password)")
    admin_setup.add_argument("merchant", help="merchant id")
    admin_setup.add_argument("email")
    admin_setup.set_defaults(func=cmd_admins_reset_setup)
    admin_totp = admin_commands.add_parser("reset-totp", help="remove an admin's second factor (lost phone and recovery codes)")
    admin_totp.add_argument("merchant", help="merchant id")
    admin_totp.add_argument("email")
    admin_totp.set_defaults(func=cmd_admins_reset_totp)

    secret_commands = commands.add_parser("secrets", help="secrets at rest").add_subparsers(dest="action", required=True)
    secret_commands.add_parser("reencrypt", help="rewrite stored secrets under the first ENCRYPTION_KEYS key").set_defaults(
        func=cmd_secrets_reencrypt)

    payout_commands = commands.add_parser("payouts", help="payouts").add_subparsers(dest="action", required=True)
    payout_commands.add_parser("run-due", help="start the scheduled payout runs that are due, now").set_defaults(
        func=cmd_payouts_run_due)

    privacy_commands = commands.add_parser("privacy", help="personal data at rest").add_subparsers(dest="action", required=True)
    privacy_commands.add_parser(
        "reencrypt", help="rewrite encrypted personal data under the first ENCRYPTION_KEYS key (after a rotation)"
    ).set_defaults(func=cmd_privacy_reencrypt)
    privacy_commands.add_parser(
        "retention", help="coarsen what is older than each merchant's retention period now (the worker does it daily)"
    ).set_defaults(func=cmd_privacy_retention)

    analytics_commands = commands.add_parser("analytics", help="merchant analytics").add_subparsers(dest="action", required=True)
    backfill = analytics_commands.add_parser("backfill", help="rebuild the daily rollups from the raw rows")
    backfill.add_argument("--merchant", help="only this merchant (id); every merchant by default")
    backfill.set_defaults(func=cmd_analytics_backfill)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
