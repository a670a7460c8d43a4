"""Fraud engine: policies, decisions, reviews, lists, customer identifiers; audit log;
referrals.referred_at.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 14:18:38.827944
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_entries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('actor_key_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_audit_entries_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entries_merchant_id_id', ['merchant_id', 'id'], unique=False)

    op.create_table('fraud_list_entries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('value', sa.String(length=320), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('created_by_key_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_fraud_list_entries_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_list_entries')),
    sa.UniqueConstraint('merchant_id', 'kind', 'value', name=op.f('uq_fraud_list_entries_merchant_id_kind_value'))
    )
    op.create_table('customer_identifiers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_identifiers_customer_id_customers')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_customer_identifiers_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_identifiers')),
    sa.UniqueConstraint('merchant_id', 'kind', 'value', 'customer_id', name=op.f('uq_customer_identifiers_merchant_id_kind_value_customer_id'))
    )
    with op.batch_alter_table('customer_identifiers', schema=None) as batch_op:
        batch_op.create_index('ix_customer_identifiers_customer_id', ['customer_id'], unique=False)
        batch_op.create_index('ix_customer_identifiers_recent', ['merchant_id', 'kind', 'value', 'last_seen_at'], unique=False)

    op.create_table('fraud_policies',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_by_key_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_fraud_policies_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_fraud_policies_program_id_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_policies')),
    sa.UniqueConstraint('program_id', 'version', name=op.f('uq_fraud_policies_program_id_version'))
    )
    with op.batch_alter_table('fraud_policies', schema=None) as batch_op:
        batch_op.create_index('uq_fraud_policies_current', ['program_id'], unique=True, postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))

    op.create_table('fraud_reviews',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('signals', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_key_id', sa.Uuid(), nullable=True),
    sa.Column('resolution_note', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_fraud_reviews_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_fraud_reviews_program_id_programs')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_fraud_reviews_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_reviews'))
    )
    with op.batch_alter_table('fraud_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_fraud_reviews_merchant_id_status_id', ['merchant_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_fraud_reviews_referral_id', ['referral_id'], unique=False)
        batch_op.create_index('uq_fraud_reviews_open_referral', ['referral_id'], unique=True, postgresql_where=sa.text("status = 'OPEN'"), sqlite_where=sa.text("status = 'OPEN'"))

    op.create_table('fraud_decisions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('action_id', sa.Uuid(), nullable=True),
    sa.Column('review_id', sa.Uuid(), nullable=True),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('policy_outcome', sa.String(length=16), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('observations', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('adjustments', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['action_id'], ['actions.id'], name=op.f('fk_fraud_decisions_action_id_actions')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_fraud_decisions_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_fraud_decisions_program_id_programs')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_fraud_decisions_referral_id_referrals')),
    sa.ForeignKeyConstraint(['review_id'], ['fraud_reviews.id'], name=op.f('fk_fraud_decisions_review_id_fraud_reviews')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_decisions'))
    )
    with op.batch_alter_table('fraud_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_fraud_decisions_referral_id', ['referral_id'], unique=False)
        batch_op.create_index('ix_fraud_decisions_review_id', ['review_id'], unique=False)

    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('referred_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE referrals SET referred_at = created_at")
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.alter_column('referred_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_index(batch_op.f('ix_referrals_referrer_id'))
        batch_op.create_index('ix_referrals_referrer_id_referred_at', ['referrer_id', 'referred_at'], unique=False)

    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index('ix_rewards_customer_id')
        batch_op.create_index('ix_rewards_customer_id_created_at', ['customer_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index('ix_rewards_customer_id_created_at')
        batch_op.create_index('ix_rewards_customer_id', ['customer_id'], unique=False)

    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_referrer_id_referred_at')
        batch_op.create_index(batch_op.f('ix_referrals_referrer_id'), ['referrer_id'], unique=False)
        batch_op.drop_column('referred_at')

    with op.batch_alter_table('fraud_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_fraud_decisions_review_id')
        batch_op.drop_index('ix_fraud_decisions_referral_id')

    op.drop_table('fraud_decisions')
    with op.batch_alter_table('fraud_reviews', schema=None) as batch_op:
        batch_op.drop_index('uq_fraud_reviews_open_referral', postgresql_where=sa.text("status = 'OPEN'"), sqlite_where=sa.text("status = 'OPEN'"))
        batch_op.drop_index('ix_fraud_reviews_referral_id')
        batch_op.drop_index('ix_fraud_reviews_merchant_id_status_id')

    op.drop_table('fraud_reviews')
    with op.batch_alter_table('fraud_policies', schema=None) as batch_op:
        batch_op.drop_index('uq_fraud_policies_current', postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))

    op.drop_table('fraud_policies')
    with op.batch_alter_table('customer_identifiers', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_identifiers_recent')
        batch_op.drop_index('ix_customer_identifiers_customer_id')

    op.drop_table('customer_identifiers')
    op.drop_table('fraud_list_entries')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_merchant_id_id')

    op.drop_table('audit_entries')
