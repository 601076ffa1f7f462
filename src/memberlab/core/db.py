"""The store: engine, sessions, the declarative base and tenant scoping.

SQLite (embedded default) runs in WAL mode with foreign keys on and with SQLAlchemy in charge
of BEGIN, so savepoints and rolled-back test transactions work as on PostgreSQL.

Tenancy is enforced by construction: every table of tenant data inherits ``TenantScoped``;
a session is opened *for* a tenant (``Database.session(tenant_id=...)``) and then every ORM
query it runs is filtered to that tenant and every row it inserts is stamped with it. A
session without a tenant refuses to touch tenant data unless it is explicitly a platform
session (used by tenant administration and migrations).
"""

from __future__ import annotations

import secrets
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    column,
    create_engine,
    event,
    table,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
    with_loader_criteria,
)
from sqlalchemy.types import TypeDecorator

from memberlab.core import fastsql, jsoncodec
from memberlab.core.bulkrows import PACKED_SCHEMA

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, stored in UTC on every backend.

    SQLite has no time zones; this type refuses naive datetimes on the way in and
    returns aware UTC datetimes on the way out, so comparisons are the same everywhere.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TenantScoped:
    """Mixin for every table that holds a tenant's data: the row carries its tenant.

    No index of its own: each table declares indexes that lead with ``tenant_id``.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(BigId, ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False)


class TenantConfiguration:
    """Mixin for a tenant's tables that configure what every request does (the program's
    activations, the webhook endpoints). Writing one of their rows through the ORM renews
    the tenant's ``config_stamp`` in the same transaction: caches of that configuration in
    each server process (``core.tenant_cache``) are keyed by the stamp, which every request
    reads with its API key, so a change made anywhere is seen by the next request everywhere.
    """


# the two columns of ``tenants`` the stamp needs (``core.models`` imports this module)
_tenants_stamp = table("tenants", column("id"), column("config_stamp"))
CONFIG_STAMP = "config_stamp"  # ``Session.info`` key: the stamp read with the request's key


def new_config_stamp() -> str:
    """Random, not a counter: a stamp is never reused, not even by a rolled-back transaction
    or by another database that the same process serves (tests, tenants restored)."""
    return secrets.token_hex(16)


class TenantScopeError(RuntimeError):
    """A programming error: tenant data touched without a tenant, or across tenants."""


def create_db_engine(url: str, *, pool_size: int = 20, **kwargs: Any) -> Engine:
    """An engine with the pragmas and connection settings MemberLab relies on.

    PostgreSQL: ``pool_size`` connections stay open, and up to as many again are opened for
    peaks. (SQLAlchemy's default of 5 kept, under 8 requests at once per server process,
    opening and closing connections all the time, each a new server process: about 10 ms
    of the server's CPU each.)"""
    kwargs.setdefault("json_serializer", jsoncodec.dumps)
    if url.startswith("sqlite"):
        # check_same_thread off: the pool hands a connection to one thread at a time, and
        # the API runs sync routes on worker threads.
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", pool_size)
    kwargs.setdefault("max_overflow", pool_size)
    engine = create_engine(url, **kwargs)
    _check_connections_on_checkout(engine)
    fastsql.install(engine)
    return engine


# A pooled connection used within this many seconds is trusted without a round trip.
PING_AFTER_IDLE_SECONDS = 5.0


def _check_connections_on_checkout(engine: Engine) -> None:
    """Hand out only live server connections, without a round trip on every request.

    SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` at every checkout: one more round trip
    and a tenth of a purchase's statements. Instead: a connection whose socket has something
    to read while idle has been closed by the server (restart, ``pg_terminate_backend``,
    idle timeout: the server says so, or the socket is at EOF), which a zero-timeout
    ``select`` sees for free; and one idle for longer than ``PING_AFTER_IDLE_SECONDS`` is
    pinged, for the drops nobody announces. A dead one raises ``DisconnectionError``, on
    which the pool discards it and connects again."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None:
            return  # a new connection
        try:
            readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
        except (OSError, ValueError) as error:  # closed: no file descriptor any more
            raise DisconnectionError(str(error)) from error
        if readable:
            raise DisconnectionError("the server closed the connection while it was idle")
        if time.monotonic() - checked_in_at > PING_AFTER_IDLE_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except engine.dialect.loaded_dbapi.Error as error:
                if engine.dialect.is_disconnect(error, dbapi_connection, None):
                    raise DisconnectionError(str(error)) from error
                raise


SQLITE_CACHE_KIB = 64 * 1024


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's own handling breaks SAVEPOINT).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # a page cache of up to 64 MiB per connection (SQLite's default is 2 MiB), taken as
        # pages are read: a bulk import's index updates land all over the ledger's indexes
        # (by time, by order id), and with 2 MiB most of them read their page back in.
        # 200,000 purchases: the import's writing CPU 71-84 -> 53-59 us per purchase.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        # where a bulk import's packed rows are loaded (``bulkio.insert_packed``): attached
        # now, as it cannot be in a transaction; an empty in-memory database costs nothing
        cursor.execute(f"ATTACH DATABASE ':memory:' AS {PACKED_SCHEMA}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock at the start: two transactions that read a member's
        # state and then write it queue up instead of failing with SQLITE_BUSY mid-way.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine and the sessions made from it. One per process (or per test)."""

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind
        options: dict[str, Any] = {"expire_on_commit": False}
        if isinstance(bind, Connection):
            # Tests: the connection holds an outer transaction that is rolled back at the
            # end; a session's commit becomes a savepoint release inside it.
            options["join_transaction_mode"] = "create_savepoint"
        self._sessions = sessionmaker(bind=bind, **options)

    @property
    def engine(self) -> Engine:
        return self.bind if isinstance(self.bind, Engine) else self.bind.engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def new_session(self, *, tenant_id: int | None = None, platform: bool = False) -> Session:
        session = self._sessions()
        session.info["tenant_id"] = tenant_id
        session.info["platform"] = platform
        return session

    @contextmanager
    def session(self, *, tenant_id: int | None = None, platform: bool = False) -> Iterator[Session]:
        """A unit of work that commits on success and rolls back on any error."""
        with finished(self.new_session(tenant_id=tenant_id, platform=platform)) as session:
            yield session


@contextmanager
def finished(session: Session) -> Iterator[Session]:
    """Commit ``session`` when the block ends, roll it back if the block raised, close it
    either way (for a session opened elsewhere, e.g. on another thread)."""
    try:
        yield session
        if session.in_transaction():  # not already committed by the work (``replay_or_run``)
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def session_tenant(session: Session) -> int:
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        raise TenantScopeError("this session is not opened for a tenant")
    return tenant_id


def utcnow() -> datetime:
    """The wall clock, for the edges only (API, CLI, jobs). Domain code takes ``as_of``."""
    return datetime.now(UTC)


def _mapper_is_tenant_scoped(mapper: Any) -> bool:
    return isinstance(mapper.class_, type) and issubclass(mapper.class_, TenantScoped)


@event.listens_for(Session, "do_orm_execute")
def _scope_queries_to_tenant(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update:
        _check_written_tenant(state)
    if not (state.is_select or state.is_update or state.is_delete):
        return
    tenant_id = state.session.info.get("tenant_id")
    if tenant_id is None:
        if state.session.info.get("platform"):
            return
        if any(_mapper_is_tenant_scoped(m) for m in state.all_mappers):
            raise TenantScopeError("tenant data queried from a session without a tenant")
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
            track_closure_variables=False,
        )
    )


def _check_written_tenant(state: ORMExecuteState) -> None:
    """ORM insert/update statements may only write the session's own tenant id."""
    if not any(_mapper_is_tenant_scoped(m) for m in state.all_mappers):
        return
    tenant_id = state.session.info.get("tenant_id")
    if tenant_id is None and state.session.info.get("platform"):
        return
    written: list[Any] = []
    values = getattr(state.statement, "_values", None) or {}
    for target, value in values.items():
        if getattr(target, "key", target) == "tenant_id":
            written.append(getattr(value, "value", value))
    parameters = state.parameters
    rows = parameters if isinstance(parameters, list) else [parameters] if parameters else []
    for row in rows:
        if "tenant_id" in row:
            written.append(row["tenant_id"])
        elif state.is_insert and not values:
            raise TenantScopeError("tenant data inserted without a tenant_id")
    for value in written:
        if tenant_id is None or value != tenant_id:
            raise TenantScopeError("a statement wrote another tenant's id")


@event.listens_for(Session, "before_flush")
def _stamp_new_rows_with_tenant(session: Session, _context: Any, _instances: Any) -> None:
    tenant_id = session.info.get("tenant_id")
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantScoped):
            continue
        if obj.tenant_id is None:
            if tenant_id is None:
                raise TenantScopeError(f"{type(obj).__name__} written without a tenant")
            obj.tenant_id = tenant_id
        elif tenant_id is not None and obj.tenant_id != tenant_id:
            raise TenantScopeError(f"{type(obj).__name__} of another tenant written")


@event.listens_for(Session, "before_flush")
def _renew_changed_config_stamps(session: Session, _context: Any, _instances: Any) -> None:
    changed = {
        obj.tenant_id or session.info.get("tenant_id")
        for obj in (*session.new, *session.dirty, *session.deleted)
        if isinstance(obj, TenantConfiguration)
    }
    if not changed:
        return
    for tenant_id in changed:
        session.execute(
            update(_tenants_stamp)
            .where(_tenants_stamp.c.id == tenant_id)
            .values(config_stamp=new_config_stamp())
        )
    # this session's own reads must not come from a cache of the stamp it started with
    session.info[CONFIG_STAMP] = None
