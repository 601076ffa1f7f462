"""redemptions, coupons, tags, survey answers, invitations and cases reference
(tenant_id, member_pk)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 18:00:00

0010 gave a member's ledger rows one key to ``members (tenant_id, id)``. The other tables
of a member's rows still referenced ``members.id`` alone, so the database accepted a
coupon, a redemption or a survey answer naming another tenant's member. Their member key
now includes the tenant; they keep their own key to ``tenants``, and a row without a
member (an anonymous answer, a case opened by hand) is not checked, as before.

``survey_responses`` set ``member_pk`` to null when its member was deleted; a key of two
columns cannot null one of them on both databases, and members are never deleted (erasure
clears their personal data), so it now refuses the delete like the others.
"""

from __future__ import annotations

from alembic import op

from memberlab.core.migrate import refuse_rows_of_another_tenants_member

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# each table, what deleting its member did before and does now
MEMBER_TABLES = {
    "redemptions": ("RESTRICT", "RESTRICT"),
    "coupons": ("RESTRICT", "RESTRICT"),
    "member_tags": ("CASCADE", "CASCADE"),
    "survey_responses": ("SET NULL", "RESTRICT"),
    "survey_invitations": ("RESTRICT", "RESTRICT"),
    "follow_up_cases": ("RESTRICT", "RESTRICT"),
}


def upgrade() -> None:
    refuse_rows_of_another_tenants_member(op.get_bind(), MEMBER_TABLES)
    for table, (_, ondelete) in MEMBER_TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_member_pk_members", type_="foreignkey")
            batch_op.create_foreign_key(
                f"fk_{table}_tenant_id_members",
                "members",
                ["tenant_id", "member_pk"],
                ["tenant_id", "id"],
                ondelete=ondelete,
            )


def downgrade() -> None:
    for table, (ondelete, _) in MEMBER_TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_tenant_id_members", type_="foreignkey")
            batch_op.create_foreign_key(
                f"fk_{table}_member_pk_members", "members", ["member_pk"], ["id"], ondelete=ondelete
            )
