"""Alembic environment: runs on a connection handed in by ``memberlab.core.migrate``,
or on the URL from the settings when called through the ``alembic`` command."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from memberlab.core.db import create_db_engine
from memberlab.core.migrate import migration_transaction
from memberlab.core.settings import get_settings
from memberlab.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_db_engine(get_settings().resolved_database_url)
    with engine.connect() as new_connection, migration_transaction(new_connection):
        _run(new_connection)
    engine.dispose()
