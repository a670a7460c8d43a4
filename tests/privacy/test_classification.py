"""Every column is classified, personal columns are encrypted, and every table holding customer
data has a section in the export. A column added without a line in
app/privacy/classification.py fails here."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String

from app.db import Base
from app.personal import Encrypted
from app.privacy import classification
from app.privacy.classification import ABOUT_CUSTOMERS, ENCRYPTED_KINDS, Kind


def test_every_column_is_classified():
    assert classification.unclassified(Base.metadata) == [], "classify these in app/privacy/classification.py"
    assert classification.stale(Base.metadata) == []


def test_a_new_column_with_personal_data_is_caught():
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    metadata.tables["customers"].append_column(Column("passport_number", String(32)))
    assert classification.unclassified(metadata) == ["customers.passport_number"]


def test_personal_columns_are_encrypted_and_hashes_are_keyed():
    tables = Base.metadata.tables
    plain = [
        f"{t}.{c}"
        for kind in ENCRYPTED_KINDS
        for t, c in classification.columns_of(kind)
        if not isinstance(tables[t].c[c].type, Encrypted)
    ]
    assert plain == [], "personal columns must use app.personal.Encrypted"
    encrypted_elsewhere = [
        f"{t.name}.{c.name}"
        for t in Base.metadata.sorted_tables
        for c in t.columns
        if isinstance(c.type, Encrypted) and classification.COLUMNS[t.name][c.name] not in ENCRYPTED_KINDS
    ]
    assert encrypted_elsewhere == []
    for table, column in classification.columns_of(Kind.LOOKUP_HASH):
        assert isinstance(tables[table].c[column].type, String) and tables[table].c[column].type.length == 64


def test_every_table_with_customer_data_is_in_the_export():
    names = {t.name for t in Base.metadata.sorted_tables}
    assert set(classification.EXPORTED) | set(classification.NOT_EXPORTED) == names
    assert not set(classification.EXPORTED) & set(classification.NOT_EXPORTED)
    for table in Base.metadata.sorted_tables:
        about_customers = any(kind in ABOUT_CUSTOMERS for kind in classification.COLUMNS[table.name].values())
        points_at_customers = any(fk.column.table.name == "customers" for c in table.columns for fk in c.foreign_keys)
        if about_customers or points_at_customers:
            assert table.name in classification.EXPORTED, f"{table.name} holds customer data: give it an export section"
