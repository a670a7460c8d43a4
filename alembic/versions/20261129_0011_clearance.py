"""Clearance (issue 13): a reward waits for its referral to be cleared before it becomes
spendable (`rewards.clearance_hold`, `clearance_due_at`), the moment a referral was cleared (`referrals.cleared_at`),
what a late fraud flag could not take back (`rewards.leaked_amount`), and clicks by code
and time (clicks count in a referrer's velocity).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 02:00:00.000000
"""

import sqlalchemy as sa

from alembic import op

revision = '0011'
down_revision = '0010'  # after main's 0012 and the analytics 0010, as merged
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clearance_hold', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('clearance_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('leaked_amount', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.create_index('ix_rewards_status_clearance_due_at', ['status', 'clearance_due_at'], unique=False)
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cleared_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_clicks_code_id_created_at', 'clicks', ['code_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_clicks_code_id_created_at', table_name='clicks')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_column('cleared_at')
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index('ix_rewards_status_clearance_due_at')
        batch_op.drop_column('leaked_amount')
        batch_op.drop_column('clearance_due_at')
        batch_op.drop_column('clearance_hold')
