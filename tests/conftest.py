"""Shared fixtures: every storage test runs on SQLite *and* PostgreSQL.

The ``db`` fixture is parametrized over both backends. Each backend is migrated once per
run (SQLite: a file in a temporary folder; PostgreSQL: a fresh schema in the ``test``
database, dropped at the end), and each test runs inside a transaction that is rolled
back, so tests are independent and fast. PostgreSQL must be reachable: the run fails,
rather than skips, when it is not.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from memberlab.api import create_app
from memberlab.core import migrate
from memberlab.core.app_state import AppState
from memberlab.core.db import Database, create_db_engine
from memberlab.core.pii import PersonalDataVault
from memberlab.core.settings import Settings

POSTGRES_URL = os.environ.get(
    "MEMBERLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]
FIXED_NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TEST_SECRET = "test-secret-key-not-for-production"


@pytest.fixture(scope="session", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated engine for one backend, shared by the whole run."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "memberlab.db"
        engine = create_db_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        yield engine
        engine.dispose()
        return

    with postgres_engine_in_new_schema() as engine:
        yield engine


@contextmanager
def postgres_engine_in_new_schema(revision: str = "head") -> Iterator[Engine]:
    """A PostgreSQL engine migrated to ``revision`` in a schema of its own, dropped afterwards."""
    schema = f"ml_test_{secrets.token_hex(4)}"
    admin = create_db_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({exc.orig}). The test suite runs "
            "every storage test on PostgreSQL too; start the server or set "
            "MEMBERLAB_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    engine = create_db_engine(POSTGRES_URL, connect_args={"options": f"-c search_path={schema}"})
    try:
        migrate.upgrade(engine, revision)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def backend(engine: Engine) -> str:
    return engine.dialect.name


@pytest.fixture
def database(engine: Engine) -> Iterator[Database]:
    """A ``Database`` whose every commit lands in one transaction rolled back after the test."""
    connection = engine.connect()
    outer = connection.begin()
    try:
        yield Database(connection)
    finally:
        outer.rollback()
        connection.close()


class FixedClock:
    """A clock the test moves by hand: ``clock.now = ...``."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained models (Chinese sentiment) shared by the whole run: trained once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def settings(tmp_path: Path, model_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path, language="en", secret_key=TEST_SECRET, model_dir=model_dir)


@pytest.fixture
def state(settings: Settings, database: Database, clock: FixedClock) -> AppState:
    return AppState(settings, database, PersonalDataVault(TEST_SECRET), clock)


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state), raise_server_exceptions=False) as test_client:
        yield test_client
