"""Analytics: daily rollups per program and local day (and per referrer), the rollup job's state, the share
channel of a click, and the indexes the rollups read days through.

Revision ID: 0010
Revises: 0012
Create Date: 2026-11-29 01:40:00.000000
"""

import sqlalchemy as sa

from alembic import op

revision = '0010'
down_revision = '0012'  # re-chained after merging main (0012 came first); was '0009'
branch_labels = None
depends_on = None

NEW_TABLES = ('analytics_daily', 'analytics_referrer_daily', 'analytics_rollup_state')
INDEXES = (  # (table, name, columns)
    ('clicks', 'ix_clicks_program_id_created_at', ['program_id', 'created_at']),
    ('referrals', 'ix_referrals_program_id_referred_at', ['program_id', 'referred_at']),
    ('referrals', 'ix_referrals_program_id_qualified_at', ['program_id', 'qualified_at']),
    ('actions', 'ix_actions_merchant_id_occurred_at', ['merchant_id', 'occurred_at']),
    ('coupons', 'ix_coupons_merchant_id_redeemed_at', ['merchant_id', 'redeemed_at']),
    ('ledger_entries', 'ix_ledger_entries_account_id_created_at', ['account_id', 'created_at']),
)


def upgrade() -> None:
    op.create_table(
        'analytics_daily',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('program_id', sa.Uuid(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('measure', sa.String(length=32), nullable=False),
        sa.Column('dimension', sa.String(length=32), nullable=False),
        sa.Column('unit', sa.String(length=8), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_analytics_daily_merchant_id_merchants')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_analytics_daily_program_id_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_daily')),
        sa.UniqueConstraint('program_id', 'day', 'measure', 'dimension', 'unit',
                            name=op.f('uq_analytics_daily_program_id_day_measure_dimension_unit')),
    )
    op.create_index('ix_analytics_daily_merchant_id_program_id_day', 'analytics_daily', ['merchant_id', 'program_id', 'day'])
    op.create_table(
        'analytics_referrer_daily',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('program_id', sa.Uuid(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('referrer_id', sa.Uuid(), nullable=False),
        sa.Column('referred', sa.BigInteger(), nullable=False),
        sa.Column('qualified', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'],
                                name=op.f('fk_analytics_referrer_daily_merchant_id_merchants')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_analytics_referrer_daily_program_id_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_referrer_daily')),
        sa.UniqueConstraint('program_id', 'day', 'referrer_id', name=op.f('uq_analytics_referrer_daily_program_id_day_referrer_id')),
    )
    op.create_table(
        'analytics_rollup_state',
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('time_zone', sa.String(length=64), nullable=False),
        sa.Column('rolled_up_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'],
                                name=op.f('fk_analytics_rollup_state_merchant_id_merchants')),
        sa.PrimaryKeyConstraint('merchant_id', name=op.f('pk_analytics_rollup_state')),
    )
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=32), nullable=True))
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns)
    if op.get_bind().dialect.name == 'postgresql':  # row-level security, as migration 0006 does for every tenant table
        for table in NEW_TABLES:
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(
                f'CREATE POLICY tenant_isolation ON {table} '
                f'USING (merchant_id = referral_tenant() OR referral_system()) '
                f'WITH CHECK (merchant_id = referral_tenant() OR referral_system())'
            )


def downgrade() -> None:
    for table, name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_column('channel')
    op.drop_table('analytics_rollup_state')
    op.drop_table('analytics_referrer_daily')
    op.drop_index('ix_analytics_daily_merchant_id_program_id_day', table_name='analytics_daily')
    op.drop_table('analytics_daily')
