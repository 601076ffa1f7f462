"""Schema migrations (Alembic), run from code: ``memberlab db upgrade`` and the tests."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import Connection


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("memberlab") / "migrations"))
    return config


def upgrade(bind: Engine | Connection, revision: str = "head") -> str:
    """Bring the schema to ``revision``; returns the revision the database is now at."""
    config = alembic_config()
    if isinstance(bind, Connection):
        config.attributes["connection"] = bind
        command.upgrade(config, revision)
        return current_revision(bind) or ""
    with bind.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        return current_revision(connection) or ""


def downgrade(connection: Connection, revision: str) -> str:
    """Take the schema back to ``revision`` (for a release rolled back); returns where it is."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)
    return current_revision(connection) or ""


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def refuse_rows_of_another_tenants_member(connection: Connection, tables: Iterable[str]) -> None:
    """For a migration that gives ``tables`` the member key (``members.models.member_key``):
    rows it would refuse in the database's own words stop the upgrade, named by table."""
    members = sa.table("members", sa.column("id"), sa.column("tenant_id"))
    for table in tables:
        rows = sa.table(table, sa.column("tenant_id"), sa.column("member_pk"))
        count = connection.execute(
            sa.select(sa.func.count())
            .select_from(rows.join(members, members.c.id == rows.c.member_pk))
            .where(members.c.tenant_id != rows.c.tenant_id)
        ).scalar_one()
        if count:
            raise RuntimeError(
                f"{count} rows of {table} name a member of another tenant (their tenant_id"
                " is not the member's): correct them before upgrading"
            )
