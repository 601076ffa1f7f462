"""a member's ledger rows reference (tenant_id, member_pk); entries, postings keyed by tenant

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 14:30:00

The seven ledger tables referenced ``tenants.id`` and ``members.id`` with two keys. They now
reference ``members (tenant_id, id)`` with one: the database refuses a row naming another
tenant's member, and checks one key per row instead of two.

``ledger_entries`` and ``postings`` trade their ``(tenant_id, at)`` indexes for primary keys
led by ``tenant_id``: what reads a tenant's whole ledger (the liability, analyses, exports)
still finds only that tenant's rows, and a bulk import's rows no longer land all over an
index by time (a quarter of its writing on SQLite).

On PostgreSQL the upgrade rebuilds both primary keys and checks every ledger row against
its member, holding the tables meanwhile: minutes for a store of millions of postings.
"""

from __future__ import annotations

from alembic import op

from memberlab.core.migrate import refuse_rows_of_another_tenants_member

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
PRIMARY_KEYS = {"ledger_entries": ["seq"], "postings": ["entry_seq", "leg"]}  # after the member


def upgrade() -> None:
    refuse_rows_of_another_tenants_member(op.get_bind(), LEDGER_TABLES)
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
                batch_op.drop_constraint(f"pk_{table}", type_="primary")
                batch_op.create_primary_key(
                    f"pk_{table}", ["tenant_id", "member_pk", *PRIMARY_KEYS[table]]
                )


def downgrade() -> None:
    for table in LEDGER_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table in TIME_INDEXES:
                batch_op.drop_constraint(f"pk_{table}", type_="primary")
                batch_op.create_primary_key(f"pk_{table}", ["member_pk", *PRIMARY_KEYS[table]])
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
