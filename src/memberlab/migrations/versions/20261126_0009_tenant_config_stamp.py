"""tenant config stamp

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 15:30:00

Every change to a tenant's program activations or webhook endpoints renews this stamp;
server processes keep those in memory while the stamp they read with the API key is the
same (``memberlab.core.tenant_cache``). Existing tenants get a stamp of their own here.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_stamp", sa.String(length=32), nullable=True))
    tenants = sa.table("tenants", sa.column("id", sa.BigInteger), sa.column("config_stamp"))
    connection = op.get_bind()
    for (tenant_id,) in connection.execute(sa.select(tenants.c.id)).all():
        connection.execute(
            tenants.update()
            .where(tenants.c.id == tenant_id)
            .values(config_stamp=secrets.token_hex(16))
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("config_stamp")
