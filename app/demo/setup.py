"""The demo merchant: keys, widget secret and allowed origins, a running program with reward
rules and widget texts in English, Arabic and Persian, and a referrer (Jane) with her code.

Idempotent: `referral demo` runs it at every `make run`; what exists is kept (the keys), what
depends on the address (origins, share link) follows the current HOST and PORT. The plaintext
keys live in a git-ignored local file, so later starts can show them again.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.fraud import policy
from app.merchants import audit
from app.merchants import service as merchants
from app.merchants.models import ApiKeyKind
from app.referrals import codes, customers, programs
from app.referrals.models import ProgramStatus
from app.rewards import rules
from app.rewards.models import Recipient, RewardKind
from app.widget import service as widget

KEYS_FILE = Path(".referral-demo-keys")
REFERRER = "jane"

TEXTS = [
    widget.WidgetText(
        "en",
        "Give $10, get 10% off",
        "Your friends get 10% off their first order. You get $10 store credit when they buy.",
        "Here is 10% off your first order at the Demo Shop:",
    ),
    widget.WidgetText(
        "ar",
        "امنح 10 دولارات واحصل على خصم 10٪",
        "يحصل أصدقاؤك على خصم 10٪ على طلبهم الأول، وتحصل أنت على رصيد متجر بقيمة 10 دولارات عند شرائهم.",
        "إليك خصم 10٪ على طلبك الأول من متجر العرض:",
    ),
    widget.WidgetText(
        "fa",
        "۱۰ دلار بدهید، ۱۰٪ تخفیف بگیرید",
        "دوستانتان در اولین خرید ۱۰٪ تخفیف می‌گیرند و شما پس از خرید آن‌ها ۱۰ دلار اعتبار فروشگاه.",
        "این ۱۰٪ تخفیف برای اولین خرید شما از فروشگاه نمایشی:",
    ),
]
COLORS = widget.WidgetColors(primary="#0b6e4f", background="#ffffff", text="#1f2328")

# Everyone here is one browser on 127.0.0.1: device and network evidence would send every
# demo referral to review. A real shop keeps these signals on.
SAME_MACHINE_SIGNALS = ("same_device", "same_fingerprint", "same_ip_user_agent", "shared_ip", "device_reuse", "ip_burst")


def shop_origins(settings: Settings) -> list[str]:
    """The demo shop is served on the API's port under the other loopback name, so the widget
    calls the API across origins (CORS), exactly as from a real shop."""
    return [f"http://localhost:{settings.port}", f"http://127.0.0.1:{settings.port}"]


def read_keys() -> dict[str, Any] | None:
    try:
        return json.loads(KEYS_FILE.read_text())
    except (OSError, ValueError):
        return None


def write_keys(keys: dict[str, Any]) -> None:
    KEYS_FILE.write_text(json.dumps(keys))
    os.chmod(KEYS_FILE, 0o600)


async def ensure_demo(session: AsyncSession, *, settings: Settings, keys: dict[str, Any] | None) -> dict[str, Any]:
    """The demo's keys and ids, creating what is missing."""
    if keys is None or await merchants.get_merchant(session, merchant_id=uuid.UUID(keys["merchant_id"])) is None:
        merchant = await merchants.create_merchant(session, name="Demo Shop")
        secret = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.SECRET, name="demo")
        publishable = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.PUBLISHABLE, name="demo")
        keys = {"merchant_id": str(merchant.id), "secret_key": secret.plaintext, "publishable_key": publishable.plaintext}
    merchant_id = uuid.UUID(keys["merchant_id"])
    if "widget_secret" not in keys:
        rotated = await widget.rotate_secret(
            session, merchant_id=merchant_id, app_settings=settings, overlap_hours=0, actor=audit.SYSTEM
        )
        keys["widget_secret"] = rotated.secret
    await widget.set_allowed_origins(
        session, merchant_id=merchant_id, origins_given=shop_origins(settings), production=False, actor=audit.SYSTEM
    )
    share_template = f"http://localhost:{settings.port}/demo/?ref={{code}}"
    if "program_id" not in keys:
        program = await programs.create_program(
            session,
            merchant_id=merchant_id,
            changes=programs.ProgramChanges(
                name="Give $10, get 10% off",
                status=ProgramStatus.ACTIVE,
                share_url_template=share_template,
            ),
        )
        await rules.create_rule(
            session,
            merchant_id=merchant_id,
            program_id=program.id,
            definition=rules.RuleDefinition(
                name="$10 credit for the referrer",
                trigger="PURCHASE",
                recipient=Recipient.REFERRER,
                kind=RewardKind.CREDIT,
                spec=rules.RuleSpec(amount=1000, currency="USD"),
            ),
        )
        await rules.create_rule(
            session,
            merchant_id=merchant_id,
            program_id=program.id,
            definition=rules.RuleDefinition(
                name="10% off for the friend",
                trigger="SIGNUP",
                recipient=Recipient.REFEREE,
                kind=RewardKind.DISCOUNT,
                spec=rules.RuleSpec(percent_bps=1000),
            ),
        )
        await policy.set_policy(
            session,
            merchant_id=merchant_id,
            program_id=program.id,
            actor=audit.SYSTEM,
            change=policy.PolicyChange(
                signals=tuple(policy.SignalChange(signal=name, enabled=False) for name in SAME_MACHINE_SIGNALS),
                # the demo pays once the signup's check allows it, so whoever tries
                # the widget sees the reward at once; a real program waits for
                # clearance (3 quiet days by default, README "Fraud checks")
                clearance_evidence=policy.ClearanceEvidence.SIGNUP,
            ),
        )
        await widget.set_program_widget(session, merchant_id=merchant_id, program_id=program.id, texts=TEXTS, colors=COLORS)
        await customers.upsert_customer(
            session,
            merchant_id=merchant_id,
            external_id=REFERRER,
            details=customers.CustomerDetails(email="jane@demo.example", name="Jane Doe"),
        )
        keys["program_id"] = str(program.id)
    else:
        await programs.update_program(
            session,
            merchant_id=merchant_id,
            program_id=uuid.UUID(keys["program_id"]),
            changes=programs.ProgramChanges(share_url_template=share_template),
        )
    code = await codes.issue_referral_code(
        session, merchant_id=merchant_id, program_id=uuid.UUID(keys["program_id"]), customer_external_id=REFERRER
    )
    keys["referrer_code"] = code.code
    keys["referral_link"] = share_template.replace("{code}", code.code)
    return keys
