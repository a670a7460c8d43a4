"""Recording the merchant's actions and attributing them to referrals.

`record_action` is the one entry point for the merchant's server. It is idempotent by
`idempotency_key`: the action row is inserted with ON CONFLICT DO NOTHING before anything else
is changed, so of N concurrent identical calls exactly one does the work and the others
return its result. The action is always recorded; what became of the referral evidence it
carried (code or attribution token) is its `attribution_status`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Uuid, bindparam, func, or_, select, true, union_all, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app import config_cache, money, validation
from app.campaigns import counting as campaign_counting
from app.db import (
    any_of,
    attach,
    attribute_columns,
    bound_columns,
    complete_row,
    dialect_of,
    insert_one,
    keep_for_transaction,
    loaded,
    new_id,
    prefixed,
    table_of,
    update_row,
    utcnow,
)
from app.errors import DomainError, ErrorCode
from app.fraud import clearance, identifiers
from app.fraud import engine as fraud_engine
from app.partners import sales as partner_sales
from app.referrals import clicks, codes, customers, notify, programs
from app.referrals import status as referral_status
from app.referrals.models import (
    MAX_CLOCK_SKEW,
    QUALIFYING_TYPES,
    REVERSING_TYPES,
    Action,
    AttributionStatus,
    Click,
    Customer,
    Program,
    ProgramStatus,
    Referral,
    ReferralCode,
    ReferralSource,
    ReferralStatus,
)
from app.rewards import evaluation, lifecycle
from app.rewards import queries as reward_queries
from app.rewards.lifecycle import RefundOutcome
from app.tenancy import get_scoped, scoped
from app.webhooks import events as webhook_events

BUILTIN_ACTION_TYPES = ("SIGNUP", "PURCHASE", "SUBSCRIPTION_STARTED", "REFUND", "CANCELLATION")
_ACTION_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


@dataclass(frozen=True)
class ActionInput:
    type: str
    customer_external_id: str
    idempotency_key: str
    amount: int | None = None
    currency: str | None = None
    occurred_at: datetime | None = None
    order_id: str | None = None
    program_id: uuid.UUID | None = None
    referral_code: str | None = None
    attribution_token: str | None = None
    customer_email: str | None = None
    customer_name: str | None = None
    device_id: str | None = None
    device_fingerprint: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    payment_fingerprint: str | None = None
    shipping_address: dict[str, str | None] | None = None  # a blank part is kept as None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class RecordedAction:
    action: Action
    referral: Referral | None
    replayed: bool  # True when this call was a retry of an earlier one
    rewards: list = field(default_factory=list)  # granted for this action
    refund: RefundOutcome | None = None  # for REFUND / CANCELLATION naming an order


def _validated(data: ActionInput) -> ActionInput:
    action_type = validation.required_text(data.type, "type", 64).upper()
    if not _ACTION_TYPE.match(action_type):
        raise DomainError("type", ErrorCode.INVALID_INPUT, "type is a built-in type or A-Z, 0-9 and _ (max 64)")
    amount, currency = money.amount_with_currency(data.amount, data.currency, "amount", "currency")
    occurred_at = validation.aware(data.occurred_at, "occurredAt")
    if occurred_at is not None:
        occurred_at = occurred_at.astimezone(UTC)
    if occurred_at is not None and occurred_at > utcnow() + MAX_CLOCK_SKEW:
        raise DomainError("occurredAt", ErrorCode.INVALID_INPUT, "occurredAt is in the future")
    address = data.shipping_address
    if address is not None:
        address = {k: validation.text(v, f"shippingAddress.{k}", 200) for k, v in address.items() if v is not None}
    return replace(
        data,
        type=action_type,
        customer_external_id=customers.external_id(data.customer_external_id),
        idempotency_key=validation.required_text(data.idempotency_key, "idempotencyKey", 255, strip=False),
        amount=amount,
        currency=currency,
        occurred_at=occurred_at,
        order_id=validation.text(data.order_id, "orderId", 255),
        # Over-long codes and tokens are only unknown ones: the action is still recorded.
        referral_code=_normalized_code(validation.text(data.referral_code, "referralCode", 255)),
        attribution_token=validation.text(data.attribution_token, "attributionToken", 255),
        customer_email=validation.email(data.customer_email, "context.email"),
        customer_name=validation.text(data.customer_name, "customerName", 200),
        device_id=validation.text(data.device_id, "context.deviceId", 255),
        device_fingerprint=validation.text(data.device_fingerprint, "context.deviceFingerprint", 64),
        ip=validation.text(data.ip, "context.ip", 45),
        user_agent=validation.text(data.user_agent, "context.userAgent", 512),
        payment_fingerprint=validation.text(data.payment_fingerprint, "context.paymentFingerprint", 255),
        shipping_address=address or None,
        metadata=validation.json_object(data.metadata, "metadata"),
    )


def _normalized_code(code: str | None) -> str | None:
    """Codes are case-insensitive, so a retry that types one differently is the same request."""
    return None if code is None else codes.normalize(code) or code


# Input fields added after actions were first stored: left out of the hash while unset, so a
# retry of an action recorded before they existed still matches its first request.
_LATER_FIELDS = ("device_fingerprint",)


def _request_hash(data: ActionInput) -> str:
    fields = asdict(data)
    for name in _LATER_FIELDS:
        if fields[name] is None:
            del fields[name]
    encoded = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


async def record_action(
    session: AsyncSession, *, merchant_id: uuid.UUID, data: ActionInput, config_version: int | None = None
) -> RecordedAction:
    """Record `data` for the merchant. `config_version`: the merchant's configuration version
    read with the API key; recording changes no configuration, so rules, policy and webhook
    endpoints may then come from the process's memory (app.config_cache)."""
    config_cache.trust_version(session, merchant_id, config_version)
    data = _validated(data)
    request_hash = _request_hash(data)
    if data.program_id is not None:
        await programs.require_program(session, merchant_id=merchant_id, program_id=data.program_id)

    # The action row decides whether this call is new (ON CONFLICT DO NOTHING on the key), so a
    # retry costs no extra lookup up front; a new customer gets the action's email and name at once.
    customer_row = customers.new_customer(
        merchant_id=merchant_id, external_id=data.customer_external_id, email=data.customer_email, name=data.customer_name
    )
    now = utcnow()
    values = {
        "id": new_id(),
        "merchant_id": merchant_id,
        "customer_id": customer_row["id"],  # the customer's id if they are new (`_customer_and_action`)
        "program_id": data.program_id,
        "type": data.type,
        "idempotency_key": data.idempotency_key,
        "request_hash": request_hash,
        "amount": data.amount,
        "currency": data.currency,
        "order_id": data.order_id,
        "occurred_at": data.occurred_at or now,
        "created_at": now,
        "attribution_status": AttributionStatus.NONE.value,
        "referral_code": codes.normalize(data.referral_code),
        "device_id": data.device_id,
        "device_fingerprint": data.device_fingerprint,
        "ip": data.ip,
        "user_agent": data.user_agent,
        "email": data.customer_email,
        "payment_fingerprint": data.payment_fingerprint,
        "shipping_address": data.shipping_address,
        "metadata_": data.metadata,
    }
    customer, action = await _customer_and_action(session, customer_row, values)
    if action is None:  # a concurrent call with the same key committed first
        winner = await _action_by_key(session, merchant_id, data.idempotency_key)
        assert winner is not None
        return await _replay(session, winner, request_hash)

    customers.fill_in(customer, email=data.customer_email, name=data.customer_name)
    await identifiers.record_sightings(session, action=action)

    referral, status, click, screened = await _attribute(session, merchant_id, customer, action, data)
    if referral is None:
        referral = await _existing_referral(session, merchant_id, customer.id, data.program_id)
        if referral is not None and status is AttributionStatus.NONE:
            status = AttributionStatus.LINKED_TO_REFERRAL
    attribution: dict[str, Any] = {"attribution_status": status, "click_id": click.id if click is not None else None}
    if referral is not None:
        attribution |= {"referral_id": referral.id, "program_id": referral.program_id}
    changed = {key: value for key, value in attribution.items() if getattr(action, key) != value}
    if changed:
        await update_row(session, action, changed)
    await session.flush()  # what else changed (the customer's details filled in)
    if referral is not None and action.type in QUALIFYING_TYPES:
        await _qualify(session, referral, at=action.occurred_at)
    rewards, refund = [], None
    if action.type in REVERSING_TYPES:
        refund = await lifecycle.apply_refund(session, action)
        action.refund_order_found = refund.order_found if refund is not None else None
        await session.flush()
    elif referral is not None:
        rewards = await _evaluate(session, action, referral, screened=screened)
    # Jobs of the affiliate features, written only where the merchant configured them (cached config).
    await campaign_counting.action_recorded(session, action, referral)
    await partner_sales.enqueue_settlement(session, action)  # affiliate programs only: paid in the worker
    return RecordedAction(action=action, referral=referral, replayed=False, rewards=rewards, refund=refund)


async def _customer_and_action(
    session: AsyncSession, customer_row: dict[str, Any], action_values: dict[str, Any]
) -> tuple[Customer, Action | None]:
    """The customer `customer_row` names (inserted if new) and the action (None if its key was
    used already). PostgreSQL: one statement (`_customer_and_action_statement`) unless a concurrent call
    is creating the same customer; SQLite, or then: the customer's upsert, then the action."""
    if dialect_of(session) == "postgresql":
        action_row = complete_row(session, Action, action_values)
        parameters = prefixed(complete_row(session, Customer, customer_row), "customer_") | prefixed(action_row, "action_")
        row = (await session.execute(_customer_and_action_statement(), parameters)).first()
        if row is not None:
            columns = attribute_columns(Customer)  # first in the row, in this order; then action_id
            customer = loaded(session, Customer, dict(zip(columns, row[: len(columns)], strict=True)))
            if row.action_id is None:
                return customer, None
            return customer, attach(session, Action, action_row | {"customer_id": customer.id})
        # Nobody to name: the customer's INSERT waited for a concurrent one that then
        # committed, and this statement's snapshot, taken before, does not show that row.
    customer = await customers.ensure_customer(
        session,
        merchant_id=customer_row["merchant_id"],
        external_id=customer_row["external_id"],
        email=customer_row["email"],
        name=customer_row["name"],
    )
    action_values = action_values | {"customer_id": customer.id}
    return customer, await insert_one(session, Action, action_values, ignoring_conflicts=_ONE_ACTION_PER_KEY)


_ONE_ACTION_PER_KEY = ("merchant_id", "idempotency_key")


@functools.cache
def _customer_and_action_statement() -> Any:
    """PostgreSQL: the customer's INSERT ... ON CONFLICT DO NOTHING, the customer (inserted now,
    or stored already), and the action's INSERT ... ON CONFLICT DO NOTHING naming them, in one
    statement: the first two round trips of every action made one. One row: the customer's
    columns, by attribute, and `action_id`, NULL when the action's key was used already. No
    row when no customer could be named (see `_customer_and_action`). Parameters: the rows'
    attributes prefixed `customer_` and `action_` (`action_customer_id` unused)."""
    customers_table, actions_table = table_of(Customer), table_of(Action)
    columns = attribute_columns(Customer)
    inserted = (
        postgresql.insert(customers_table)
        .values(bound_columns(Customer, "customer_"))
        .on_conflict_do_nothing(index_elements=list(customers.ONE_CUSTOMER_PER_EXTERNAL_ID))
        .returning(*columns.values())
        .cte("inserted_customer")
    )
    stored = select(*columns.values()).where(
        customers_table.c.merchant_id == bindparam("customer_merchant_id"),
        customers_table.c.external_id == bindparam("customer_external_id"),
    )
    customer = union_all(select(inserted), stored).cte("customer")
    action_values = bound_columns(Action, "action_") | {actions_table.c.customer_id: customer.c.id}
    action = (
        postgresql.insert(actions_table)
        .from_select(list(action_values), select(*action_values.values()).select_from(customer))
        .on_conflict_do_nothing(index_elements=list(_ONE_ACTION_PER_KEY))
        .returning(actions_table.c.id)
        .cte("new_action")
    )
    return select(
        *(customer.c[column.name].label(key) for key, column in columns.items()), action.c.id.label("action_id")
    ).select_from(customer.outerjoin(action, true()))


_SCREENING = {
    fraud_engine.Outcome.ALLOW: evaluation.Screening.GRANT,
    fraud_engine.Outcome.REVIEW: evaluation.Screening.HOLD,
    fraud_engine.Outcome.BLOCK: evaluation.Screening.SKIP,
}


async def _evaluate(
    session: AsyncSession, action: Action, referral: Referral, *, screened: fraud_engine.Outcome | None = None
) -> list:
    """The action's rewards, checked by the fraud engine before the first one is granted.
    `screened`: the outcome of the check this action already ran when it created the referral
    (same evidence, same moment: checking again would only repeat it)."""

    outcomes: list[fraud_engine.Outcome] = []

    async def screen() -> evaluation.Screening:
        outcome = screened or await fraud_engine.screen_grants(session, referral=referral, action=action)
        outcomes.append(outcome)
        return _SCREENING[outcome]

    async def clearance_wait() -> evaluation.ClearanceWait:
        """Which of the rewards wait for the referral to be cleared (the program's policy, read by the check)."""
        program_clearance = await clearance.program_clearance(session, referral)
        return lambda recipient, kind: clearance.waits(program_clearance, referral, action, recipient, kind)

    rewards = await evaluation.evaluate_action(
        session,
        action=action,
        referral=referral,
        screen=screen,
        clearance=clearance_wait,
        referral_is_new=screened is not None,
    )
    if outcomes == [fraud_engine.Outcome.ALLOW]:  # FIRST_PURCHASE programs: a purchase screened ALLOW clears
        await clearance.cleared_by_purchase(session, referral, action, at=action.occurred_at)
    return rewards


async def _action_by_key(session: AsyncSession, merchant_id: uuid.UUID, key: str) -> Action | None:
    return await session.scalar(select(Action).where(Action.merchant_id == merchant_id, Action.idempotency_key == key))


async def _replay(session: AsyncSession, action: Action, request_hash: str) -> RecordedAction:
    if action.request_hash != request_hash:
        raise DomainError(
            "idempotencyKey",
            ErrorCode.IDEMPOTENCY_CONFLICT,
            "this idempotency key was already used for a different action",
        )
    referral = await session.get(Referral, action.referral_id) if action.referral_id else None
    return RecordedAction(
        action=action,
        referral=referral,
        replayed=True,
        rewards=await reward_queries.rewards_granted_by(session, action=action),
        refund=await reward_queries.refund_outcome_of(session, action=action),
    )


async def _attribute(
    session: AsyncSession, merchant_id: uuid.UUID, customer: Customer, action: Action, data: ActionInput
) -> tuple[Referral | None, AttributionStatus, Click | None, fraud_engine.Outcome | None]:
    """Find the referrer behind the action's token or code and create the referral if allowed;
    the last value is the fraud check's outcome when the referral was created here."""
    if data.attribution_token is None and data.referral_code is None:
        return None, AttributionStatus.NONE, None, None
    referral_code, click, status, history = await _evidence(session, merchant_id, customer, action, data)
    if referral_code is None:
        return None, status, None, None
    if data.program_id is not None and referral_code.program_id != data.program_id:
        return None, AttributionStatus.UNKNOWN_CODE, click, None
    if not referral_code.active:
        return None, AttributionStatus.INACTIVE_CODE, click, None
    program = await get_scoped(session, Program, referral_code.program_id, merchant_id)
    assert program is not None  # the code's program, of the code's merchant
    if program.program_status is not ProgramStatus.ACTIVE:
        return None, AttributionStatus.PROGRAM_NOT_ACTIVE, click, None
    if action.type in REVERSING_TYPES:
        return None, AttributionStatus.NOT_ELIGIBLE_ACTION, click, None
    try:
        referral, screened = await _create_referral(
            session,
            program=program,
            referral_code=referral_code,
            referee=customer,
            source=ReferralSource.LINK if click is not None else ReferralSource.CODE,
            click=click,
            before=action.occurred_at,
            action=action,
            history=history,
        )
    except DomainError as refused:
        existing = await _existing_referral(session, merchant_id, customer.id, program.id)
        return existing, AttributionStatus(refused.code.value), click, None
    status = AttributionStatus.REFERRAL_CREATED if screened is not None else AttributionStatus.LINKED_TO_REFERRAL
    if screened is not None and referral.status == ReferralStatus.REJECTED:
        status = AttributionStatus.FRAUD_BLOCKED
    return referral, status, click, screened


@dataclass(frozen=True)
class RefereeHistory:
    """The referee's referral in the code's program and whether they purchased before the action."""

    referral_id: uuid.UUID | None
    purchased_before: bool


def _referee_history(program_id: Any) -> list[Any]:
    """Columns: the referee's referral in `program_id` (a parameter or the code's column) and
    whether they purchased before `before` (then they are no new customer to refer)."""
    merchant = bindparam("merchant_id", type_=Uuid())
    return [
        scoped(
            select(Referral.id).where(Referral.referee_id == bindparam("referee_id"), Referral.program_id == program_id), merchant
        )
        .limit(1)
        .scalar_subquery()
        .label("referral_id"),
        scoped(
            select(Action.id).where(
                Action.customer_id == bindparam("referee_id"),
                any_of(Action.type, QUALIFYING_TYPES),
                Action.occurred_at < bindparam("before"),
                Action.id != bindparam("exclude_action_id"),
            ),
            merchant,
        )
        .exists()
        .label("purchased"),
    ]


_NO_ACTION = uuid.UUID(int=0)
# Built once. A typed code with its program and owner, and the referee's history in the code's
# program (what `_create_referral` checks next): one round trip for the common case.
_CODE_AND_REFEREE_HISTORY = codes.CODE_WITH_OWNER.add_columns(*_referee_history(ReferralCode.program_id))
_REFERRAL_AND_HISTORY = select(*_referee_history(bindparam("program_id")))


async def _evidence(
    session: AsyncSession, merchant_id: uuid.UUID, customer: Customer, action: Action, data: ActionInput
) -> tuple[ReferralCode | None, Click | None, AttributionStatus, RefereeHistory | None]:
    """The code the action points at: through the click's token first, else the typed code."""
    status = AttributionStatus.NONE
    if data.attribution_token is not None:
        click = await clicks.find_click_by_token(session, merchant_id=merchant_id, token=data.attribution_token)
        if click is None:
            status = AttributionStatus.UNKNOWN_TOKEN
        elif action.occurred_at > click.expires_at:
            status = AttributionStatus.EXPIRED_TOKEN
        else:
            clicked = await get_scoped(session, ReferralCode, click.code_id, merchant_id)
            assert clicked is not None  # the click's code, of the click's merchant
            return clicked, click, status, None
    typed = codes.normalize(data.referral_code)
    if typed is not None:
        statement, params = _CODE_AND_REFEREE_HISTORY.statement_and_params(merchant_id, typed)
        row = (
            await session.execute(
                statement,
                {
                    **params,
                    "referee_id": customer.id,
                    "before": action.occurred_at,
                    "exclude_action_id": action.id,
                },
            )
        ).first()
        if row is not None:
            code, program, owner = codes.CODE_AND_OWNER.objects(session, row)
            keep_for_transaction(session, code, program, owner)  # the program and the referrer are read next
            return code, None, AttributionStatus.NONE, RefereeHistory(row.referral_id, bool(row.purchased))
    if data.referral_code is not None:
        status = AttributionStatus.UNKNOWN_CODE
    return None, None, status, None


async def _create_referral(
    session: AsyncSession,
    *,
    program: Program,
    referral_code: ReferralCode,
    referee: Customer,
    source: ReferralSource,
    click: Click | None,
    before: datetime,
    action: Action | None = None,
    history: RefereeHistory | None = None,
) -> tuple[Referral, fraud_engine.Outcome | None]:
    """Create referrer -> referee, with the fraud check's outcome, or return the same pair's
    existing referral (None: nothing was created).

    Raises a DomainError (SELF_REFERRAL, ALREADY_REFERRED, EXISTING_CUSTOMER) when the
    customer cannot be this code's referee. Safe under concurrency: (program, referee) is unique.
    A new referral is checked by the fraud engine at once and may come back REJECTED.
    """
    exclude_action_id = action.id if action is not None else None
    if referral_code.customer_id == referee.id:
        raise DomainError("code", ErrorCode.SELF_REFERRAL, "a customer cannot use their own referral code")
    if history is not None:  # read with the code (`_evidence`)
        existing = await session.get(Referral, history.referral_id) if history.referral_id is not None else None
        purchased_before = history.purchased_before
    else:
        existing, purchased_before = await _referral_and_history(
            session, program.merchant_id, referee.id, program.id, before, exclude_action_id
        )
    if existing is None:
        if purchased_before:
            raise DomainError("code", ErrorCode.EXISTING_CUSTOMER, "the customer had purchased before the referral")
        # Created by a purchase or a subscription: qualified from the start (no second write).
        qualified_at = action.occurred_at if action is not None and action.type in QUALIFYING_TYPES else None
        values = {
            "id": new_id(),
            "merchant_id": program.merchant_id,
            "program_id": program.id,
            "referrer_id": referral_code.customer_id,
            "referee_id": referee.id,
            "code_id": referral_code.id,
            "click_id": click.id if click is not None else None,
            "source": source.value,
            "status": referral_status.at_creation(qualified_at),
            "qualified_at": qualified_at,
            "created_at": utcnow(),
            "referred_at": action.occurred_at if action is not None else utcnow(),
        }
        if action is not None and dialect_of(session) == "postgresql":
            referral = await _insert_referral_attributing(session, values, action)
        else:
            referral = await insert_one(session, Referral, values, ignoring_conflicts=_ONE_REFERRAL_PER_PAIR)
        if referral is not None:
            await notify.referral_event(session, webhook_events.REFERRAL_CREATED, referral)
            if click is not None and action is not None:
                await identifiers.record_click(session, customer_id=referee.id, click=click)
            outcome = await fraud_engine.screen_new_referral(session, referral=referral, action=action, at=referral.referred_at)
            if referral.status == ReferralStatus.REJECTED:
                referral.qualified_at = None  # a blocked referral never qualified
            elif qualified_at is not None:
                await notify.referral_event(session, webhook_events.REFERRAL_QUALIFIED, referral)
            return referral, outcome
        existing = await _existing_referral(session, program.merchant_id, referee.id, program.id)
        assert existing is not None
    if existing.referrer_id != referral_code.customer_id:
        raise DomainError("code", ErrorCode.ALREADY_REFERRED, "the customer was already referred in this program")
    return existing, None


_ONE_REFERRAL_PER_PAIR = ("program_id", "referee_id")


@functools.cache
def _referral_attributing_action() -> Any:
    """PostgreSQL: INSERT the referral ... ON CONFLICT DO NOTHING as a CTE, and the action that
    created it pointed at it in the same statement: the UPDATE of the action's attribution that
    `record_action` would write next, one round trip fewer per referred action. A pair that has
    a referral already inserts nothing and so updates nothing. The referral's parameters are
    its attributes prefixed `referral_` (an UPDATE's own column names are reserved)."""
    referrals, actions = table_of(Referral), table_of(Action)
    new = (
        postgresql.insert(referrals)
        .values(bound_columns(Referral, "referral_"))
        .on_conflict_do_nothing(index_elements=list(_ONE_REFERRAL_PER_PAIR))
        .returning(referrals.c.id, referrals.c.merchant_id, referrals.c.program_id, referrals.c.click_id)
        .cte("new_referral")
    )
    return (
        update(actions)
        .values(
            {
                actions.c.referral_id: new.c.id,
                actions.c.program_id: new.c.program_id,
                actions.c.click_id: new.c.click_id,
                actions.c.attribution_status: bindparam("attributed_as", type_=actions.c.attribution_status.type),
            }
        )
        .where(
            actions.c.id == bindparam("attributed_action_id"),
            actions.c.merchant_id == bindparam("referral_merchant_id"),
            actions.c.merchant_id == new.c.merchant_id,  # the join to the CTE (its one row, or none)
        )
        .returning(actions.c.referral_id)
    )


async def _insert_referral_attributing(session: AsyncSession, values: dict[str, Any], action: Action) -> Referral | None:
    """PostgreSQL: insert the referral `values` describe and attribute `action` to it, as
    REFERRAL_CREATED (the fraud check that follows may still make it FRAUD_BLOCKED: then
    `record_action` updates the action again). None if the pair has a referral already."""
    row = complete_row(session, Referral, values)
    parameters = prefixed(row, "referral_") | {
        "attributed_as": AttributionStatus.REFERRAL_CREATED,
        "attributed_action_id": action.id,
    }
    if (await session.execute(_referral_attributing_action(), parameters)).first() is None:
        return None
    attributed = {
        "referral_id": row["id"],
        "program_id": row["program_id"],
        "click_id": row["click_id"],
        "attribution_status": AttributionStatus.REFERRAL_CREATED,
    }
    for key, value in attributed.items():
        set_committed_value(action, key, value)
    return attach(session, Referral, row)


async def _existing_referral(
    session: AsyncSession, merchant_id: uuid.UUID, referee_id: uuid.UUID, program_id: uuid.UUID | None
) -> Referral | None:
    """The customer's referral in the program; without a program, their first referral."""
    query = scoped(select(Referral).where(Referral.referee_id == referee_id), merchant_id)
    if program_id is not None:
        query = query.where(Referral.program_id == program_id)
    return await session.scalar(query.order_by(Referral.id).limit(1))


async def _referral_and_history(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    referee_id: uuid.UUID,
    program_id: uuid.UUID,
    before: datetime,
    exclude_action_id: uuid.UUID | None,
) -> tuple[Referral | None, bool]:
    """The customer's referral in the program, and whether they purchased before `before`
    (then they are not a new customer to refer): one round trip."""
    row = (
        await session.execute(
            _REFERRAL_AND_HISTORY,
            {
                "merchant_id": merchant_id,
                "referee_id": referee_id,
                "program_id": program_id,
                "before": before,
                "exclude_action_id": exclude_action_id or _NO_ACTION,
            },
        )
    ).one()
    referral = await get_scoped(session, Referral, row.referral_id, merchant_id) if row.referral_id is not None else None
    return referral, bool(row.purchased)


async def claim_referral(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    customer_external_id: str,
    code: str,
    config_version: int | None = None,
) -> Referral:
    """A referee who lost the link's cookie names the code after signing up.

    Allowed within the program's claim window from the customer's creation, if they have no
    referral in the program yet. Claiming the same referrer again returns the same referral.
    Actions they recorded since signing up are attached to the referral.
    """
    config_cache.trust_version(session, merchant_id, config_version)
    external_id = customers.external_id(customer_external_id)
    code = validation.required_text(code, "code", 64)
    program = await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    if program.program_status is not ProgramStatus.ACTIVE:
        raise DomainError("programId", ErrorCode.PROGRAM_NOT_ACTIVE, "the program is not running")
    customer = await customers.require_customer(
        session, merchant_id=merchant_id, external_id=external_id, field="customerExternalId"
    )
    referral_code = await codes.find_code(session, merchant_id=merchant_id, code=code)
    if referral_code is None or referral_code.program_id != program.id:
        raise DomainError("code", ErrorCode.CODE_NOT_FOUND, "no such referral code in this program")
    if not referral_code.active:
        raise DomainError("code", ErrorCode.CODE_INACTIVE, "this referral code is no longer active")
    now = utcnow()
    # Signed up when we first heard of them: the action that created the customer may have
    # been reported a little late, with the earlier time it occurred.
    first_action_at = await session.scalar(select(func.min(Action.occurred_at)).where(Action.customer_id == customer.id))
    signed_up_at = min(customer.created_at, first_action_at or customer.created_at)
    existing = await _existing_referral(session, merchant_id, customer.id, program.id)
    if existing is None and now - signed_up_at > timedelta(days=program.claim_window_days):
        raise DomainError(
            "customerExternalId",
            ErrorCode.CLAIM_WINDOW_EXPIRED,
            f"codes can be claimed within {program.claim_window_days} days of signing up",
        )
    referral, _ = await _create_referral(
        session,
        program=program,
        referral_code=referral_code,
        referee=customer,
        source=ReferralSource.CLAIM,
        click=None,
        before=signed_up_at,
    )
    attached = await _attach_recent_actions(session, referral, since=signed_up_at)
    for action in attached:  # what the referee did before claiming earns what it would have
        if action.type not in REVERSING_TYPES:
            await _evaluate(session, action, referral)
    return referral


async def _attach_recent_actions(session: AsyncSession, referral: Referral, *, since: datetime) -> list[Action]:
    attached = list(
        (
            await session.scalars(
                select(Action)
                .where(
                    Action.customer_id == referral.referee_id,
                    Action.referral_id.is_(None),
                    # an action the merchant scoped to another program stays out of this referral
                    or_(Action.program_id.is_(None), Action.program_id == referral.program_id),
                    Action.occurred_at >= since,
                )
                .order_by(Action.occurred_at, Action.id)
            )
        ).all()
    )
    for action in attached:
        action.referral_id = referral.id
        action.program_id = referral.program_id
        if action.attribution_status == AttributionStatus.NONE:
            action.attribution_status = AttributionStatus.LINKED_TO_REFERRAL
    await session.flush()
    first_qualifying = await session.scalar(
        select(Action.occurred_at)
        .where(Action.referral_id == referral.id, Action.type.in_(QUALIFYING_TYPES))
        .order_by(Action.occurred_at)
        .limit(1)
    )
    if first_qualifying is not None:
        await _qualify(session, referral, at=first_qualifying)
    await session.flush()
    return attached


async def _qualify(session: AsyncSession, referral: Referral, *, at: datetime) -> None:
    """A PENDING referral becomes QUALIFIED with the referee's first purchase or subscription."""
    if not referral_status.qualify(referral, at=at):
        return
    await session.flush()
    await notify.referral_event(session, webhook_events.REFERRAL_QUALIFIED, referral)
