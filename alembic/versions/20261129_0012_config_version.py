"""A merchant's configuration version, read with the API key.

`merchants.config_version` goes up (by a trigger, in the changing transaction) whenever the
configuration that the write path reads on every request changes: reward rules, fraud
policies, and the enabled webhook endpoints with their event types. `referral_authenticate`
returns it with the key, so an API process can keep that configuration in memory keyed by the
version (app/config_cache.py) and still never use one that is out of date.

Revision ID: 0012
Revises: 0009
Create Date: 2026-11-29 01:45:00
"""

import sqlalchemy as sa

from alembic import op

revision = '0012'
down_revision = '0009'
branch_labels = None
depends_on = None

# table -> the columns whose change matters (None: any change)
WATCHED = {
    'reward_rules': None,
    'fraud_policies': None,
    'webhook_endpoints': ('enabled', 'event_types'),
}

def _authenticate(with_version: bool) -> str:
    """`referral_authenticate` of migration 0006, returning the merchant's config version too."""
    version_column = ",\n               config_version bigint" if with_version else ""
    read_version = ("\n        SELECT m.config_version INTO config_version FROM merchants m WHERE m.id = found.merchant_id;"
                    if with_version else "")
    return f"""CREATE FUNCTION referral_authenticate(lookup_hash text)
RETURNS TABLE (key_id uuid, key_merchant_id uuid, key_kind varchar, key_expires_at timestamptz,
               key_revoked_at timestamptz{version_column})
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    found record;
BEGIN
    PERFORM set_config('app.scope', 'authenticate', true);
    SELECT k.id, k.merchant_id, k.kind, k.expires_at, k.revoked_at INTO found
      FROM api_keys k WHERE k.key_hash = lookup_hash;
    PERFORM set_config('app.scope', '', true);
    IF found.id IS NULL THEN
        RETURN;
    END IF;
    IF found.revoked_at IS NULL AND (found.expires_at IS NULL OR found.expires_at > now()) THEN
        PERFORM set_config('app.merchant_id', found.merchant_id::text, true);{read_version}
    END IF;
    key_id := found.id;
    key_merchant_id := found.merchant_id;
    key_kind := found.kind;
    key_expires_at := found.expires_at;
    key_revoked_at := found.revoked_at;
    RETURN NEXT;
END $$"""


BUMP = """CREATE FUNCTION referral_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE merchants SET config_version = config_version + 1
     WHERE id = (CASE WHEN TG_OP = 'DELETE' THEN OLD.merchant_id ELSE NEW.merchant_id END);
    RETURN NULL;
END $$"""


def upgrade() -> None:
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('config_version', sa.BigInteger(), server_default='0', nullable=False))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION referral_authenticate(text)')
        op.execute(_authenticate(with_version=True))
        op.execute(BUMP)
        for table, columns in WATCHED.items():
            updates = 'UPDATE' if columns is None else f'UPDATE OF {", ".join(columns)}'
            op.execute(f'CREATE TRIGGER {table}_config_version AFTER INSERT OR {updates} OR DELETE ON {table} '
                       'FOR EACH ROW EXECUTE FUNCTION referral_config_changed()')
    else:
        for table, columns in WATCHED.items():
            for operation, row in (('INSERT', 'NEW'), ('UPDATE', 'NEW'), ('DELETE', 'OLD')):
                when = f' OF {", ".join(columns)}' if operation == 'UPDATE' and columns else ''
                op.execute(f'CREATE TRIGGER {table}_config_version_{operation.lower()} AFTER {operation}{when} ON {table} '
                           f'BEGIN UPDATE merchants SET config_version = config_version + 1 WHERE id = {row}.merchant_id; END')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in WATCHED:
            op.execute(f'DROP TRIGGER {table}_config_version ON {table}')
        op.execute('DROP FUNCTION referral_config_changed()')
        op.execute('DROP FUNCTION referral_authenticate(text)')
        op.execute(_authenticate(with_version=False))
    else:
        for table in WATCHED:
            for operation in ('insert', 'update', 'delete'):
                op.execute(f'DROP TRIGGER {table}_config_version_{operation}')
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_column('config_version')
