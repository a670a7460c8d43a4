"""Partner commission shares become payable: each party's share of an affiliate sale is now an
ordinary `rewards` row (source PARTNER_SALE, a grant_key per sale and party), so holds,
clearance, refunds and payouts treat it as any commission. The share remembers its reward.

The ledger account type PARTNER_HELD is gone from the code (app.rewards.models.AccountType).
Account types are stored as plain strings and never parsed back into the enum, so accounts and
entries an earlier build wrote keep their rows and still balance; this migration moves no money
and converts no sale settled before it (0013 had not been released: there are none to convert).

Revision ID: 0017
Revises: 0013
Create Date: 2026-11-29 06:20:00
"""

import sqlalchemy as sa

from alembic import op

revision = '0017'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('partner_sale_shares', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reward_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key('fk_partner_sale_shares_reward_id_rewards', 'rewards', ['reward_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('partner_sale_shares', schema=None) as batch_op:
        batch_op.drop_constraint('fk_partner_sale_shares_reward_id_rewards', type_='foreignkey')
        batch_op.drop_column('reward_id')
