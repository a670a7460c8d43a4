"""Every column of every table, classified: what it holds about customers, and so how it is
stored, exported, erased and retained. `tests/privacy/test_classification.py` fails when a
column is added without a line here, when a personal column is not encrypted, and when a
table holding customer data has no section in the export.

The kinds, and what each one means for a column:

| kind | stored | export | erasure | retention |
|---|---|---|---|---|
| NOT_PERSONAL | as is | as is | kept | kept |
| CUSTOMER_ID | as is (the merchant's id, a lookup key) | yes | replaced by the pseudonym | kept |
| PERSONAL | encrypted | yes | emptied | kept |
| NETWORK | encrypted | yes | emptied | coarsened (IP to /24, browser dropped) |
| LOOKUP_HASH | keyed hash, never readable | no | kept: fraud checks still match | kept |
| QUOTES_PERSONAL | as is: free text or JSON that may quote personal data | where it concerns them | the customer's values replaced | IPs coarsened where noted |
| SECRET | hashed or encrypted: the merchant's credentials, not customer data | no | kept | kept |
| DOCUMENT | encrypted: a finished export | no | deleted | deleted after download or expiry |
| SEALED | encrypted with its row as context (app.crypto): payout destinations | masked only | emptied | kept |
| STAFF | the merchant's own people (admins): not customer data | no | kept | kept |
"""

from __future__ import annotations

import enum

from sqlalchemy import MetaData


class Kind(enum.Enum):
    NOT_PERSONAL = "NOT_PERSONAL"
    CUSTOMER_ID = "CUSTOMER_ID"
    PERSONAL = "PERSONAL"
    NETWORK = "NETWORK"
    LOOKUP_HASH = "LOOKUP_HASH"
    QUOTES_PERSONAL = "QUOTES_PERSONAL"
    SECRET = "SECRET"
    DOCUMENT = "DOCUMENT"
    SEALED = "SEALED"
    STAFF = "STAFF"


N, ID, P, NET, H, Q, S, D = (
    Kind.NOT_PERSONAL,
    Kind.CUSTOMER_ID,
    Kind.PERSONAL,
    Kind.NETWORK,
    Kind.LOOKUP_HASH,
    Kind.QUOTES_PERSONAL,
    Kind.SECRET,
    Kind.DOCUMENT,
)
SEALED, STAFF = Kind.SEALED, Kind.STAFF
ENCRYPTED_KINDS = frozenset({Kind.PERSONAL, Kind.NETWORK})
ABOUT_CUSTOMERS = frozenset({Kind.CUSTOMER_ID, Kind.PERSONAL, Kind.NETWORK, Kind.LOOKUP_HASH})


def _plain(*names: str) -> dict[str, Kind]:
    return dict.fromkeys(names, N)


COLUMNS: dict[str, dict[str, Kind]] = {
    # --- the merchant and its configuration: no customer in them ---------------------------------
    "merchants": _plain("id", "name", "created_at", "rate_limits", "config_version"),
    "api_keys": {**_plain("id", "merchant_id", "kind", "name", "last4", "created_at", "expires_at", "revoked_at"), "key_hash": S},
    "programs": _plain(
        "id",
        "merchant_id",
        "name",
        "status",
        "attribution_window_days",
        "claim_window_days",
        "share_url_template",
        "code_style",
        "code_length",
        "program_type",
        "created_at",
        "updated_at",
    ),
    "reward_rules": _plain(
        "id",
        "merchant_id",
        "program_id",
        "rule_id",
        "version",
        "name",
        "enabled",
        "trigger",
        "recipient",
        "kind",
        "spec",
        "created_at",
        "superseded_at",
    ),
    "coupon_pools": _plain("id", "merchant_id", "program_id", "name", "low_stock_threshold", "created_at"),
    "fraud_policies": _plain(
        "id", "merchant_id", "program_id", "version", "spec", "created_by_key_id", "created_at", "superseded_at"
    ),
    "webhook_endpoints": {
        **_plain(
            "id",
            "merchant_id",
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "previous_secret_expires_at",
            "failing_since",
            "created_at",
            "updated_at",
        ),
        "secret_encrypted": S,
        "previous_secret_encrypted": S,
    },
    "widget_settings": {
        **_plain(
            "id",
            "merchant_id",
            "allowed_origins",
            "secret_last4",
            "secret_created_at",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ),
        "secret_encrypted": S,
        "previous_secret_encrypted": S,
    },
    "program_widgets": _plain("id", "merchant_id", "program_id", "texts", "colors", "updated_at"),
    "locale_settings": _plain(
        "id", "merchant_id", "time_zone", "calendar", "locale", "arabic_script_codes", "unify_teh_marbuta", "updated_at"
    ),
    "privacy_settings": _plain("id", "merchant_id", "retention_months", "retention_applied_through", "updated_at"),
    "analytics_daily": _plain("id", "merchant_id", "program_id", "day", "measure", "dimension", "unit", "count", "amount"),
    "analytics_referrer_daily": _plain("id", "merchant_id", "program_id", "day", "referrer_id", "referred", "qualified"),
    "analytics_rollup_state": _plain("merchant_id", "time_zone", "rolled_up_at", "updated_at"),
    "analytics_leaderboards": _plain("id", "merchant_id", "program_id", "first", "last", "active_referrers"),
    "analytics_leaderboard_entries": _plain(
        "id", "merchant_id", "leaderboard_id", "position", "rank", "previous_rank", "referrer_id", "qualified", "referred"
    ),
    "outbox_jobs": _plain(
        "id",
        "merchant_id",
        "actor",
        "args",
        "run_key",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "not_before",
        "sent_at",
        "finished_at",
    ),  # args are ids
    # --- customers and what they did ------------------------------------------------------------------
    "customers": {
        **_plain("id", "merchant_id", "created_at", "updated_at", "erased_at"),
        "external_id": ID,
        "email": P,
        "email_canonical": P,
        "name": P,
        "metadata": P,
    },
    "referral_codes": {
        **_plain("id", "merchant_id", "program_id", "customer_id", "is_vanity", "active", "created_at", "deactivated_at"),
        "code": ID,
        "lookup_key": ID,
    },  # a vanity or name code may spell the name: renamed at erasure
    "clicks": {
        **_plain("id", "merchant_id", "program_id", "code_id", "attribution_token", "created_at", "expires_at"),
        "device_id": P,
        "device_id_hash": H,
        "device_fingerprint": NET,
        "ip": NET,
        "user_agent": NET,
        "landing_url": NET,
        "channel": N,
        "sub_id": N,
    },  # sub_id: the partner's tag on the link
    "referrals": _plain(
        "id",
        "merchant_id",
        "program_id",
        "referrer_id",
        "referee_id",
        "code_id",
        "click_id",
        "source",
        "status",
        "created_at",
        "referred_at",
        "qualified_at",
        "cleared_at",
    ),
    "actions": {
        **_plain(
            "id",
            "merchant_id",
            "customer_id",
            "program_id",
            "referral_id",
            "type",
            "request_hash",
            "amount",
            "currency",
            "order_id",
            "occurred_at",
            "created_at",
            "attribution_status",
            "referral_code",
            "click_id",
            "refund_order_found",
        ),
        "device_id": P,
        "device_fingerprint": NET,
        "ip": NET,
        "user_agent": NET,
        "email": P,
        "payment_fingerprint": P,
        "shipping_address": P,
        "metadata": Q,  # the shop's order data (rule conditions read it): scrubbed at erasure
        "idempotency_key": Q,
    },  # the shop's, but may name the customer ("signup-jane"): hashed at erasure then
    "rewards": _plain(
        "id",
        "merchant_id",
        "program_id",
        "rule_id",
        "rule_version_id",
        "referral_id",
        "trigger_action_id",
        "recipient",
        "customer_id",
        "kind",
        "amount",
        "unit",
        "remaining",
        "reversed_amount",
        "status",
        "milestone",
        "hold_until",
        "review_hold",
        "clearance_hold",
        "clearance_due_at",
        "expires_at",
        "awaiting_coupon",
        "created_at",
        "available_at",
        "ended_at",
        "end_reason",
        "leaked_amount",
        "source",
        "grant_key",
    ),  # grant keys are ids ("lead:<id>:fee", "campaign:<id>:prize:<id>")
    "coupons": _plain(
        "id",
        "merchant_id",
        "pool_id",
        "reward_id",
        "customer_id",
        "code",
        "lookup_key",
        "status",
        "percent_off_bps",
        "amount_off",
        "currency",
        "min_order_amount",
        "expires_at",
        "redeemed_order_id",
        "redeemed_at",
        "redeemed_discount",
        "redeemed_currency",
        "created_at",
    ),
    "ledger_accounts": _plain("id", "merchant_id", "owner_type", "owner_id", "kind", "account_type", "unit", "balance"),
    "ledger_transactions": {
        **_plain("id", "merchant_id", "kind", "reward_id", "customer_id", "request_hash", "reference", "created_at"),
        "idempotency_key": Q,
    },  # as actions'; reference is an order id
    "ledger_entries": _plain("id", "merchant_id", "transaction_id", "account_id", "amount", "unit", "created_at"),
    # --- fraud ------------------------------------------------------------------------------------------
    "customer_identifiers": {
        **_plain("id", "merchant_id", "customer_id", "kind", "first_seen_at", "last_seen_at"),
        "value": P,
        "value_hash": H,
    },  # IP kinds: deleted after retention
    "fraud_decisions": {
        **_plain(
            "id",
            "merchant_id",
            "program_id",
            "referral_id",
            "action_id",
            "review_id",
            "stage",
            "outcome",
            "policy_outcome",
            "score",
            "policy_version",
            "created_at",
        ),
        "observations": Q,
        "adjustments": Q,
    },  # evidence for reviewers: IPs coarsened at retention
    "fraud_reviews": {
        **_plain(
            "id",
            "merchant_id",
            "program_id",
            "referral_id",
            "status",
            "score",
            "signals",
            "opened_at",
            "resolved_at",
            "resolved_by_key_id",
            "resolved_by_admin_id",
            "cited_rule",
        ),  # a clause of the merchant's promotion rules
        "resolution_note": Q,
    },
    "fraud_list_entries": {
        **_plain("id", "merchant_id", "kind", "created_by_key_id", "created_at"),
        # the merchant's own blocklist, kept readable for it; an erased customer's
        # values are replaced by their keyed hashes, which still match
        "value": Q,
        "note": Q,
    },
    # --- what the merchant heard about and did ---------------------------------------------------------
    "webhook_deliveries": {
        **_plain(
            "id",
            "merchant_id",
            "endpoint_id",
            "event_id",
            "event_type",
            "occurred_at",
            "status",
            "attempt_count",
            "retry_step",
            "next_attempt_at",
            "last_attempt_at",
            "delivered_at",
            "last_error",
            "created_at",
        ),
        "payload": Q,
    },  # finished deliveries are deleted after retention
    "webhook_attempts": {
        **_plain("id", "merchant_id", "delivery_id", "attempted_at", "status_code", "latency_ms", "error"),
        "response_excerpt": Q,
    },  # the merchant's endpoint's answer
    "audit_entries": {
        **_plain("id", "merchant_id", "actor_key_id", "actor_admin_id", "action", "subject_id", "created_at"),
        "note": Q,
        "details": Q,
    },
    # --- the merchant's people: admins, their sessions and second factors (staff, not customers) -----
    "admins": {
        **_plain(
            "id",
            "merchant_id",
            "role",
            "status",
            "password_changed_at",
            "setup_expires_at",
            "totp_enabled_at",
            "totp_last_step",
            "totp_pending_expires_at",
            "second_factor_locked_until",
            "created_by_admin_id",
            "created_at",
            "disabled_at",
        ),
        "email": STAFF,
        "password_hash": S,
        "setup_token_hash": S,
        "totp_secret_encrypted": S,
        "totp_pending_encrypted": S,
    },
    "admin_sessions": {
        **_plain("id", "merchant_id", "admin_id", "created_at", "expires_at", "last_used_at", "revoked_at", "revoked_reason"),
        "token_hash": S,
        "ip": STAFF,
        "user_agent": STAFF,
    },
    "admin_recovery_codes": {**_plain("id", "merchant_id", "admin_id", "created_at", "used_at"), "code_hash": S},
    "second_factor_attempts": {
        **_plain("id", "merchant_id", "admin_id", "session_id", "purpose", "method", "accepted", "reason", "created_at"),
        "ip": STAFF,
    },
    # --- payouts ------------------------------------------------------------------------------------------
    "payout_settings": _plain(
        "merchant_id", "cooling_off_hours", "dual_approval_minimums", "merchant_executes_all", "updated_at"
    ),
    "payout_schedules": _plain("id", "merchant_id", "program_id", "frequency", "day", "minimums", "enabled", "updated_at"),
    "payout_runs": _plain(
        "id",
        "merchant_id",
        "program_id",
        "period",
        "status",
        "payouts_created",
        "customers_without_account",
        "started_at",
        "finished_at",
    ),
    "payout_accounts": {
        **_plain(
            "id",
            "merchant_id",
            "customer_id",
            "method",
            "custom_type",
            "cooling_off_until",
            "created_by_key_id",
            "created_by_admin_id",
            "created_at",
            "superseded_at",
        ),
        "details_encrypted": SEALED,  # PayPal email, IBAN and holder: emptied at erasure
        "masked": Q,  # "j***@mail.example", "DE89 **** 3000": replaced at erasure
        "fingerprint": H,
    },  # keyed: a returning destination still matches (shared_payout_account)
    "payouts": {
        **_plain(
            "id",
            "merchant_id",
            "customer_id",
            "program_id",
            "payout_account_id",
            "run_id",
            "batch_id",
            "status",
            "amount",
            "currency",
            "provider",
            "provider_reference",
            "reference",
            "request_hash",
            "approvals_required",
            "requested_by_key_id",
            "requested_by_admin_id",
            "created_at",
            "updated_at",
            "approved_at",
            "sent_at",
            "paid_at",
            "ended_at",
        ),
        "hold_reasons": Q,
        "note": Q,
        "idempotency_key": Q,
    },
    "payout_items": _plain("id", "merchant_id", "payout_id", "program_id", "reward_id", "amount"),
    "payout_approvals": _plain("id", "merchant_id", "payout_id", "admin_id", "session_id", "created_at"),
    "payout_batches": _plain(
        "id", "merchant_id", "provider", "currency", "payout_count", "total", "download_count", "last_downloaded_at", "created_at"
    ),
    # --- affiliate programs (app.partners) -----------------------------------------------------------
    "partner_groups": _plain("id", "merchant_id", "program_id", "name", "commission_bps", "created_at", "updated_at"),
    "partners": {
        **_plain(
            "id",
            "merchant_id",
            "program_id",
            "customer_id",
            "group_id",
            "status",
            "invited",
            "applied_at",
            "decided_at",
            "created_at",
            "updated_at",
        ),
        "application_note": Q,
    },  # the partner's own words: scrubbed at erasure
    "partner_status_changes": {
        **_plain("id", "merchant_id", "partner_id", "from_status", "to_status", "actor", "created_at"),
        "reason": Q,
    },  # the merchant's words: scrubbed at erasure
    "commission_splits": _plain(
        "id", "merchant_id", "program_id", "sku_key", "version", "affiliate_bps", "parties", "created_at", "superseded_at"
    ),  # parties: customer ids and shares
    "partner_sales": _plain(
        "id",
        "merchant_id",
        "program_id",
        "action_id",
        "referral_id",
        "affiliate_id",
        "partner_id",
        "code_id",
        "sub_id",
        "order_id",
        "amount",
        "currency",
        "status",
        "reason",
        "split_version_id",
        "affiliate_bps",
        "commission",
        "refunded_amount",
        "ledger_transaction_id",
        "occurred_at",
        "created_at",
    ),
    "partner_sale_shares": _plain(
        "id",
        "merchant_id",
        "sale_id",
        "customer_id",
        "role",
        "position",
        "share_bps",
        "amount",
        "reversed_amount",
        "unit",
        "reward_id",
    ),
    "partner_sale_refunds": _plain(
        "id",
        "merchant_id",
        "sale_id",
        "refund_action_id",
        "refunded_amount",
        "reversed_commission",
        "transaction_id",
        "created_at",
    ),
    # --- campaigns and contests: counts per referrer, the merchant's rules ------------------------------
    "campaigns": _plain(
        "id",
        "merchant_id",
        "program_id",
        "name",
        "kind",
        "status",
        "starts_at",
        "ends_at",
        "time_zone",
        "spec",
        "finalized_at",
        "created_at",
    ),
    "campaign_progress": _plain(
        "id", "merchant_id", "campaign_id", "referrer_id", "sales", "sales_amount", "commission", "tier", "last_sale_at"
    ),
    "campaign_sales": _plain(
        "id",
        "merchant_id",
        "campaign_id",
        "referrer_id",
        "action_id",
        "order_id",
        "amount",
        "currency",
        "occurred_at",
        "refunded_at",
    ),  # the order id, as actions keep it
    "contest_standings": _plain("id", "merchant_id", "campaign_id", "referrer_id", "rank", "sales", "prize_reward_id"),
    "promotion_rules": _plain("id", "merchant_id", "program_id", "version", "text", "clauses", "created_at"),
    "promotion_rules_acceptances": _plain("id", "merchant_id", "program_id", "customer_id", "version", "via", "accepted_at"),
    # --- business leads: a referrer names a company and a person to contact there -------------------
    # The contact is a third person the referrer told the merchant about: their name and email are
    # encrypted, the email found by its keyed hash (duplicates), and all of it is emptied when the
    # referrer is erased (it reached the merchant only through them). The notes, the referrer's and
    # the staff's ("met Ada at the fair", "called Ada"), are free text about that person: encrypted
    # and emptied with them rather than scrubbed, since no list of values could catch every quote.
    # The company and its domain name a business, not a person: kept readable, so staff can read
    # and search them and a second lead of the same company is found by its domain.
    "leads": {
        **_plain(
            "id",
            "merchant_id",
            "program_id",
            "referrer_id",
            "status",
            "company",
            "company_domain",
            "duplicate_of_id",
            "contract_value",
            "contract_currency",
            "fee_reward_id",
            "created_at",
            "updated_at",
        ),
        "contact_name": P,
        "contact_email": P,
        "notes": P,
        "contact_email_hash": H,  # kept at erasure: a later lead naming the same person is still a duplicate
        "idempotency_key": Q,
    },  # as actions': may name the referrer, hashed at erasure then
    "lead_events": {
        **_plain(
            "id",
            "merchant_id",
            "lead_id",
            "from_status",
            "to_status",
            "actor_key_id",
            "actor_admin_id",
            "actor_customer_id",
            "notes_visible_to_referrer",
            "created_at",
        ),
        "notes": P,
    },
    "lead_settings": _plain(
        "program_id", "merchant_id", "kind", "fee_amount", "fee_percent_bps", "currency", "hold_days", "updated_at"
    ),
    # --- privacy itself ---------------------------------------------------------------------------------
    "customer_data_exports": {
        **_plain(
            "id",
            "merchant_id",
            "customer_id",
            "status",
            "document_bytes",
            "requested_by_key_id",
            "requested_at",
            "ready_at",
            "expires_at",
            "downloaded_at",
        ),
        "document_encrypted": D,
    },
    "customer_erasures": {
        **_plain("id", "merchant_id", "customer_id", "pseudonym", "erased_by_key_id", "erased_at", "changes"),
        "external_id_hash": H,
        "reason": Q,
    },  # the merchant's words; ask for a ticket number, not a name
}

# Where each table's rows about a customer appear in their export (app.privacy.export), or why
# a table has none.
EXPORTED = {
    "customers": "customer",
    "referral_codes": "referralCodes",
    "clicks": "clicks",
    "referrals": "referrals",
    "actions": "actions",
    "rewards": "rewards",
    "coupons": "coupons",
    "ledger_accounts": "ledger.accounts",
    "ledger_transactions": "ledger.entries",
    "ledger_entries": "ledger.entries",
    "customer_identifiers": "fraud.identifiers",
    "fraud_decisions": "fraud.decisions",
    "fraud_reviews": "fraud.reviews",
    "fraud_list_entries": "fraud.status",
    "customer_data_exports": "dataRequests.exports",
    "payout_accounts": "payouts.accounts",
    "payouts": "payouts.payouts",
    "customer_erasures": "dataRequests.erasure",
    "partners": "partners.enrolments",
    "partner_sales": "partners.salesAsAffiliate",
    "partner_sale_shares": "partners.shares",
    "campaign_progress": "campaigns.progress",
    "campaign_sales": "campaigns.sales",
    "contest_standings": "campaigns.contestStandings",
    "promotion_rules_acceptances": "promotionRules.acceptances",
    "leads": "leads",
    "lead_events": "leads.steps",
}
NOT_EXPORTED = {
    "merchants": "the merchant",
    "api_keys": "the merchant's credentials",
    "programs": "the merchant's configuration (named by id where the customer's rows refer to it)",
    "reward_rules": "the merchant's configuration",
    "coupon_pools": "the merchant's configuration",
    "fraud_policies": "the merchant's configuration",
    "webhook_endpoints": "the merchant's configuration",
    "widget_settings": "the merchant's configuration",
    "program_widgets": "the merchant's configuration",
    "locale_settings": "the merchant's configuration",
    "privacy_settings": "the merchant's configuration",
    "outbox_jobs": "the worker's queue (ids only)",
    "analytics_daily": "counts and sums per program and day: no customer in them",
    "analytics_referrer_daily": "counts per referrer and day, kept as the referrals they count are",
    "analytics_rollup_state": "the rollup job's progress",
    "analytics_leaderboards": "a program's ranked periods: counts, no customer in them",
    "analytics_leaderboard_entries": "counts per referrer, kept and recomputed as the referrals they count are",
    "webhook_deliveries": "copies of events sent to the merchant's own server (scrubbed at erasure)",
    "webhook_attempts": "the merchant's server's answers",
    "audit_entries": "what the merchant's staff did (scrubbed at erasure)",
    "admins": "the merchant's staff",
    "admin_sessions": "the merchant's staff",
    "admin_recovery_codes": "the merchant's staff",
    "second_factor_attempts": "the merchant's staff",
    "payout_settings": "the merchant's configuration",
    "payout_schedules": "the merchant's configuration",
    "payout_runs": "the merchant's scheduled runs",
    "payout_items": "which rewards a payout paid (in the payouts section, by reward id)",
    "payout_approvals": "the merchant's staff's approvals",
    "payout_batches": "the merchant's batch files (their rows are in the payouts section)",
    "partner_groups": "the merchant's configuration",
    "partner_status_changes": "in the partners section, as each enrolment's history",
    "commission_splits": "the merchant's configuration (its parties' shares are in their partners section)",
    "partner_sale_refunds": "refunds applied to a sale (in the partners section as each share's reversed amount)",
    "campaigns": "the merchant's configuration (named by id and name where the customer's standing refers to it)",
    "promotion_rules": "the merchant's configuration (the versions the customer accepted are in promotionRules)",
    "lead_settings": "the merchant's configuration",
}


def unclassified(metadata: MetaData) -> list[str]:
    """ "table.column" for every column of `metadata` that has no line in COLUMNS."""
    return sorted(
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        for column in table.columns
        if column.name not in COLUMNS.get(table.name, {})
    )


def stale(metadata: MetaData) -> list[str]:
    """Classified columns that no longer exist."""
    present = {(t.name, c.name) for t in metadata.sorted_tables for c in t.columns}
    return sorted(f"{t}.{c}" for t, columns in COLUMNS.items() for c in columns if (t, c) not in present)


def columns_of(kind: Kind) -> list[tuple[str, str]]:
    return sorted((table, column) for table, columns in COLUMNS.items() for column, k in columns.items() if k is kind)
