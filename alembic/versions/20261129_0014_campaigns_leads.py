"""Campaigns and contests, promotion rules, business referrals (issue 15, second half).

- `campaigns`, `campaign_progress` (a referrer's live count per campaign, the row that
  serialises their sales), `campaign_sales` (each counted sale once), `contest_standings`
  (written when a contest is finalized);
- `promotion_rules` (versions with clauses) and `promotion_rules_acceptances`;
- `leads`, `lead_events` (the audited steps), `lead_settings` (the program's referral fee);
  a lead's contact (name, email) and the notes are encrypted, the contact email is matched
  by its keyed hash (`contact_email_hash`), as app/privacy/classification.py says;
- `rewards` may come without a rule (a campaign bonus, a lead fee): rule, referral and
  trigger action become nullable, `source` says where a reward came from and `grant_key`
  (unique per merchant) makes such a reward once-only;
- `fraud_reviews.cited_rule`: the promotion rule clause a rejection cites;
- campaign changes bump `merchants.config_version`, as migration 0012 does for rules, so the
  write path may keep the active campaigns in memory (app.config_cache).

Revision ID: 0014
Revises: 0011
Create Date: 2026-11-29 05:00:00
"""

import sqlalchemy as sa

from alembic import op

revision = '0014'
down_revision = '0015'
branch_labels = None
depends_on = None

NEW_TABLES = ('campaigns', 'campaign_progress', 'campaign_sales', 'contest_standings', 'promotion_rules',
              'promotion_rules_acceptances', 'leads', 'lead_events', 'lead_settings')


def _id(name: str = 'id') -> sa.Column:
    return sa.Column(name, sa.Uuid(), nullable=False)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'], name=op.f(f'fk_{table}_{column}_{target}'))


def upgrade() -> None:
    op.create_table(
        'campaigns',
        _id(), _id('merchant_id'), _id('program_id'),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('kind', sa.String(24), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('time_zone', sa.String(64), nullable=False),
        sa.Column('spec', sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql'), nullable=False),
        sa.Column('finalized_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        _fk('campaigns', 'merchant_id', 'merchants'), _fk('campaigns', 'program_id', 'programs'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    )
    op.create_index('ix_campaigns_merchant_id_program_id', 'campaigns', ['merchant_id', 'program_id'])
    op.create_table(
        'campaign_progress',
        _id(), _id('merchant_id'), _id('campaign_id'), _id('referrer_id'),
        sa.Column('sales', sa.Integer(), nullable=False),
        sa.Column('sales_amount', sa.BigInteger(), nullable=False),
        sa.Column('commission', sa.BigInteger(), nullable=False),
        sa.Column('tier', sa.Integer(), nullable=False),
        sa.Column('last_sale_at', sa.DateTime(timezone=True), nullable=True),
        _fk('campaign_progress', 'merchant_id', 'merchants'), _fk('campaign_progress', 'campaign_id', 'campaigns'),
        sa.ForeignKeyConstraint(['referrer_id'], ['customers.id'], name=op.f('fk_campaign_progress_referrer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_progress')),
        sa.UniqueConstraint('campaign_id', 'referrer_id', name=op.f('uq_campaign_progress_campaign_id_referrer_id')),
    )
    op.create_index('ix_campaign_progress_campaign_id_sales', 'campaign_progress', ['campaign_id', 'sales'])
    op.create_table(
        'campaign_sales',
        _id(), _id('merchant_id'), _id('campaign_id'), _id('referrer_id'), _id('action_id'),
        sa.Column('order_id', sa.String(255), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
        _fk('campaign_sales', 'merchant_id', 'merchants'), _fk('campaign_sales', 'campaign_id', 'campaigns'),
        _fk('campaign_sales', 'action_id', 'actions'),
        sa.ForeignKeyConstraint(['referrer_id'], ['customers.id'], name=op.f('fk_campaign_sales_referrer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_sales')),
        sa.UniqueConstraint('campaign_id', 'action_id', name=op.f('uq_campaign_sales_campaign_id_action_id')),
    )
    op.create_index('ix_campaign_sales_merchant_id_order_id', 'campaign_sales', ['merchant_id', 'order_id'])
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        for column in ('rule_id', 'rule_version_id', 'referral_id', 'trigger_action_id'):
            batch_op.alter_column(column, existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column('source', sa.String(16), server_default='RULE', nullable=False))
        batch_op.add_column(sa.Column('grant_key', sa.String(255), nullable=True))
        batch_op.create_unique_constraint(op.f('uq_rewards_merchant_id_grant_key'), ['merchant_id', 'grant_key'])
    op.create_table(
        'contest_standings',
        _id(), _id('merchant_id'), _id('campaign_id'), _id('referrer_id'),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('sales', sa.Integer(), nullable=False),
        sa.Column('prize_reward_id', sa.Uuid(), nullable=True),
        _fk('contest_standings', 'merchant_id', 'merchants'), _fk('contest_standings', 'campaign_id', 'campaigns'),
        sa.ForeignKeyConstraint(['referrer_id'], ['customers.id'], name=op.f('fk_contest_standings_referrer_id_customers')),
        sa.ForeignKeyConstraint(['prize_reward_id'], ['rewards.id'], name=op.f('fk_contest_standings_prize_reward_id_rewards')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_contest_standings')),
        sa.UniqueConstraint('campaign_id', 'referrer_id', name=op.f('uq_contest_standings_campaign_id_referrer_id')),
    )
    op.create_table(
        'promotion_rules',
        _id(), _id('merchant_id'), _id('program_id'),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('clauses', sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        _fk('promotion_rules', 'merchant_id', 'merchants'), _fk('promotion_rules', 'program_id', 'programs'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_promotion_rules')),
        sa.UniqueConstraint('program_id', 'version', name=op.f('uq_promotion_rules_program_id_version')),
    )
    op.create_table(
        'promotion_rules_acceptances',
        _id(), _id('merchant_id'), _id('program_id'), _id('customer_id'),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('via', sa.String(16), nullable=False),
        sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
        _fk('promotion_rules_acceptances', 'merchant_id', 'merchants'),
        _fk('promotion_rules_acceptances', 'program_id', 'programs'),
        _fk('promotion_rules_acceptances', 'customer_id', 'customers'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_promotion_rules_acceptances')),
        sa.UniqueConstraint('program_id', 'customer_id', 'version',
                            name=op.f('uq_promotion_rules_acceptances_program_id_customer_id_version')),
    )
    op.create_table(
        'leads',
        _id(), _id('merchant_id'), _id('program_id'), _id('referrer_id'),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('company', sa.String(200), nullable=False),
        sa.Column('company_domain', sa.String(255), nullable=True),
        sa.Column('contact_name', sa.Text(), nullable=True),  # encrypted (app.personal.Encrypted)
        sa.Column('contact_email', sa.Text(), nullable=True),  # encrypted
        sa.Column('contact_email_hash', sa.String(64), nullable=True),  # keyed: duplicates are found by it
        sa.Column('notes', sa.Text(), nullable=True),  # encrypted
        sa.Column('duplicate_of_id', sa.Uuid(), nullable=True),
        sa.Column('contract_value', sa.BigInteger(), nullable=True),
        sa.Column('contract_currency', sa.String(3), nullable=True),
        sa.Column('fee_reward_id', sa.Uuid(), nullable=True),
        sa.Column('idempotency_key', sa.String(255), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        _fk('leads', 'merchant_id', 'merchants'), _fk('leads', 'program_id', 'programs'),
        sa.ForeignKeyConstraint(['referrer_id'], ['customers.id'], name=op.f('fk_leads_referrer_id_customers')),
        sa.ForeignKeyConstraint(['duplicate_of_id'], ['leads.id'], name=op.f('fk_leads_duplicate_of_id_leads')),
        sa.ForeignKeyConstraint(['fee_reward_id'], ['rewards.id'], name=op.f('fk_leads_fee_reward_id_rewards')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_leads')),
        sa.UniqueConstraint('merchant_id', 'idempotency_key', name=op.f('uq_leads_merchant_id_idempotency_key')),
    )
    op.create_index('ix_leads_merchant_id_program_id_company_domain', 'leads', ['merchant_id', 'program_id', 'company_domain'])
    op.create_index('ix_leads_merchant_id_program_id_contact_email_hash', 'leads',
                    ['merchant_id', 'program_id', 'contact_email_hash'])
    op.create_index('ix_leads_referrer_id', 'leads', ['referrer_id'])
    op.create_table(
        'lead_events',
        _id(), _id('merchant_id'), _id('lead_id'),
        sa.Column('from_status', sa.String(16), nullable=True),
        sa.Column('to_status', sa.String(16), nullable=False),
        sa.Column('actor_key_id', sa.Uuid(), nullable=True),
        sa.Column('actor_admin_id', sa.Uuid(), nullable=True),
        sa.Column('actor_customer_id', sa.Uuid(), nullable=True),
        sa.Column('notes', sa.Text(), nullable=True),  # encrypted
        sa.Column('notes_visible_to_referrer', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        _fk('lead_events', 'merchant_id', 'merchants'), _fk('lead_events', 'lead_id', 'leads'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_events')),
    )
    op.create_index('ix_lead_events_lead_id', 'lead_events', ['lead_id'])
    op.create_table(
        'lead_settings',
        _id('program_id'), _id('merchant_id'),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('fee_amount', sa.BigInteger(), nullable=True),
        sa.Column('fee_percent_bps', sa.Integer(), nullable=True),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('hold_days', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        _fk('lead_settings', 'merchant_id', 'merchants'), _fk('lead_settings', 'program_id', 'programs'),
        sa.PrimaryKeyConstraint('program_id', name=op.f('pk_lead_settings')),
    )
    with op.batch_alter_table('fraud_reviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cited_rule', sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql'),
                                      nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        # a campaign change bumps the merchant's config version (the function of migration 0012)
        op.execute('CREATE TRIGGER campaigns_config_version AFTER INSERT OR UPDATE OR DELETE ON campaigns '
                   'FOR EACH ROW EXECUTE FUNCTION referral_config_changed()')
        for table in NEW_TABLES:  # row-level security, as migration 0006 does for every tenant table
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(
                f'CREATE POLICY tenant_isolation ON {table} '
                f'USING (merchant_id = referral_tenant() OR referral_system()) '
                f'WITH CHECK (merchant_id = referral_tenant() OR referral_system())'
            )
    else:
        for operation, row in (('INSERT', 'NEW'), ('UPDATE', 'NEW'), ('DELETE', 'OLD')):
            op.execute(f'CREATE TRIGGER campaigns_config_version_{operation.lower()} AFTER {operation} ON campaigns '
                       f'BEGIN UPDATE merchants SET config_version = config_version + 1 WHERE id = {row}.merchant_id; END')


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        for operation in ('insert', 'update', 'delete'):
            op.execute(f'DROP TRIGGER campaigns_config_version_{operation}')
    with op.batch_alter_table('fraud_reviews', schema=None) as batch_op:
        batch_op.drop_column('cited_rule')
    for table in ('lead_settings', 'lead_events', 'leads', 'promotion_rules_acceptances', 'promotion_rules',
                  'contest_standings'):
        op.drop_table(table)
    # Rewards without a rule (campaign bonuses, lead fees) must be gone before this: their
    # ledger history refers to them, and the columns become required again.
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_rewards_merchant_id_grant_key'), type_='unique')
        batch_op.drop_column('grant_key')
        batch_op.drop_column('source')
        for column in ('rule_id', 'rule_version_id', 'referral_id', 'trigger_action_id'):
            batch_op.alter_column(column, existing_type=sa.Uuid(), nullable=False)
    for table in ('campaign_sales', 'campaign_progress', 'campaigns'):
        op.drop_table(table)
