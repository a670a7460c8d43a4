"""Stored leaderboards: a program's top referrers per maintained period (the last 7/30/90/365 days,
calendar weeks and months), kept by the analytics rollup job; and what a redeemed coupon took off
its order (a percentage coupon's cost).

Revision ID: 0015
Revises: 0011
Create Date: 2026-11-29 05:00:00.000000
"""

import sqlalchemy as sa

from alembic import op

revision = '0015'
down_revision = '0011'
branch_labels = None
depends_on = None

NEW_TABLES = ('analytics_leaderboards', 'analytics_leaderboard_entries')


def upgrade() -> None:
    op.create_table(
        'analytics_leaderboards',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('program_id', sa.Uuid(), nullable=False),
        sa.Column('first', sa.Date(), nullable=False),
        sa.Column('last', sa.Date(), nullable=False),
        sa.Column('active_referrers', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'],
                                name=op.f('fk_analytics_leaderboards_merchant_id_merchants')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_analytics_leaderboards_program_id_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_leaderboards')),
        sa.UniqueConstraint('program_id', 'first', 'last', name=op.f('uq_analytics_leaderboards_program_id_first_last')),
    )
    op.create_table(
        'analytics_leaderboard_entries',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('leaderboard_id', sa.Uuid(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('previous_rank', sa.Integer(), nullable=True),
        sa.Column('referrer_id', sa.Uuid(), nullable=False),
        sa.Column('qualified', sa.BigInteger(), nullable=False),
        sa.Column('referred', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'],
                                name=op.f('fk_analytics_leaderboard_entries_merchant_id_merchants')),
        sa.ForeignKeyConstraint(['leaderboard_id'], ['analytics_leaderboards.id'], ondelete='CASCADE',
                                name=op.f('fk_analytics_leaderboard_entries_leaderboard_id_analytics_leaderboards')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_leaderboard_entries')),
        sa.UniqueConstraint('leaderboard_id', 'position', name=op.f('uq_analytics_leaderboard_entries_leaderboard_id_position')),
    )
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redeemed_discount', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('redeemed_currency', sa.String(length=3), nullable=True))
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
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_column('redeemed_currency')
        batch_op.drop_column('redeemed_discount')
    op.drop_table('analytics_leaderboard_entries')
    op.drop_table('analytics_leaderboards')
