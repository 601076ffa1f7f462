"""a member's ledger rows reference (tenant_id, member_pk); no time index on entries, postings

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 14:30:00

The seven ledger tables referenced ``tenants.id`` and ``members.id`` with two keys. They now
reference ``members (tenant_id, id)`` with one: the database refuses a row naming another
tenant's member, and checks one key per row instead of two.

``ledger_entries`` and ``postings`` lose their ``(tenant_id, at)`` indexes. No query needs
them (a member's rows are read through the primary key, the liability reads every posting),
and each new row landed all over them: a quarter of a bulk import's writing on SQLite.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

LEDGER_TABLES = (
    "member_states",
    "ledger_entries",
    "postings",
    "points_lots",
    "orders",
    "order_returns",
    "tier_changes",
)
TIME_INDEXES = {
    "ledger_entries": "ix_ledger_entries_tenant_at",
    "postings": "ix_postings_tenant_at",
}


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index("ix_members_tenant_id_id", ["tenant_id", "id"], unique=True)
    for table in LEDGER_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_member_pk_members", type_="foreignkey")
            batch_op.drop_constraint(f"fk_{table}_tenant_id_tenants", type_="foreignkey")
            batch_op.create_foreign_key(
                f"fk_{table}_tenant_id_members",
                "members",
                ["tenant_id", "member_pk"],
                ["tenant_id", "id"],
                ondelete="RESTRICT",
            )
            if table in TIME_INDEXES:
                batch_op.drop_index(TIME_INDEXES[table])


def downgrade() -> None:
    for table in LEDGER_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table in TIME_INDEXES:
                batch_op.create_index(TIME_INDEXES[table], ["tenant_id", "at"], unique=False)
            batch_op.drop_constraint(f"fk_{table}_tenant_id_members", type_="foreignkey")
            batch_op.create_foreign_key(
                f"fk_{table}_tenant_id_tenants",
                "tenants",
                ["tenant_id"],
                ["id"],
                ondelete="RESTRICT",
            )
            batch_op.create_foreign_key(
                f"fk_{table}_member_pk_members",
                "members",
                ["member_pk"],
                ["id"],
                ondelete="RESTRICT",
            )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_tenant_id_id")
