"""What the inline fraud checks add to `record_action` on a merchant with many customers.

    .venv/bin/python bench/fraud_checks.py [--customers 100000] [--actions 300] [--database postgresql|sqlite]
        [--sqlite-analyze] [--explain-out plans.txt] [--keep]

A fresh database (migrated by alembic, dropped at the end) is seeded with one merchant, one
active program with a $10 referrer credit on PURCHASE, and `--customers` existing customers
with a history: emails, a signup action, devices, home IPs and shared mobile-carrier IPs
(thousands of customers each), IP + user agent, payment fingerprints, addresses; referrals
among them (40 % of customers are referees, a few referrers have hundreds), their purchases
and rewards; fraud decisions, reviews and list entries (IP ranges included). The seed uses
bulk INSERTs: it sets the scale, it is not what is measured.

Then, in-process through the service, one committed transaction per call as the API does:
(a) a new referee's SIGNUP with a heavy referrer's code and full context, (b) that
referee's PURCHASE with card and address (the reward-time check, then a grant). Each is run
WITH the fraud engine and WITHOUT it, alternating referee by referee so both see the same data
and cache. WITHOUT patches, in this process only, `app.fraud.engine.screen_new_referral`
and `screen_grants` to return ALLOW at once and `app.fraud.identifiers.record_sightings` /
`record_click` to do nothing. SQL statements per call are counted with an engine event
listener; the fraud engine's lookups are captured and EXPLAINed (ANALYZE, BUFFERS on
PostgreSQL, QUERY PLAN on SQLite); `--explain-out FILE` keeps the full plans.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import event, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.actions import service as actions  # noqa: E402
from app.db import create_engine, create_session_factory, new_id, utcnow  # noqa: E402
from app.fraud import engine as fraud_engine  # noqa: E402
from app.fraud import identifiers, policy, signals  # noqa: E402
from app.fraud.case import Case  # noqa: E402
from app.fraud.models import (  # noqa: E402
    CustomerIdentifier,
    FraudDecision,
    FraudListEntry,
    FraudReview,
    ListKind,
    Outcome,
)
from app.merchants import service as merchants  # noqa: E402
from app.migrations import upgrade  # noqa: E402
from app.personal import lookup_hash  # noqa: E402
from app.referrals import programs  # noqa: E402
from app.referrals.emails import canonical_email  # noqa: E402
from app.referrals.models import Action, CodeStyle, Customer, ProgramStatus, Referral, ReferralCode  # noqa: E402
from app.rewards import rules  # noqa: E402
from app.rewards.models import Recipient, Reward, RewardKind  # noqa: E402
from app.rewards.rules import RuleDefinition, RuleSpec  # noqa: E402
from app.text import code_key  # noqa: E402

FIRST = [
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "chris",
    "nancy",
    "daniel",
    "lisa",
    "matthew",
    "betty",
    "anthony",
    "margaret",
    "mark",
    "sandra",
    "donald",
    "ashley",
    "steven",
    "kim",
    "paul",
    "emily",
    "andrew",
    "donna",
    "joshua",
    "michelle",
    "kenneth",
    "carol",
    "kevin",
    "amanda",
    "brian",
    "melissa",
    "george",
    "deborah",
    "timothy",
    "stephanie",
    "ronald",
    "rebecca",
    "jason",
    "laura",
    "edward",
    "sharon",
    "jeffrey",
    "cynthia",
    "ryan",
    "amy",
    "jacob",
    "kathleen",
]
LAST = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "torres",
    "nguyen",
    "hill",
    "flores",
    "green",
    "adams",
    "nelson",
    "baker",
    "hall",
    "rivera",
    "campbell",
    "mitchell",
    "carter",
    "roberts",
    "gomez",
    "phillips",
    "evans",
    "turner",
    "diaz",
    "parker",
    "cruz",
    "edwards",
    "collins",
]
MAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "proton.me", "aol.com", "gmx.de")
USER_AGENTS = tuple(
    f"Mozilla/5.0 ({os_}) AppleWebKit/537.36 (KHTML, like Gecko) {browser}"
    for os_ in (
        "Windows NT 10.0; Win64; x64",
        "Macintosh; Intel Mac OS X 14_5",
        "iPhone; CPU iPhone OS 17_5 like Mac OS X",
        "Linux; Android 14; Pixel 8",
        "X11; Linux x86_64",
        "Linux; Android 13; SM-S911B",
    )
    for browser in ("Chrome/126.0 Safari/537.36", "Version/17.5 Mobile Safari/604.1", "Firefox/127.0", "Edg/126.0")
)
STREETS = ("Main St", "Oak Avenue", "Pine Road", "Maple Drive", "Cedar Lane", "Elm Street", "Lake Blvd", "Hill Court")
CARRIER_IPS = tuple(f"100.64.{k}.{k * 7 % 250 + 1}" for k in range(10))  # CGNAT: thousands of customers each
CARRIER_SHARE = 0.35  # of customers seen on one of them
HEAVY_REFERRERS = 20  # referrers with hundreds of referees; the measured referrals use their codes
BATCH = 5000


def hashed(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]


def home_ip(rng: random.Random) -> str:
    return f"{rng.choice((24, 67, 73, 76, 98, 174))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


@dataclass
class World:
    merchant_id: uuid.UUID
    program_id: uuid.UUID
    heavy_codes: list[str]  # codes of the heavy referrers
    customers: int
    referrals: int
    rows: dict[str, int] = field(default_factory=dict)


async def seed(factory, engine, *, customers: int, rng: random.Random, history_end: datetime) -> World:
    async with factory() as session:
        merchant = await merchants.create_merchant(session, name="Bench")
        program = await programs.create_program(
            session,
            merchant_id=merchant.id,
            changes=programs.ProgramChanges(name="Bench", status=ProgramStatus.ACTIVE, code_style=CodeStyle.RANDOM),
        )
        rule = await rules.create_rule(
            session,
            merchant_id=merchant.id,
            program_id=program.id,
            definition=RuleDefinition(
                "Give $10",
                "PURCHASE",
                Recipient.REFERRER,
                RewardKind.CREDIT,
                RuleSpec(amount=1000, currency="USD"),
            ),
        )
        await session.commit()
        merchant_id, program_id, rule_id, rule_version_id = merchant.id, program.id, rule.rule_id, rule.id

    history_start = history_end - timedelta(days=730)
    span = (history_end - history_start).total_seconds()
    # Customer i signed up at created[i]: ids in time order, so "referrer before referee" is i < j.
    created = sorted(history_start + timedelta(seconds=rng.random() * span) for _ in range(customers))
    ids = [new_id() for _ in range(customers)]
    tables: dict[str, list[dict]] = defaultdict(list)
    emails = []

    for i in range(customers):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        number = "" if rng.random() < 0.4 else str(rng.randrange(1, 1000))
        email = f"{first}{rng.choice(('.', '', '_'))}{last}{number}@{rng.choice(MAIL_DOMAINS)}"
        emails.append(canonical_email(email))
        tables["customers"].append(
            {
                "id": ids[i],
                "merchant_id": merchant_id,
                "external_id": f"cust-{i:07d}",
                "email": email,
                "email_canonical": emails[i],
                "name": f"{first.title()} {last.title()}",
                "metadata": None,
                "created_at": created[i],
                "updated_at": created[i],
            }
        )

    # Identifiers: 1-2 devices, 1-2 home IPs (some shared by a household), a carrier IP for
    # 35 %, an IP + user agent per IP, cards for 60 %, an address for 55 %.
    household_ips, household_addresses, shared_devices = [], [], []
    signup_context = []
    for i in range(customers):
        seen_until = created[i] + (history_end - created[i]) * rng.random()
        found: dict[tuple[str, str], None] = {}
        devices = [f"dev-{hashed('d', i, k)}" for k in range(rng.choice((1, 1, 1, 2)))]
        if shared_devices and rng.random() < 0.01:
            devices.append(rng.choice(shared_devices))  # a family tablet
        elif rng.random() < 0.005:
            shared_devices.append(devices[0])
        ips = [
            rng.choice(household_ips) if household_ips and rng.random() < 0.05 else home_ip(rng)
            for _ in range(rng.choice((1, 1, 2)))
        ]
        household_ips.extend(ips[:1] if rng.random() < 0.02 else [])
        if rng.random() < CARRIER_SHARE:
            ips.append(rng.choice(CARRIER_IPS))
        user_agent = rng.choice(USER_AGENTS)
        for device in devices:
            found[("DEVICE", device)] = None
        for ip in ips:
            found[("IP", ip)] = None
            found[("IP_UA", identifiers.ip_with_user_agent(ip, user_agent))] = None
        if rng.random() < 0.6:
            for k in range(rng.choice((1, 1, 2))):
                found[("PAYMENT", f"fp_{hashed('p', i, k)}")] = None
        if rng.random() < 0.55:
            if household_addresses and rng.random() < 0.04:
                address = rng.choice(household_addresses)
            else:
                address = identifiers.normalized_address(
                    {
                        "line1": f"{rng.randrange(1, 9999)} {rng.choice(STREETS)}",
                        "city": "Springfield",
                        "postalCode": f"{rng.randrange(10000, 99999)}",
                        "country": "US",
                    }
                )
                if rng.random() < 0.02:
                    household_addresses.append(address)
            found[("ADDRESS", address)] = None
        for kind, value in found:
            tables["customer_identifiers"].append(
                {
                    "id": new_id(),
                    "merchant_id": merchant_id,
                    "customer_id": ids[i],
                    "kind": kind,
                    "value": value,
                    "value_hash": lookup_hash(merchant_id, kind, value),
                    "first_seen_at": created[i],
                    "last_seen_at": seen_until,
                }
            )
        signup_context.append((devices[0], ips[0], user_agent))

    # Referrals: 40 % of customers are referees. A fifth of them came through 20 heavy
    # referrers (a few hundred each), 30 % through 300 regulars, the rest through anyone earlier.
    early = range(customers // 200, min(customers // 10, customers // 200 + max(5 * HEAVY_REFERRERS, customers // 100)))
    heavy = rng.sample(early, min(HEAVY_REFERRERS, len(early)))
    regular = rng.sample(range(10, customers // 10), min(300, customers // 10 - 10))
    heavy_weights = [1 / (k + 1) ** 0.5 for k in range(len(heavy))]
    referees = sorted(rng.sample(range(10, customers), int(customers * 0.4)))
    referrer_of: dict[int, int] = {}
    for referee in referees:
        roll = rng.random()
        if roll < 0.2:
            referrer = rng.choices(heavy, heavy_weights)[0]
        elif roll < 0.5:
            referrer = rng.choice(regular)
        else:
            referrer = rng.randrange(0, referee)
        if referrer >= referee:
            referrer = rng.randrange(0, referee)
        referrer_of[referee] = referrer
    # Numbered mailboxes behind two heavy referrers (a pattern the fraud engine looks for).
    for referee in [r for r in referees if referrer_of[r] in heavy[:2]][:60]:
        row = tables["customers"][referee]
        row["email"] = f"deals{rng.randrange(1, 99999)}@mailbox.org"
        row["email_canonical"] = emails[referee] = canonical_email(row["email"])

    code_of: dict[int, tuple[uuid.UUID, str]] = {}
    for referrer in sorted(set(referrer_of.values()) | set(heavy)):
        code_of[referrer] = (new_id(), f"C{referrer:07d}")
        tables["referral_codes"].append(
            {
                "id": code_of[referrer][0],
                "merchant_id": merchant_id,
                "program_id": program_id,
                "customer_id": ids[referrer],
                "code": code_of[referrer][1],
                "lookup_key": code_key(code_of[referrer][1]),
                "is_vanity": False,
                "active": True,
                "created_at": created[referrer],
                "deactivated_at": None,
            }
        )

    referral_ids: dict[int, uuid.UUID] = {}
    for referee, referrer in referrer_of.items():
        roll = rng.random()
        status = "QUALIFIED" if roll < 0.55 else "REJECTED" if roll < 0.57 else "PENDING"
        referral_id = referral_ids[referee] = new_id()
        bought_at = min(created[referee] + timedelta(hours=rng.uniform(1, 240)), history_end)
        qualified_at = bought_at if status == "QUALIFIED" else None
        tables["referrals"].append(
            {
                "id": referral_id,
                "merchant_id": merchant_id,
                "program_id": program_id,
                "referrer_id": ids[referrer],
                "referee_id": ids[referee],
                "code_id": code_of[referrer][0],
                "click_id": None,
                "source": "CODE",
                "status": status,
                "created_at": created[referee],
                "referred_at": created[referee],
                "qualified_at": qualified_at,
            }
        )
        if qualified_at is not None:
            purchase_id = new_id()
            tables["purchases"].append(
                _action(
                    purchase_id,
                    merchant_id,
                    ids[referee],
                    "PURCHASE",
                    f"order-{referee}",
                    qualified_at,
                    signup_context[referee],
                    program_id=program_id,
                    referral_id=referral_id,
                    amount=rng.randrange(1000, 30000),
                    order_id=f"{referee}",
                    status="LINKED_TO_REFERRAL",
                )
            )
            tables["rewards"].append(
                {
                    "id": new_id(),
                    "merchant_id": merchant_id,
                    "program_id": program_id,
                    "rule_id": rule_id,
                    "rule_version_id": rule_version_id,
                    "referral_id": referral_id,
                    "trigger_action_id": purchase_id,
                    "recipient": "REFERRER",
                    "customer_id": ids[referrer],
                    "kind": "CREDIT",
                    "amount": 1000,
                    "unit": "USD",
                    "remaining": 1000,
                    "reversed_amount": 0,
                    "status": "AVAILABLE",
                    "milestone": None,
                    "hold_until": None,
                    "review_hold": False,
                    "expires_at": None,
                    "awaiting_coupon": False,
                    "created_at": qualified_at,
                    "available_at": qualified_at,
                    "ended_at": None,
                    "end_reason": None,
                }
            )
    for i in range(customers):
        referral_id = referral_ids.get(i)
        tables["signups"].append(
            _action(
                new_id(),
                merchant_id,
                ids[i],
                "SIGNUP",
                f"signup-{i}",
                created[i],
                signup_context[i],
                program_id=program_id if referral_id else None,
                referral_id=referral_id,
                status="REFERRAL_CREATED" if referral_id else "NONE",
                code=code_of[referrer_of[i]][1] if referral_id else None,
                email=tables["customers"][i]["email"],
            )
        )

    # Earlier fraud work: a decision for a third of the referrals, reviews for 1 %, lists.
    for referee, referral_id in referral_ids.items():
        if rng.random() < 0.33:
            tables["fraud_decisions"].append(
                {
                    "id": new_id(),
                    "merchant_id": merchant_id,
                    "program_id": program_id,
                    "referral_id": referral_id,
                    "action_id": None,
                    "review_id": None,
                    "stage": "REFERRAL",
                    "outcome": "ALLOW",
                    "policy_outcome": "ALLOW",
                    "score": 0,
                    "policy_version": 0,
                    "observations": [],
                    "adjustments": [],
                    "created_at": created[referee],
                }
            )
        if rng.random() < 0.01:
            status = rng.choice(("OPEN", "APPROVED", "APPROVED", "REJECTED"))
            tables["fraud_reviews"].append(
                {
                    "id": new_id(),
                    "merchant_id": merchant_id,
                    "program_id": program_id,
                    "referral_id": referral_id,
                    "status": status,
                    "score": 60,
                    "signals": ["device_reuse"],
                    "opened_at": created[referee],
                    "resolved_at": None if status == "OPEN" else created[referee] + timedelta(days=1),
                    "resolved_by_key_id": None,
                    "resolution_note": None,
                }
            )
    heavy_set = set(heavy)
    ordinary = [i for i in range(customers) if i not in heavy_set]
    entries = (
        # (not the heavy referrers' mailboxes: every measured referral would be blocked)
        [
            (ListKind.EMAIL, emails[i])
            for i in rng.sample(ordinary, min(300, len(ordinary)))
            if emails[i] not in {emails[h] for h in heavy}
        ]
        + [(ListKind.DOMAIN, f"spam{k}.example") for k in range(40)]
        + [(ListKind.IP, home_ip(rng)) for _ in range(200)]
        + [(ListKind.IP_RANGE, f"185.{rng.randrange(256)}.{rng.randrange(256)}.0/24") for _ in range(50)]
        + [(ListKind.IP_RANGE, f"45.{rng.randrange(256)}.0.0/16") for _ in range(10)]
        + [(ListKind.DEVICE, f"dev-blocked-{k}") for k in range(200)]
        + [(ListKind.PAYMENT, f"fp_blocked_{k}") for k in range(200)]
        + [(ListKind.TRUSTED_CUSTOMER, str(ids[i])) for i in rng.sample(ordinary, min(100, len(ordinary)))]
        + [(ListKind.BANNED_CUSTOMER, str(ids[i])) for i in rng.sample(ordinary, min(30, len(ordinary)))]
    )
    for kind, value in dict.fromkeys(entries):
        tables["fraud_list_entries"].append(
            {
                "id": new_id(),
                "merchant_id": merchant_id,
                "kind": kind.value,
                "value": value,
                "note": "seed",
                "created_by_key_id": None,
                "created_at": history_end,
            }
        )

    targets = [
        ("customers", Customer),
        ("referral_codes", ReferralCode),
        ("referrals", Referral),
        ("signups", Action),
        ("purchases", Action),
        ("rewards", Reward),
        ("customer_identifiers", CustomerIdentifier),
        ("fraud_reviews", FraudReview),
        ("fraud_decisions", FraudDecision),
        ("fraud_list_entries", FraudListEntry),
    ]
    async with engine.begin() as connection:
        for name, model in targets:
            rows = tables[name]
            for start in range(0, len(rows), BATCH):
                await connection.execute(insert(model.__table__), rows[start : start + BATCH])
    world = World(merchant_id, program_id, [code_of[h][1] for h in heavy], customers, len(referral_ids))
    world.rows = {name: len(tables[name]) for name, _ in targets}
    return world


def _action(
    id_,
    merchant_id,
    customer_id,
    type_,
    key,
    at,
    context,
    *,
    program_id=None,
    referral_id=None,
    amount=None,
    order_id=None,
    status="NONE",
    code=None,
    email=None,
) -> dict:
    device, ip, user_agent = context
    return {
        "id": id_,
        "merchant_id": merchant_id,
        "customer_id": customer_id,
        "program_id": program_id,
        "referral_id": referral_id,
        "type": type_,
        "idempotency_key": key,
        "request_hash": "0" * 64,
        "amount": amount,
        "currency": "USD" if amount is not None else None,
        "order_id": order_id,
        "occurred_at": at,
        "created_at": at,
        "attribution_status": status,
        "referral_code": code,
        "click_id": None,
        "device_id": device,
        "ip": ip,
        "user_agent": user_agent,
        "email": email,
        "payment_fingerprint": None,
        "shipping_address": None,
        "metadata": None,
        "refund_order_found": None,
    }


class Meter:
    """SQL statements per call (all, and those run inside the fraud engine), the time spent
    inside the fraud engine, and the engine's statements with the lookup that ran them."""

    def __init__(self, engine) -> None:
        self.statements = 0
        self.fraud_statements = 0
        self.fraud_seconds = 0.0
        self.depth = 0  # > 0 while inside a fraud function
        self.labels: list[str] = []
        self.spent: dict[str, float] = defaultdict(float)  # seconds inside each labelled function
        self.capture: list[tuple[str, str, object]] | None = None  # (label, sql, parameters) when capturing
        event.listen(engine.sync_engine, "before_cursor_execute", self._executed)

    def _executed(self, _conn, _cursor, statement, parameters, _context, _executemany) -> None:
        self.statements += 1
        if self.depth:
            self.fraud_statements += 1
            if self.capture is not None:
                self.capture.append((" > ".join(self.labels) or "engine", statement, parameters))

    def reset(self) -> None:
        self.statements = self.fraud_statements = 0
        self.fraud_seconds = 0.0

    def timed(self, function):
        """`function`, with its time counted as fraud time (the outermost call only)."""

        @functools.wraps(function)
        async def wrapper(*args, **kwargs):
            self.depth += 1
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.depth -= 1
                if not self.depth:
                    self.fraud_seconds += time.perf_counter() - started

        return wrapper

    def labelled(self, label: str, function):
        """`function`, naming the statements it runs and adding up the time spent in it."""

        @functools.wraps(function)
        async def wrapper(*args, **kwargs):
            name = label if not args or not isinstance(args[-1], str) else f"{label}({args[-1]})"
            if kwargs.get("seen_since") is not None:
                name += " seen_since"
            self.labels.append(name)
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter() - started
                self.labels.pop()

        return wrapper


async def _allow(*_args, **_kwargs) -> Outcome:
    return Outcome.ALLOW


async def _nothing(*_args, **_kwargs) -> None:
    return None


class Switch:
    """Turns the fraud engine on (timed originals) and off (the patches in the module doc)."""

    NAMES = (
        (fraud_engine, "screen_new_referral", _allow),
        (fraud_engine, "screen_grants", _allow),
        (identifiers, "record_sightings", _nothing),
        (identifiers, "record_click", _nothing),
    )

    def __init__(self, meter: Meter) -> None:
        self.on = {(module, name): meter.timed(meter.labelled(name, getattr(module, name))) for module, name, _ in self.NAMES}
        self.off = {(module, name): stub for module, name, stub in self.NAMES}
        # Labels for the captured statements and the time breakdown: the engine's steps, the
        # Case lookups and each signal module.
        for name in ("_store", "_adjusted", "_act"):
            setattr(fraud_engine, name, meter.labelled(f"engine.{name}", getattr(fraud_engine, name)))
        signals.observe = meter.labelled("signals.observe", signals.observe)
        for name in ("referee_identifiers", "shared_with_referrer", "other_referees", "list_entries"):
            setattr(Case, name, meter.labelled(f"case.{name}", getattr(Case, name)))
        for module in signals.MODULES:
            module.detect = meter.labelled(module.__name__.rsplit(".", 1)[1], module.detect)
        policy.current_policy = meter.labelled("policy.current_policy", policy.current_policy)

    def set(self, enabled: bool) -> None:
        for (module, name), function in (self.on if enabled else self.off).items():
            setattr(module, name, function)


@dataclass
class Sample:
    seconds: float
    cpu_seconds: float  # of this process (the API's share; the database works in its own)
    statements: int
    fraud_statements: int
    fraud_seconds: float
    carrier_ip: bool
    attribution: str


async def call(factory, meter: Meter, world: World, data: actions.ActionInput, carrier_ip: bool) -> Sample:
    meter.reset()
    started, cpu_started = time.perf_counter(), time.process_time()
    async with factory() as session:
        recorded = await actions.record_action(session, merchant_id=world.merchant_id, data=data)
        await session.commit()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return Sample(
        elapsed,
        cpu,
        meter.statements,
        meter.fraud_statements,
        meter.fraud_seconds,
        carrier_ip,
        recorded.action.attribution_status,
    )


def referee_inputs(i: int, mode: str, world: World, signup_at: datetime, rng: random.Random):
    """The SIGNUP and PURCHASE (5 minutes later) of bench referee `i` of one of the heavy
    referrers: a third come from a carrier IP, the rest from their own."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    carrier = i % 3 == 0
    ip = CARRIER_IPS[(i // 3) % len(CARRIER_IPS)] if carrier else f"203.0.{i % 256}.{i // 256 % 250 + 1}"
    context = dict(
        customer_external_id=f"bench-{mode}-{i}",
        device_id=f"dev-bench-{mode}-{i}",
        ip=ip,
        user_agent=rng.choice(USER_AGENTS),
    )
    signup = actions.ActionInput(
        type="SIGNUP",
        idempotency_key=f"bench-signup-{mode}-{i}",
        occurred_at=signup_at,
        referral_code=world.heavy_codes[i % len(world.heavy_codes)],
        customer_email=f"{first}{last}x{i}@{rng.choice(MAIL_DOMAINS)}",
        customer_name=f"{first.title()} {last.title()}",
        **context,
    )
    purchase = actions.ActionInput(
        type="PURCHASE",
        idempotency_key=f"bench-order-{mode}-{i}",
        occurred_at=signup_at + timedelta(minutes=5),
        order_id=f"bench-{mode}-{i}",
        amount=4_900,
        currency="USD",
        payment_fingerprint=f"fp_bench_{mode}_{i}",
        shipping_address={
            "line1": f"{i} Bench Street",
            "line2": f"Apt {mode}",
            "city": "Portland",
            "postalCode": f"{97000 + i % 999}",
            "country": "US",
        },
        **context,
    )
    return signup, purchase, carrier


async def measure(factory, meter: Meter, switch: Switch, world: World, *, actions: int, warmup: int, start: datetime):
    rng = random.Random(7)
    results: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    inputs = {
        # 20 minutes between referees (10 between the two modes): no hour sees a burst
        (i, mode): referee_inputs(i, mode, world, start + timedelta(minutes=20 * i + 10 * (mode == "with")), rng)
        for i in range(warmup + actions)
        for mode in ("without", "with")
    }
    for i in range(warmup + actions):
        if i == warmup:
            meter.spent.clear()
        for mode in ("with", "without") if i % 2 else ("without", "with"):
            signup, purchase, carrier = inputs[(i, mode)]
            switch.set(mode == "with")
            for step, data in (("signup", signup), ("purchase", purchase)):
                sample = await call(factory, meter, world, data, carrier)
                if i >= warmup:
                    results[(step, mode)].append(sample)
    switch.set(True)
    return results, dict(meter.spent)


async def explain(factory, meter: Meter, world: World, dialect: str, at: datetime, out: list[str]) -> list[tuple]:
    """One more referee from a carrier IP (the largest shared identifier), signup and purchase
    with the engine on; every SELECT the engine ran is then explained."""
    signup, purchase, _ = referee_inputs(0, "explain", world, at, random.Random(11))
    meter.capture = []
    for data in (signup, purchase):
        async with factory() as session:
            meter.labels.append("signup" if data is signup else "purchase")
            try:
                await actions.record_action(session, merchant_id=world.merchant_id, data=data)
            finally:
                meter.labels.pop()
            await session.commit()
    captured, meter.capture = meter.capture, None
    summary = []
    seen = set()
    async with factory() as session:
        connection = await session.connection()
        for label, sql, parameters in captured:
            if not sql.lstrip().upper().startswith("SELECT") or (label, sql) in seen:
                continue
            seen.add((label, sql))
            prefix = "EXPLAIN (ANALYZE, BUFFERS) " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
            rows = (await connection.exec_driver_sql(prefix + sql, parameters)).all()
            plan = [row[0] if dialect == "postgresql" else row[-1] for row in rows]
            out += [f"-- {label}", sql, f"-- parameters: {parameters!r}", *plan, ""]
            key = [line.strip() for line in plan if any(w in line for w in ("Scan", "SEARCH", "SCAN", "Execution Time"))]
            summary.append((label, key))
        await session.rollback()
    return summary


async def fresh_database(kind: str, admin_url: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db", None
    name = f"referral_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}", name


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def report(results: dict[tuple[str, str], list[Sample]]) -> None:
    print()
    print(
        "| call | fraud engine | median | p95 | API process CPU (median) | SQL statements | of them in the engine "
        "| time in the engine (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for step in ("signup", "purchase"):
        for mode in ("without", "with"):
            samples = results[(step, mode)]
            times = [s.seconds for s in samples]
            print(
                f"| {step} | {mode} | {ms(statistics.median(times))} | {ms(statistics.quantiles(times, n=100)[94])} | "
                f"{ms(statistics.median(s.cpu_seconds for s in samples))} | "
                f"{statistics.median(s.statements for s in samples):g} | "
                f"{statistics.median(s.fraud_statements for s in samples):g} | "
                f"{ms(statistics.median(s.fraud_seconds for s in samples))} |"
            )
    print()
    for step in ("signup", "purchase"):
        with_, without = results[(step, "with")], results[(step, "without")]
        added = statistics.median(s.seconds for s in with_) - statistics.median(s.seconds for s in without)
        added_p95 = (
            statistics.quantiles([s.seconds for s in with_], n=100)[94]
            - statistics.quantiles([s.seconds for s in without], n=100)[94]
        )
        added_cpu = statistics.median(s.cpu_seconds for s in with_) - statistics.median(s.cpu_seconds for s in without)
        print(
            f"{step}: the fraud checks add {ms(added)} at the median, {ms(added_p95)} at p95, {ms(added_cpu)} of API CPU "
            f"(statements {statistics.median(s.statements for s in without):g} -> {statistics.median(s.statements for s in with_):g})"
        )
        for carrier in (False, True):
            group = [s for s in with_ if s.carrier_ip == carrier]
            base = [s for s in without if s.carrier_ip == carrier]
            print(
                f"  {'carrier IP' if carrier else 'home IP   '}: with {ms(statistics.median(s.seconds for s in group))}, "
                f"without {ms(statistics.median(s.seconds for s in base))}, "
                f"in the engine {ms(statistics.median(s.fraud_seconds for s in group))} (n={len(group)})"
            )
        print(f"  attribution with the engine: {dict(Counter(s.attribution for s in with_))}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--actions", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--explain-out", help="write the full plans of the engine's lookups to this file")
    parser.add_argument("--sqlite-analyze", action="store_true", help="run ANALYZE after seeding (the app never does)")
    parser.add_argument("--keep", action="store_true", help="keep the database and print its URL")
    args = parser.parse_args()

    url, name = await fresh_database(args.database, args.postgres_admin_url)
    engine = create_engine(url, pool_size=2)
    try:
        await upgrade(engine)
        factory = create_session_factory(engine)
        now = utcnow().replace(microsecond=0)
        started = time.perf_counter()
        calls = args.warmup + args.actions
        bench_start = now - timedelta(minutes=20 * calls + 120)  # 20 minutes per referee, ending an hour ago
        history_end = bench_start - timedelta(days=1)
        world = await seed(factory, engine, customers=args.customers, rng=random.Random(42), history_end=history_end)
        seeded = time.perf_counter() - started
        async with engine.connect() as connection:
            if args.database == "postgresql":  # what autovacuum does after a load like this
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.exec_driver_sql("VACUUM ANALYZE")
            elif args.sqlite_analyze:
                await connection.exec_driver_sql("ANALYZE")
                await connection.commit()
        print(f"{args.database}: seeded {world.customers} customers, {world.referrals} referrals in {seeded:.0f} s: {world.rows}")

        meter = Meter(engine)
        switch = Switch(meter)
        results, spent = await measure(factory, meter, switch, world, actions=args.actions, warmup=args.warmup, start=bench_start)
        report(results)
        print(
            "\nwhere the engine's time goes (per measured referee, signup and purchase together; nested names are part of their parent):"
        )
        for label, seconds in spent.items():
            print(f"  {label:<48} {ms(seconds / args.actions):>10}")
        print(f"load average after measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
        async with factory() as session:
            decisions = (await session.scalars(select(FraudDecision).where(FraudDecision.created_at > now))).all()
        outcomes = Counter(f"{d.stage} {d.outcome}" for d in decisions)
        fired = Counter(f"{d.stage} {o['signal']}" for d in decisions for o in d.observations if o["fired"])
        print(f"decisions made while measuring (warm-up included): {dict(outcomes)}; signals fired: {dict(fired)}")

        plans: list[str] = []
        summary = await explain(factory, meter, world, args.database, now - timedelta(minutes=60), plans)
        print("\nthe engine's lookups (one signup and one purchase from a carrier IP):")
        for label, key in summary:
            print(f"- {label}: " + " | ".join(key))
        if args.explain_out:
            Path(args.explain_out).write_text("\n".join(plans))
            print(f"full plans: {args.explain_out}")
    finally:
        await engine.dispose()
        if args.keep:
            print(f"kept: {url}")
        elif args.database == "sqlite":
            shutil.rmtree(Path(url.split(":///", 1)[1]).parent, ignore_errors=True)
        elif name:
            admin = await asyncpg.connect(args.postgres_admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
