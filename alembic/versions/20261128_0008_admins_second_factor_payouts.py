"""Merchant admins (sessions, TOTP, recovery codes, second-factor attempts); payouts (settings,
accounts, schedules, runs, batches, payouts, their lots and approvals); the admin in the
audit log and on fraud reviews.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 22:07:38.537757
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admins',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('setup_token_hash', sa.String(length=64), nullable=True),
    sa.Column('setup_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_secret_encrypted', sa.Text(), nullable=True),
    sa.Column('totp_enabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
    sa.Column('totp_pending_encrypted', sa.Text(), nullable=True),
    sa.Column('totp_pending_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('second_factor_locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_admin_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_admins_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admins')),
    sa.UniqueConstraint('merchant_id', 'email', name=op.f('uq_admins_merchant_id_email')),
    sa.UniqueConstraint('setup_token_hash', name=op.f('uq_admins_setup_token_hash'))
    )
    with op.batch_alter_table('admins', schema=None) as batch_op:
        batch_op.create_index('ix_admins_email', ['email'], unique=False)

    op.create_table('payout_batches',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('provider', sa.String(length=24), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payout_count', sa.Integer(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('download_count', sa.Integer(), nullable=False),
    sa.Column('last_downloaded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payout_batches_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_batches'))
    )
    with op.batch_alter_table('payout_batches', schema=None) as batch_op:
        batch_op.create_index('ix_payout_batches_merchant_id_id', ['merchant_id', 'id'], unique=False)

    op.create_table('payout_settings',
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('cooling_off_hours', sa.Integer(), nullable=False),
    sa.Column('dual_approval_minimums', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('merchant_executes_all', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payout_settings_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', name=op.f('pk_payout_settings'))
    )
    op.create_table('admin_recovery_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('admin_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['admin_id'], ['admins.id'], name=op.f('fk_admin_recovery_codes_admin_id_admins')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_admin_recovery_codes_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_recovery_codes')),
    sa.UniqueConstraint('admin_id', 'code_hash', name=op.f('uq_admin_recovery_codes_admin_id_code_hash'))
    )
    op.create_table('admin_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('admin_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['admin_id'], ['admins.id'], name=op.f('fk_admin_sessions_admin_id_admins')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_admin_sessions_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_admin_sessions_token_hash'))
    )
    with op.batch_alter_table('admin_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_admin_sessions_admin_id', ['admin_id'], unique=False)

    op.create_table('payout_accounts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('custom_type', sa.String(length=64), nullable=True),
    sa.Column('details_encrypted', sa.Text(), nullable=False),
    sa.Column('masked', sa.String(length=200), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('cooling_off_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_key_id', sa.Uuid(), nullable=True),
    sa.Column('created_by_admin_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_payout_accounts_customer_id_customers')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payout_accounts_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_accounts'))
    )
    with op.batch_alter_table('payout_accounts', schema=None) as batch_op:
        batch_op.create_index('ix_payout_accounts_merchant_id_fingerprint', ['merchant_id', 'fingerprint'], unique=False)
        batch_op.create_index('uq_payout_accounts_current', ['customer_id'], unique=True, postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))

    op.create_table('payout_runs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('payouts_created', sa.Integer(), nullable=False),
    sa.Column('customers_without_account', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payout_runs_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_payout_runs_program_id_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_runs')),
    sa.UniqueConstraint('program_id', 'period', name=op.f('uq_payout_runs_program_id_period'))
    )
    op.create_table('payout_schedules',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('day', sa.Integer(), nullable=False),
    sa.Column('minimums', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payout_schedules_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_payout_schedules_program_id_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_schedules')),
    sa.UniqueConstraint('program_id', name=op.f('uq_payout_schedules_program_id'))
    )
    op.create_table('second_factor_attempts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('admin_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['admin_id'], ['admins.id'], name=op.f('fk_second_factor_attempts_admin_id_admins')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_second_factor_attempts_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_second_factor_attempts'))
    )
    with op.batch_alter_table('second_factor_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_second_factor_attempts_admin_id_created_at', ['admin_id', 'created_at'], unique=False)

    op.create_table('payouts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('payout_account_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=True),
    sa.Column('run_id', sa.Uuid(), nullable=True),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('hold_reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('approvals_required', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=24), nullable=True),
    sa.Column('batch_id', sa.Uuid(), nullable=True),
    sa.Column('provider_reference', sa.String(length=255), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('requested_by_key_id', sa.Uuid(), nullable=True),
    sa.Column('requested_by_admin_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['payout_batches.id'], name=op.f('fk_payouts_batch_id_payout_batches')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_payouts_customer_id_customers')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payouts_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['payout_account_id'], ['payout_accounts.id'], name=op.f('fk_payouts_payout_account_id_payout_accounts')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_payouts_program_id_programs')),
    sa.ForeignKeyConstraint(['run_id'], ['payout_runs.id'], name=op.f('fk_payouts_run_id_payout_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payouts')),
    sa.UniqueConstraint('merchant_id', 'idempotency_key', name=op.f('uq_payouts_merchant_id_idempotency_key'))
    )
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.create_index('ix_payouts_batch_id', ['batch_id'], unique=False)
        batch_op.create_index('ix_payouts_customer_id_created_at', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_payouts_merchant_id_status_id', ['merchant_id', 'status', 'id'], unique=False)

    op.create_table('payout_approvals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('payout_id', sa.Uuid(), nullable=False),
    sa.Column('admin_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['admin_id'], ['admins.id'], name=op.f('fk_payout_approvals_admin_id_admins')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payout_approvals_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['payout_id'], ['payouts.id'], name=op.f('fk_payout_approvals_payout_id_payouts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_approvals')),
    sa.UniqueConstraint('payout_id', 'admin_id', name=op.f('uq_payout_approvals_payout_id_admin_id'))
    )
    op.create_table('payout_items',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('payout_id', sa.Uuid(), nullable=False),
    sa.Column('reward_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payout_items_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['payout_id'], ['payouts.id'], name=op.f('fk_payout_items_payout_id_payouts')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_payout_items_program_id_programs')),
    sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'], name=op.f('fk_payout_items_reward_id_rewards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_items'))
    )
    with op.batch_alter_table('payout_items', schema=None) as batch_op:
        batch_op.create_index('ix_payout_items_payout_id', ['payout_id'], unique=False)
        batch_op.create_index('ix_payout_items_reward_id', ['reward_id'], unique=False)

    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor_admin_id', sa.Uuid(), nullable=True))

    with op.batch_alter_table('fraud_reviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolved_by_admin_id', sa.Uuid(), nullable=True))


    if op.get_bind().dialect.name == 'postgresql':  # row-level security, as migration 0006 does for every tenant table
        for table in ('admins', 'payout_batches', 'payout_settings', 'admin_recovery_codes', 'admin_sessions',
                      'payout_accounts', 'payout_runs', 'payout_schedules', 'second_factor_attempts', 'payouts',
                      'payout_approvals', 'payout_items'):
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(
                f'CREATE POLICY tenant_isolation ON {table} '
                f'USING (merchant_id = referral_tenant() OR referral_system()) '
                f'WITH CHECK (merchant_id = referral_tenant() OR referral_system())'
            )
        # Sessions and logins find their admin before the merchant is known (app.db.authenticating).
        for table in ('admins', 'admin_sessions'):
            op.execute(
                f"CREATE POLICY authenticate ON {table} FOR SELECT USING (current_setting('app.scope', true) = 'authenticate')"
            )

def downgrade() -> None:
    with op.batch_alter_table('fraud_reviews', schema=None) as batch_op:
        batch_op.drop_column('resolved_by_admin_id')

    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_column('actor_admin_id')

    with op.batch_alter_table('payout_items', schema=None) as batch_op:
        batch_op.drop_index('ix_payout_items_reward_id')
        batch_op.drop_index('ix_payout_items_payout_id')

    op.drop_table('payout_items')
    op.drop_table('payout_approvals')
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_index('ix_payouts_merchant_id_status_id')
        batch_op.drop_index('ix_payouts_customer_id_created_at')
        batch_op.drop_index('ix_payouts_batch_id')

    op.drop_table('payouts')
    with op.batch_alter_table('second_factor_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_second_factor_attempts_admin_id_created_at')

    op.drop_table('second_factor_attempts')
    op.drop_table('payout_schedules')
    op.drop_table('payout_runs')
    with op.batch_alter_table('payout_accounts', schema=None) as batch_op:
        batch_op.drop_index('uq_payout_accounts_current', postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))
        batch_op.drop_index('ix_payout_accounts_merchant_id_fingerprint')

    op.drop_table('payout_accounts')
    with op.batch_alter_table('admin_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_sessions_admin_id')

    op.drop_table('admin_sessions')
    op.drop_table('admin_recovery_codes')
    op.drop_table('payout_settings')
    with op.batch_alter_table('payout_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_payout_batches_merchant_id_id')

    op.drop_table('payout_batches')
    with op.batch_alter_table('admins', schema=None) as batch_op:
        batch_op.drop_index('ix_admins_email')

    op.drop_table('admins')
