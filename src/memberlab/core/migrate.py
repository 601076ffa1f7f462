"""Schema migrations (Alembic), run from code: ``memberlab db upgrade`` and the tests."""

from __future__ import annotations

from importlib import resources

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
