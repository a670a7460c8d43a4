"""Privacy and Arabic/Persian input: personal columns encrypted at rest, lookups by keyed
hashes, code lookup keys, locale and privacy settings, customer exports and erasures.

Existing rows are rewritten here: personal values encrypted with the keys of the process that
migrates (SECRET_KEY / ENCRYPTION_KEYS: the API's and the workers' own), device ids and fraud
identifiers given their keyed hashes, codes and coupons their lookup keys (two old codes that
now read the same keep working when typed exactly; the newer loses its key).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 10:00:00.000000
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
NEW_TABLES = ('locale_settings', 'privacy_settings', 'customer_data_exports', 'customer_erasures')
# table -> (text columns, JSON columns) now encrypted (contexts "<table>.<column>", see app.personal)
ENCRYPTED = {
    'customers': (('email', 'email_canonical', 'name'), ('metadata',)),
    'clicks': (('device_id', 'device_fingerprint', 'ip', 'user_agent', 'landing_url'), ()),
    'actions': (('device_id', 'device_fingerprint', 'ip', 'user_agent', 'email', 'payment_fingerprint'), ('shipping_address',)),
    'customer_identifiers': (('value',), ()),
}


def upgrade() -> None:
    # (SQLite changes a column by copying the table: app.migrations.upgrade turns foreign keys off meanwhile)
    _create_tables()
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_merchant_id_email_canonical')
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('referral_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lookup_key', sa.String(length=64), nullable=True))
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lookup_key', sa.String(length=64), nullable=True))
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_index('ix_clicks_code_id_device_id')
        batch_op.drop_index('ix_clicks_merchant_id_device_id')
        batch_op.add_column(sa.Column('device_id_hash', sa.String(length=64), nullable=True))
    with op.batch_alter_table('customer_identifiers', schema=None) as batch_op:
        batch_op.drop_constraint('uq_customer_identifiers_merchant_id_kind_value_customer_id', type_='unique')
        batch_op.drop_index('ix_customer_identifiers_recent')
        batch_op.add_column(sa.Column('value_hash', sa.String(length=64), nullable=True))
    for table, (texts, jsons) in ENCRYPTED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in texts:
                batch_op.alter_column(column, type_=sa.Text(), existing_nullable=True, nullable=True)
            for column in jsons:
                batch_op.alter_column(column, type_=sa.Text(), existing_nullable=True, postgresql_using=f'{column}::text')

    _rewrite_existing_rows()

    with op.batch_alter_table('referral_codes', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_referral_codes_merchant_id_lookup_key'), ['merchant_id', 'lookup_key'])
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.create_index('ix_coupons_merchant_id_lookup_key', ['merchant_id', 'lookup_key'], unique=False)
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.create_index('ix_clicks_code_id_device_id_hash', ['code_id', 'device_id_hash'], unique=False)
    with op.batch_alter_table('customer_identifiers', schema=None) as batch_op:
        batch_op.alter_column('value_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f('uq_customer_identifiers_merchant_id_kind_value_hash_customer_id'),
            ['merchant_id', 'kind', 'value_hash', 'customer_id'],
        )
        batch_op.create_index('ix_customer_identifiers_recent', ['merchant_id', 'kind', 'value_hash', 'last_seen_at'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':  # row-level security, as migration 0006 does for every tenant table
        for table in NEW_TABLES:
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(
                f'CREATE POLICY tenant_isolation ON {table} '
                f'USING (merchant_id = referral_tenant() OR referral_system()) '
                f'WITH CHECK (merchant_id = referral_tenant() OR referral_system())'
            )


def _create_tables() -> None:
    op.create_table('locale_settings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('calendar', sa.String(length=16), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('arabic_script_codes', sa.Boolean(), nullable=False),
    sa.Column('unify_teh_marbuta', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_locale_settings_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_locale_settings')),
    sa.UniqueConstraint('merchant_id', name=op.f('uq_locale_settings_merchant_id'))
    )
    op.create_table('privacy_settings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('retention_months', sa.Integer(), nullable=False),
    sa.Column('retention_applied_through', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_privacy_settings_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_settings')),
    sa.UniqueConstraint('merchant_id', name=op.f('uq_privacy_settings_merchant_id'))
    )
    op.create_table('customer_data_exports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('document_encrypted', sa.Text(), nullable=True),
    sa.Column('document_bytes', sa.Integer(), nullable=True),
    sa.Column('requested_by_key_id', sa.Uuid(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('downloaded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_data_exports_customer_id_customers')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_customer_data_exports_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_data_exports'))
    )
    with op.batch_alter_table('customer_data_exports', schema=None) as batch_op:
        batch_op.create_index('ix_customer_data_exports_merchant_id_id', ['merchant_id', 'id'], unique=False)
    op.create_table('customer_erasures',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('external_id_hash', sa.String(length=64), nullable=False),
    sa.Column('pseudonym', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('erased_by_key_id', sa.Uuid(), nullable=True),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changes', JSON, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_erasures_customer_id_customers')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_customer_erasures_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_erasures')),
    sa.UniqueConstraint('customer_id', name=op.f('uq_customer_erasures_customer_id'))
    )
    with op.batch_alter_table('customer_erasures', schema=None) as batch_op:
        batch_op.create_index('ix_customer_erasures_merchant_id_external_id_hash', ['merchant_id', 'external_id_hash'], unique=False)


def _rewrite_existing_rows() -> None:
    """Encrypt what was stored in clear, add keyed hashes and lookup keys, one row at a time."""
    from app import text
    from app.personal import keyring, lookup_hash

    bind = op.get_bind()
    ring = keyring()
    for name, (texts, jsons) in ENCRYPTED.items():
        columns = texts + jsons
        table = sa.table(name, sa.column('id', sa.Uuid()), sa.column('merchant_id', sa.Uuid()), sa.column('kind', sa.String()),
                         *(sa.column(c, sa.Text()) for c in columns),
                         sa.column('device_id_hash', sa.String()), sa.column('value_hash', sa.String()))
        selected = [table.c.id, table.c.merchant_id, *(table.c[c] for c in columns)] + ([table.c.kind] if name == 'customer_identifiers' else [])
        for row in bind.execute(sa.select(*selected)).mappings().all():
            values = {c: ring.encrypt(row[c], context=f'{name}.{c}') for c in columns if row[c] is not None}
            if name == 'clicks' and row['device_id'] is not None:
                values['device_id_hash'] = lookup_hash(row['merchant_id'], 'DEVICE', row['device_id'])
            if name == 'customer_identifiers':
                values['value_hash'] = lookup_hash(row['merchant_id'], row['kind'], row['value'])
            if values:
                bind.execute(sa.update(table).where(table.c.id == row['id']).values(**values))
    for name in ('referral_codes', 'coupons'):
        table = sa.table(name, sa.column('id', sa.Uuid()), sa.column('merchant_id', sa.Uuid()), sa.column('code', sa.String()),
                         sa.column('lookup_key', sa.String()))
        taken = set()
        for row in bind.execute(sa.select(table.c.id, table.c.merchant_id, table.c.code).order_by(table.c.id)).all():
            key = text.code_key(row.code)
            if name == 'referral_codes' and (row.merchant_id, key) in taken:
                continue  # an older code reads the same: this one is found only when typed exactly
            taken.add((row.merchant_id, key))
            bind.execute(sa.update(table).where(table.c.id == row.id).values(lookup_key=key))


def downgrade() -> None:
    raise NotImplementedError("0009 encrypts personal data in place; restore a backup to go back")
