"""Widget: allowed browser origins and the customer-signing secret per merchant, program
widget texts and colours, the device fingerprint on clicks and actions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 21:56:45.863511
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('widget_settings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('allowed_origins', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('secret_encrypted', sa.String(length=200), nullable=True),
    sa.Column('secret_last4', sa.String(length=4), nullable=True),
    sa.Column('secret_created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('previous_secret_encrypted', sa.String(length=200), nullable=True),
    sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_widget_settings_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_widget_settings')),
    sa.UniqueConstraint('merchant_id', name=op.f('uq_widget_settings_merchant_id'))
    )
    op.create_table('program_widgets',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('texts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('colors', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_program_widgets_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_program_widgets_program_id_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_program_widgets')),
    sa.UniqueConstraint('program_id', name=op.f('uq_program_widgets_program_id'))
    )
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_fingerprint', sa.String(length=64), nullable=True))

    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_fingerprint', sa.String(length=64), nullable=True))

    if op.get_bind().dialect.name == 'postgresql':  # row-level security, as migration 0006 does for every tenant table
        for table in ('widget_settings', 'program_widgets'):
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(
                f'CREATE POLICY tenant_isolation ON {table} '
                f'USING (merchant_id = referral_tenant() OR referral_system()) '
                f'WITH CHECK (merchant_id = referral_tenant() OR referral_system())'
            )


def downgrade() -> None:
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_column('device_fingerprint')

    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_column('device_fingerprint')

    op.drop_table('program_widgets')
    op.drop_table('widget_settings')
