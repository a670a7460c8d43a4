"""Partner programs (issue 15, first half): program types, partners and their groups, tracking
sub-ids on clicks, versioned commission splits, and the sales they paid with each party's share.

Creating an AFFILIATE program raises `merchants.config_version` (a trigger, as migration 0012
does for rules): the write path keeps the merchant's affiliate programs in memory
(app.partners.sales.enqueue_settlement) and must notice a new one at once. A program's type
never changes after creation.

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-29 05:00:00
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = '0013'
down_revision = '0014'
branch_labels = None
depends_on = None

NEW_TABLES = ('partner_groups', 'partners', 'partner_status_changes', 'commission_splits', 'partner_sales',
              'partner_sale_shares', 'partner_sale_refunds')


def _id_and_merchant(table: str) -> list:
    return [
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=f'fk_{table}_merchant_id_merchants'),
        sa.PrimaryKeyConstraint('id', name=f'pk_{table}'),
    ]


def upgrade() -> None:
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('program_type', sa.String(length=24), server_default='CUSTOMER_REFERRAL', nullable=False))
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sub_id', sa.String(length=64), nullable=True))

    op.create_table(
        'partner_groups', *_id_and_merchant('partner_groups'),
        sa.Column('program_id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('commission_bps', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name='fk_partner_groups_program_id_programs'),
        sa.UniqueConstraint('program_id', 'name', name='uq_partner_groups_program_id_name'),
    )
    op.create_index('ix_partner_groups_merchant_id', 'partner_groups', ['merchant_id'])
    op.create_table(
        'partners', *_id_and_merchant('partners'),
        sa.Column('program_id', sa.Uuid(), nullable=False),
        sa.Column('customer_id', sa.Uuid(), nullable=False),
        sa.Column('group_id', sa.Uuid(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('invited', sa.Boolean(), nullable=False),
        sa.Column('application_note', sa.String(length=1000), nullable=True),
        sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name='fk_partners_program_id_programs'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name='fk_partners_customer_id_customers'),
        sa.ForeignKeyConstraint(['group_id'], ['partner_groups.id'], name='fk_partners_group_id_partner_groups'),
        sa.UniqueConstraint('program_id', 'customer_id', name='uq_partners_program_id_customer_id'),
    )
    op.create_index('ix_partners_merchant_id_program_id_status', 'partners', ['merchant_id', 'program_id', 'status'])
    op.create_table(
        'partner_status_changes', *_id_and_merchant('partner_status_changes'),
        sa.Column('partner_id', sa.Uuid(), nullable=False),
        sa.Column('from_status', sa.String(length=16), nullable=True),
        sa.Column('to_status', sa.String(length=16), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('reason', sa.String(length=1000), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name='fk_partner_status_changes_partner_id_partners'),
    )
    op.create_index('ix_partner_status_changes_partner_id', 'partner_status_changes', ['partner_id'])
    op.create_table(
        'commission_splits', *_id_and_merchant('commission_splits'),
        sa.Column('program_id', sa.Uuid(), nullable=False),
        sa.Column('sku_key', sa.String(length=100), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('affiliate_bps', sa.Integer(), nullable=True),
        sa.Column('parties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name='fk_commission_splits_program_id_programs'),
        sa.UniqueConstraint('program_id', 'sku_key', 'version', name='uq_commission_splits_program_id_sku_key_version'),
    )
    op.create_index('uq_commission_splits_current', 'commission_splits', ['program_id', 'sku_key'], unique=True,
                    postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))
    op.create_table(
        'partner_sales', *_id_and_merchant('partner_sales'),
        sa.Column('program_id', sa.Uuid(), nullable=False),
        sa.Column('action_id', sa.Uuid(), nullable=False),
        sa.Column('referral_id', sa.Uuid(), nullable=False),
        sa.Column('affiliate_id', sa.Uuid(), nullable=False),
        sa.Column('partner_id', sa.Uuid(), nullable=True),
        sa.Column('code_id', sa.Uuid(), nullable=False),
        sa.Column('sub_id', sa.String(length=64), nullable=True),
        sa.Column('order_id', sa.String(length=255), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=True),
        sa.Column('split_version_id', sa.Uuid(), nullable=True),
        sa.Column('affiliate_bps', sa.Integer(), nullable=False),
        sa.Column('commission', sa.BigInteger(), nullable=False),
        sa.Column('refunded_amount', sa.BigInteger(), nullable=False),
        sa.Column('ledger_transaction_id', sa.Uuid(), nullable=True),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name='fk_partner_sales_program_id_programs'),
        sa.ForeignKeyConstraint(['action_id'], ['actions.id'], name='fk_partner_sales_action_id_actions'),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name='fk_partner_sales_referral_id_referrals'),
        sa.ForeignKeyConstraint(['affiliate_id'], ['customers.id'], name='fk_partner_sales_affiliate_id_customers'),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name='fk_partner_sales_partner_id_partners'),
        sa.ForeignKeyConstraint(['code_id'], ['referral_codes.id'], name='fk_partner_sales_code_id_referral_codes'),
        sa.ForeignKeyConstraint(['split_version_id'], ['commission_splits.id'],
                                name='fk_partner_sales_split_version_id_commission_splits'),
        sa.ForeignKeyConstraint(['ledger_transaction_id'], ['ledger_transactions.id'],
                                name='fk_partner_sales_ledger_transaction_id_ledger_transactions'),
        sa.UniqueConstraint('action_id', name='uq_partner_sales_action_id'),
    )
    op.create_index('ix_partner_sales_merchant_id_order_id', 'partner_sales', ['merchant_id', 'order_id'])
    op.create_index('ix_partner_sales_affiliate_id_occurred_at', 'partner_sales', ['affiliate_id', 'occurred_at'])
    op.create_index('ix_partner_sales_program_id_occurred_at', 'partner_sales', ['program_id', 'occurred_at'])
    op.create_table(
        'partner_sale_shares', *_id_and_merchant('partner_sale_shares'),
        sa.Column('sale_id', sa.Uuid(), nullable=False),
        sa.Column('customer_id', sa.Uuid(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('share_bps', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('reversed_amount', sa.BigInteger(), nullable=False),
        sa.Column('unit', sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(['sale_id'], ['partner_sales.id'], name='fk_partner_sale_shares_sale_id_partner_sales'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name='fk_partner_sale_shares_customer_id_customers'),
        sa.UniqueConstraint('sale_id', 'customer_id', name='uq_partner_sale_shares_sale_id_customer_id'),
    )
    op.create_index('ix_partner_sale_shares_customer_id', 'partner_sale_shares', ['customer_id'])
    op.create_table(
        'partner_sale_refunds', *_id_and_merchant('partner_sale_refunds'),
        sa.Column('sale_id', sa.Uuid(), nullable=False),
        sa.Column('refund_action_id', sa.Uuid(), nullable=False),
        sa.Column('refunded_amount', sa.BigInteger(), nullable=False),
        sa.Column('reversed_commission', sa.BigInteger(), nullable=False),
        sa.Column('transaction_id', sa.Uuid(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['sale_id'], ['partner_sales.id'], name='fk_partner_sale_refunds_sale_id_partner_sales'),
        sa.ForeignKeyConstraint(['refund_action_id'], ['actions.id'], name='fk_partner_sale_refunds_refund_action_id_actions'),
        sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transactions.id'],
                                name='fk_partner_sale_refunds_transaction_id_ledger_transactions'),
        sa.UniqueConstraint('sale_id', 'refund_action_id', name='uq_partner_sale_refunds_sale_id_refund_action_id'),
    )

    if op.get_bind().dialect.name == 'postgresql':
        for table in NEW_TABLES:  # row-level security, as migration 0006 does for every tenant table
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(
                f'CREATE POLICY tenant_isolation ON {table} '
                f'USING (merchant_id = referral_tenant() OR referral_system()) '
                f'WITH CHECK (merchant_id = referral_tenant() OR referral_system())'
            )
        op.execute("CREATE TRIGGER programs_config_version AFTER INSERT ON programs FOR EACH ROW "
                   "WHEN (NEW.program_type = 'AFFILIATE') EXECUTE FUNCTION referral_config_changed()")
    else:
        op.execute("CREATE TRIGGER programs_config_version_insert AFTER INSERT ON programs "
                   "WHEN NEW.program_type = 'AFFILIATE' "
                   "BEGIN UPDATE merchants SET config_version = config_version + 1 WHERE id = NEW.merchant_id; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER programs_config_version ON programs')
    else:
        op.execute('DROP TRIGGER programs_config_version_insert')
    op.drop_table('partner_sale_refunds')
    op.drop_index('ix_partner_sale_shares_customer_id', table_name='partner_sale_shares')
    op.drop_table('partner_sale_shares')
    for name in ('ix_partner_sales_program_id_occurred_at', 'ix_partner_sales_affiliate_id_occurred_at',
                 'ix_partner_sales_merchant_id_order_id'):
        op.drop_index(name, table_name='partner_sales')
    op.drop_table('partner_sales')
    op.drop_index('uq_commission_splits_current', table_name='commission_splits')
    op.drop_table('commission_splits')
    op.drop_index('ix_partner_status_changes_partner_id', table_name='partner_status_changes')
    op.drop_table('partner_status_changes')
    op.drop_index('ix_partners_merchant_id_program_id_status', table_name='partners')
    op.drop_table('partners')
    op.drop_index('ix_partner_groups_merchant_id', table_name='partner_groups')
    op.drop_table('partner_groups')
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_column('sub_id')
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.drop_column('program_type')
