"""Hardening: per-merchant rate limits; PostgreSQL row-level security on every tenant table.

Every table with a `merchant_id` (and `merchants` itself) shows a transaction only the rows of
the merchant in `app.merchant_id`, or every row when `app.scope` is 'system' (jobs, the CLI).
Both are transaction-local settings the application sets (app/db.py). FORCE makes the policies
apply to the tables' owner too; only superusers and BYPASSRLS roles pass them, so the API must
connect as a role that is neither (`referral db grant ROLE`, README "Production").

`referral_authenticate(hash)` is the one read of API keys before the merchant is known: it
opens `api_keys` to itself for the lookup and scopes the rest of the transaction to the key's
merchant.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 22:30:00
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TENANT_TABLES = (
    'outbox_jobs', 'api_keys', 'audit_entries', 'customers', 'fraud_list_entries', 'ledger_accounts', 'programs',
    'webhook_endpoints', 'coupon_pools', 'customer_identifiers', 'fraud_policies', 'referral_codes', 'reward_rules',
    'webhook_deliveries', 'clicks', 'webhook_attempts', 'referrals', 'actions', 'fraud_reviews', 'fraud_decisions',
    'rewards', 'coupons', 'ledger_transactions', 'ledger_entries',
)

FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION referral_tenant() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('app.merchant_id', true), '')::uuid $$""",
    """CREATE OR REPLACE FUNCTION referral_system() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT coalesce(current_setting('app.scope', true), '') = 'system' $$""",
    """CREATE OR REPLACE FUNCTION referral_authenticate(lookup_hash text)
RETURNS TABLE (key_id uuid, key_merchant_id uuid, key_kind varchar, key_expires_at timestamptz, key_revoked_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    found record;
BEGIN
    PERFORM set_config('app.scope', 'authenticate', true);
    SELECT k.id, k.merchant_id, k.kind, k.expires_at, k.revoked_at INTO found
      FROM api_keys k WHERE k.key_hash = lookup_hash;
    PERFORM set_config('app.scope', '', true);
    IF found.id IS NULL THEN
        RETURN;
    END IF;
    IF found.revoked_at IS NULL AND (found.expires_at IS NULL OR found.expires_at > now()) THEN
        PERFORM set_config('app.merchant_id', found.merchant_id::text, true);
    END IF;
    key_id := found.id;
    key_merchant_id := found.merchant_id;
    key_kind := found.kind;
    key_expires_at := found.expires_at;
    key_revoked_at := found.revoked_at;
    RETURN NEXT;
END $$""",
)


def upgrade() -> None:
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'rate_limits', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True
        ))
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite (embedded mode) keeps the application's filters only
    for function in FUNCTIONS:
        op.execute(function)
    for table in TENANT_TABLES:
        op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
        op.execute(
            f'CREATE POLICY tenant_isolation ON {table} '
            f'USING (merchant_id = referral_tenant() OR referral_system()) '
            f'WITH CHECK (merchant_id = referral_tenant() OR referral_system())'
        )
    op.execute('ALTER TABLE merchants ENABLE ROW LEVEL SECURITY')
    op.execute('ALTER TABLE merchants FORCE ROW LEVEL SECURITY')
    op.execute(
        'CREATE POLICY tenant_isolation ON merchants '
        'USING (id = referral_tenant() OR referral_system()) WITH CHECK (id = referral_tenant() OR referral_system())'
    )
    op.execute(
        "CREATE POLICY authenticate ON api_keys FOR SELECT "
        "USING (current_setting('app.scope', true) = 'authenticate')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP POLICY IF EXISTS authenticate ON api_keys')
        for table in (*TENANT_TABLES, 'merchants'):
            op.execute(f'DROP POLICY IF EXISTS tenant_isolation ON {table}')
            op.execute(f'ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} DISABLE ROW LEVEL SECURITY')
        op.execute('DROP FUNCTION IF EXISTS referral_authenticate(text)')
        op.execute('DROP FUNCTION IF EXISTS referral_system()')
        op.execute('DROP FUNCTION IF EXISTS referral_tenant()')
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_column('rate_limits')
