"""Rewards: versioned rules, rewards, coupons and pools, and the double-entry ledger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:17:24.268103
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_accounts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('owner_type', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('account_type', sa.String(length=24), nullable=False),
    sa.Column('unit', sa.String(length=8), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_ledger_accounts_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts')),
    sa.UniqueConstraint('merchant_id', 'owner_id', 'kind', 'account_type', 'unit', name=op.f('uq_ledger_accounts_merchant_id_owner_id_kind_account_type_unit'))
    )
    op.create_table('coupon_pools',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('low_stock_threshold', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_coupon_pools_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_coupon_pools_program_id_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_pools'))
    )
    with op.batch_alter_table('coupon_pools', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupon_pools_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('reward_rules',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('rule_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('trigger', sa.String(length=64), nullable=False),
    sa.Column('recipient', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_reward_rules_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_reward_rules_program_id_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_rules')),
    sa.UniqueConstraint('rule_id', 'version', name=op.f('uq_reward_rules_rule_id_version'))
    )
    with op.batch_alter_table('reward_rules', schema=None) as batch_op:
        batch_op.create_index('ix_reward_rules_program_id', ['program_id'], unique=False)
        batch_op.create_index('uq_reward_rules_current', ['rule_id'], unique=True, postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))

    op.create_table('rewards',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('rule_id', sa.Uuid(), nullable=False),
    sa.Column('rule_version_id', sa.Uuid(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('trigger_action_id', sa.Uuid(), nullable=False),
    sa.Column('recipient', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('unit', sa.String(length=8), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('reversed_amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('milestone', sa.Integer(), nullable=True),
    sa.Column('hold_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_hold', sa.Boolean(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('awaiting_coupon', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('available_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_rewards_customer_id_customers')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_rewards_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_rewards_program_id_programs')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_rewards_referral_id_referrals')),
    sa.ForeignKeyConstraint(['rule_version_id'], ['reward_rules.id'], name=op.f('fk_rewards_rule_version_id_reward_rules')),
    sa.ForeignKeyConstraint(['trigger_action_id'], ['actions.id'], name=op.f('fk_rewards_trigger_action_id_actions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rewards')),
    sa.UniqueConstraint('rule_version_id', 'referral_id', 'trigger_action_id', 'recipient', name=op.f('uq_rewards_rule_version_id_referral_id_trigger_action_id_recipient'))
    )
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.create_index('ix_rewards_customer_id', ['customer_id'], unique=False)
        batch_op.create_index('ix_rewards_program_id_created_at', ['program_id', 'created_at'], unique=False)
        batch_op.create_index('ix_rewards_referral_id', ['referral_id'], unique=False)
        batch_op.create_index('ix_rewards_rule_id_customer_id_created_at', ['rule_id', 'customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_rewards_status_expires_at', ['status', 'expires_at'], unique=False)
        batch_op.create_index('ix_rewards_status_hold_until', ['status', 'hold_until'], unique=False)
        batch_op.create_index('ix_rewards_trigger_action_id', ['trigger_action_id'], unique=False)
        batch_op.create_index('uq_rewards_milestone', ['rule_id', 'customer_id', 'milestone'], unique=True, postgresql_where=sa.text('milestone IS NOT NULL'), sqlite_where=sa.text('milestone IS NOT NULL'))

    op.create_table('coupons',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('pool_id', sa.Uuid(), nullable=True),
    sa.Column('reward_id', sa.Uuid(), nullable=True),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('percent_off_bps', sa.Integer(), nullable=True),
    sa.Column('amount_off', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('min_order_amount', sa.BigInteger(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('redeemed_order_id', sa.String(length=255), nullable=True),
    sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_coupons_customer_id_customers')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_coupons_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['pool_id'], ['coupon_pools.id'], name=op.f('fk_coupons_pool_id_coupon_pools')),
    sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'], name=op.f('fk_coupons_reward_id_rewards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('merchant_id', 'code', name=op.f('uq_coupons_merchant_id_code'))
    )
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.create_index('ix_coupons_pool_id_status', ['pool_id', 'status'], unique=False)
        batch_op.create_index('ix_coupons_reward_id', ['reward_id'], unique=False)
        batch_op.create_index('ix_coupons_status_expires_at', ['status', 'expires_at'], unique=False)

    op.create_table('ledger_transactions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reward_id', sa.Uuid(), nullable=True),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=True),
    sa.Column('reference', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_ledger_transactions_customer_id_customers')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_ledger_transactions_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'], name=op.f('fk_ledger_transactions_reward_id_rewards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transactions')),
    sa.UniqueConstraint('merchant_id', 'idempotency_key', name=op.f('uq_ledger_transactions_merchant_id_idempotency_key'))
    )
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_transactions_reward_id', ['reward_id'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('transaction_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('unit', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_accounts.id'], name=op.f('fk_ledger_entries_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_ledger_entries_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_entries_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_account_id', ['account_id'], unique=False)
        batch_op.create_index('ix_ledger_entries_transaction_id', ['transaction_id'], unique=False)

    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refund_order_found', sa.Boolean(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_column('refund_order_found')

    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_transaction_id')
        batch_op.drop_index('ix_ledger_entries_account_id')

    op.drop_table('ledger_entries')
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_transactions_reward_id')

    op.drop_table('ledger_transactions')
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_index('ix_coupons_status_expires_at')
        batch_op.drop_index('ix_coupons_reward_id')
        batch_op.drop_index('ix_coupons_pool_id_status')

    op.drop_table('coupons')
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index('uq_rewards_milestone', postgresql_where=sa.text('milestone IS NOT NULL'), sqlite_where=sa.text('milestone IS NOT NULL'))
        batch_op.drop_index('ix_rewards_trigger_action_id')
        batch_op.drop_index('ix_rewards_status_hold_until')
        batch_op.drop_index('ix_rewards_status_expires_at')
        batch_op.drop_index('ix_rewards_rule_id_customer_id_created_at')
        batch_op.drop_index('ix_rewards_referral_id')
        batch_op.drop_index('ix_rewards_program_id_created_at')
        batch_op.drop_index('ix_rewards_customer_id')

    op.drop_table('rewards')
    with op.batch_alter_table('reward_rules', schema=None) as batch_op:
        batch_op.drop_index('uq_reward_rules_current', postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))
        batch_op.drop_index('ix_reward_rules_program_id')

    op.drop_table('reward_rules')
    with op.batch_alter_table('coupon_pools', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupon_pools_merchant_id'))

    op.drop_table('coupon_pools')
    op.drop_table('ledger_accounts')
