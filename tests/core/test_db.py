"""The store (``memberlab.core.db``): tenant scoping by construction, pragmas, time, migrations.

A session is opened *for* a tenant and then cannot see or write another tenant's rows,
whatever the query looks like; nobody has to remember a ``WHERE tenant_id = ...``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from conftest import POSTGRES_URL
from memberlab.core import db as db_module
from memberlab.core import migrate, tenants
from memberlab.core.app_state import AppState
from memberlab.core.db import Database, TenantScopeError, create_db_engine
from memberlab.core.models import Tenant
from memberlab.core.settings import Settings
from memberlab.ledger.models import LedgerEntry
from memberlab.members.models import Member, MemberTag
from memberlab.models import Base
from memberlab.programs.models import ProgramVersion

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class TwoTenants:
    """Tenants A and B, each with one member (``A-1``, ``B-1``) tagged ``vip``."""

    a: int
    b: int
    a_member: int  # internal ids
    b_member: int


def new_member(member_id: str, **fields: object) -> Member:
    return Member(
        member_id=member_id,
        enrolled_at=NOW,
        created_at=NOW,
        updated_at=NOW,
        consents={},
        status="active",
        **fields,
    )


def add_member(session: Session, member_id: str, *, city: str | None = None) -> Member:
    """A member tagged ``vip``, added and flushed in ``session``."""
    member = new_member(member_id, city=city)
    session.add(member)
    session.flush()
    session.add(MemberTag(member_pk=member.id, tag="vip"))
    session.flush()
    return member


@pytest.fixture
def two(database: Database) -> TwoTenants:
    with database.session(platform=True) as session:
        a = tenants.create_tenant(session, slug="tenant-a", name_zh="甲", name_en="A", now=NOW)
        b = tenants.create_tenant(session, slug="tenant-b", name_zh="乙", name_en="B", now=NOW)
        a_id, b_id = a.id, b.id
    with database.session(tenant_id=a_id) as session:
        a_member = add_member(session, "A-1", city="Shanghai").id
    with database.session(tenant_id=b_id) as session:
        b_member = add_member(session, "B-1", city="Beijing").id
    return TwoTenants(a_id, b_id, a_member, b_member)


def save(database: Database, tenant_id: int | None, *rows: Member) -> None:
    """Add ``rows`` in a unit of work for ``tenant_id`` (``None``: a session without a tenant)."""
    with database.session(tenant_id=tenant_id) as session:
        session.add_all(rows)


def move(database: Database, member_pk: int, *, by: int, to: int) -> None:
    """Tenant ``by`` tries to hand one of its members to tenant ``to``."""
    with database.session(tenant_id=by) as session:
        member = session.get(Member, member_pk)
        assert member is not None
        member.tenant_id = to


def every_member(database: Database) -> dict[str, tuple[int, str | None]]:
    """All members of all tenants, as the platform sees them: member_id -> (tenant, city)."""
    with database.session(platform=True) as session:
        rows = session.execute(select(Member.member_id, Member.tenant_id, Member.city))
        return {member_id: (tenant_id, city) for member_id, tenant_id, city in rows}


# --- reading --------------------------------------------------------------------------------------


def test_a_tenant_session_selects_only_its_own_rows(database: Database, two: TwoTenants) -> None:
    with database.session(tenant_id=two.a) as session:
        assert session.scalars(select(Member.member_id)).all() == ["A-1"]
        assert [m.member_id for m in session.scalars(select(Member))] == ["A-1"]
        assert session.scalar(select(func.count()).select_from(Member)) == 1
        assert session.scalar(select(func.count()).select_from(MemberTag)) == 1
        # A filter naming B's row finds nothing rather than B's row.
        assert session.scalar(select(Member).where(Member.member_id == "B-1")) is None


def test_get_by_primary_key_does_not_cross_tenants(database: Database, two: TwoTenants) -> None:
    with database.session(tenant_id=two.a) as session:
        assert session.get(Member, two.b_member) is None
        own = session.get(Member, two.a_member)
        assert own is not None
        assert own.member_id == "A-1"


def test_joins_and_subqueries_are_scoped_on_every_side(database: Database, two: TwoTenants) -> None:
    # B's member has a tag A's has not: only a query scoped on every side leaves it out
    with database.session(tenant_id=two.b) as session:
        session.add(MemberTag(member_pk=two.b_member, tag="b-only"))

    with database.session(tenant_id=two.a) as session:
        every_pair = session.execute(  # each member with each tag: more pairs if unscoped
            select(Member.member_id, MemberTag.tag).join(MemberTag, MemberTag.tag != "")
        ).all()
        tagged_b_only = session.scalars(
            select(Member.member_id).where(
                select(MemberTag.tag).where(MemberTag.tag == "b-only").exists()
            )
        ).all()
        counted = session.scalar(
            select(select(func.count()).select_from(MemberTag).scalar_subquery())
        )

    assert every_pair == [("A-1", "vip")]
    assert tagged_b_only == []
    assert counted == 1


def test_orm_update_and_delete_statements_touch_only_the_sessions_tenant(
    database: Database, two: TwoTenants
) -> None:
    with database.session(tenant_id=two.a) as session:
        updated = session.execute(update(Member).values(city="Hangzhou"))
        deleted = session.execute(delete(MemberTag).where(MemberTag.tag == "vip"))
        assert (updated.rowcount, deleted.rowcount) == (1, 1)

    assert every_member(database) == {"A-1": (two.a, "Hangzhou"), "B-1": (two.b, "Beijing")}
    with database.session(tenant_id=two.b) as session:
        assert session.scalars(select(MemberTag.tag)).all() == ["vip"]


# --- writing --------------------------------------------------------------------------------------


def test_new_rows_are_stamped_with_the_sessions_tenant(database: Database, two: TwoTenants) -> None:
    with database.session(tenant_id=two.b) as session:
        add_member(session, "B-2")

    assert every_member(database)["B-2"] == (two.b, None)


def test_inserting_a_row_for_another_tenant_is_refused(database: Database, two: TwoTenants) -> None:
    with pytest.raises(TenantScopeError, match="of another tenant"):
        save(database, two.a, new_member("EVIL", tenant_id=two.b))

    assert "EVIL" not in every_member(database)


def test_moving_a_row_to_another_tenant_is_refused(database: Database, two: TwoTenants) -> None:
    with pytest.raises(TenantScopeError, match="of another tenant"):
        move(database, two.a_member, by=two.a, to=two.b)

    assert every_member(database)["A-1"] == (two.a, "Shanghai")


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            lambda two: insert(Member).values(
                tenant_id=two.b,
                member_id="EVIL",
                enrolled_at=NOW,
                created_at=NOW,
                updated_at=NOW,
                consents={},
                status="active",
            ),
            id="insert",
        ),
        pytest.param(lambda two: update(Member).values(tenant_id=two.b), id="update"),
    ],
)
def test_a_statement_writing_another_tenants_id_is_refused(
    database: Database, two: TwoTenants, statement
) -> None:
    before = every_member(database)
    refused = False
    try:
        with database.session(tenant_id=two.a) as session:
            session.execute(statement(two))
    except TenantScopeError:
        refused = True

    assert refused
    assert every_member(database) == before


# --- sessions without a tenant --------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda s, two: s.scalars(select(Member)).all(), id="select"),
        pytest.param(lambda s, two: s.get(Member, two.a_member), id="get"),
        pytest.param(lambda s, two: s.scalar(select(func.count(MemberTag.tag))), id="count"),
        pytest.param(lambda s, two: s.execute(update(Member).values(city="X")), id="update"),
        pytest.param(lambda s, two: s.execute(delete(ProgramVersion)), id="delete"),
    ],
)
def test_a_session_without_a_tenant_refuses_tenant_data(
    database: Database, two: TwoTenants, query
) -> None:
    with (
        pytest.raises(TenantScopeError, match="without a tenant"),
        database.session() as session,
    ):
        query(session, two)

    assert every_member(database)["A-1"] == (two.a, "Shanghai")


def test_a_session_without_a_tenant_may_still_read_tables_of_no_tenant(
    database: Database, two: TwoTenants
) -> None:
    with database.session() as session:
        slugs = session.scalars(select(Tenant.slug).order_by(Tenant.slug)).all()

    assert slugs == ["tenant-a", "tenant-b"]


def test_a_row_written_without_a_tenant_is_refused(database: Database, two: TwoTenants) -> None:
    with pytest.raises(TenantScopeError, match="written without a tenant"):
        save(database, None, new_member("ORPHAN"))

    assert "ORPHAN" not in every_member(database)


def test_a_platform_session_sees_every_tenant(database: Database, two: TwoTenants) -> None:
    with database.session(platform=True) as session:
        owners = session.execute(
            select(Member.member_id, Member.tenant_id).order_by(Member.member_id)
        ).all()

    assert owners == [("A-1", two.a), ("B-1", two.b)]


# --- SQLite ---------------------------------------------------------------------------------------


def pragma(engine_url: str, name: str) -> object:
    engine = create_db_engine(engine_url)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql(f"PRAGMA {name}").scalar()
    finally:
        engine.dispose()


def test_a_sqlite_file_runs_in_wal_mode_with_foreign_keys_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"

    assert pragma(url, "journal_mode") == "wal"
    assert pragma(url, "foreign_keys") == 1
    assert pragma(url, "cache_size") == -64 * 1024  # KiB: 64 MiB, not SQLite's 2 MiB


def test_an_in_memory_sqlite_has_foreign_keys_on_too() -> None:
    assert pragma("sqlite://", "foreign_keys") == 1
    assert pragma("sqlite://", "journal_mode") == "memory"  # WAL needs a file


def test_foreign_keys_are_enforced(database: Database, two: TwoTenants) -> None:
    dangling = MemberTag(member_pk=two.a_member + two.b_member + 1000, tag="dangling")

    with pytest.raises(IntegrityError):
        save(database, two.a, dangling)


@pytest.mark.parametrize("kind", ["ledger entry", "tag"])
def test_a_members_row_cannot_name_another_tenants_member(
    database: Database, two: TwoTenants, kind: str
) -> None:
    """The member's key includes the tenant: A's session, stamped with A, cannot write for
    B-1, neither a posting nor a tag."""
    row = (
        LedgerEntry(
            member_pk=two.b_member, seq=1, kind="adjustment", at=NOW, recorded_at=NOW, detail={}
        )
        if kind == "ledger entry"
        else MemberTag(member_pk=two.b_member, tag="a-owned")
    )

    with pytest.raises(IntegrityError), database.session(tenant_id=two.a) as session:
        session.add(row)


def test_every_table_of_a_members_rows_has_the_member_key() -> None:
    """A table with a ``member_pk`` references its member by tenant and id (``member_key``)."""
    for table in Base.metadata.sorted_tables:
        if "member_pk" not in table.c:
            continue
        keys = {
            (
                tuple(key.column_keys),
                key.referred_table.name,
                tuple(e.column.name for e in key.elements),
            )
            for key in table.foreign_key_constraints
            if "member_pk" in key.column_keys
        }
        assert keys == {(("tenant_id", "member_pk"), "members", ("tenant_id", "id"))}, table.name


def test_a_savepoint_rolls_back_on_its_own(database: Database, two: TwoTenants) -> None:
    """SQLAlchemy, not pysqlite, owns BEGIN: nested transactions work as on PostgreSQL."""
    with database.session(tenant_id=two.a) as session:
        with pytest.raises(IntegrityError), session.begin_nested():
            add_member(session, "A-1")  # the member number is taken
        add_member(session, "A-2")

    assert set(every_member(database)) == {"A-1", "A-2", "B-1"}


# --- instants -------------------------------------------------------------------------------------


def test_an_aware_instant_comes_back_as_the_same_instant_in_utc(database: Database) -> None:
    shanghai = datetime(2026, 11, 25, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    with database.session(platform=True) as session:
        tenants.create_tenant(session, slug="clocked", name_zh="钟", name_en="Clock", now=shanghai)

    with database.session(platform=True) as session:
        loaded = session.scalar(select(Tenant.created_at).where(Tenant.slug == "clocked"))
        found = session.scalar(
            select(Tenant.slug).where(
                Tenant.created_at == datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
            )
        )
        later = session.scalar(
            select(func.count())
            .select_from(Tenant)
            .where(
                Tenant.slug == "clocked",
                Tenant.created_at
                > datetime(2026, 11, 25, 16, 29, tzinfo=ZoneInfo("Asia/Shanghai")),
            )
        )

    assert loaded == shanghai
    assert loaded.tzinfo is UTC
    assert (loaded.hour, loaded.minute) == (8, 30)
    assert found == "clocked"
    assert later == 1


def test_a_naive_datetime_is_refused(database: Database) -> None:
    with (
        pytest.raises(StatementError, match="naive datetime"),
        database.session(platform=True) as session,
    ):
        tenants.create_tenant(
            session, slug="naive", name_zh="天真", name_en="Naive", now=datetime(2026, 11, 25, 8)
        )

    with database.session(platform=True) as session:
        assert session.scalar(select(Tenant).where(Tenant.slug == "naive")) is None


# --- migrations -----------------------------------------------------------------------------------


def test_the_schema_is_at_the_head_revision(database: Database) -> None:
    assert migrate.current_revision(database.bind) == migrate.head_revision()


def test_upgrading_again_changes_nothing(database: Database) -> None:
    assert migrate.upgrade(database.bind) == migrate.head_revision()


def test_the_migrations_build_the_tables_the_models_describe(database: Database) -> None:
    context = MigrationContext.configure(database.bind, opts={"compare_type": True})

    assert compare_metadata(context, Base.metadata) == []


def test_the_raw_tables_carry_the_tenant(database: Database, two: TwoTenants) -> None:
    """The scoping is not only in the ORM: every row of tenant data names its tenant."""
    rows = database.bind.execute(
        text("SELECT member_id, tenant_id FROM members ORDER BY member_id")
    )

    assert [tuple(row) for row in rows] == [("A-1", two.a), ("B-1", two.b)]


# --- PostgreSQL connections ----------------------------------------------------------------------


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A restart or ``pg_terminate_backend`` leaves a dead connection in the pool; the next
    request gets a new one instead of an error, though recently used connections are not
    pinged."""
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 3600.0)  # no ping: the socket tells
    engine = create_db_engine(POSTGRES_URL, pool_size=1)
    admin = create_db_engine(POSTGRES_URL)
    try:
        first = _backend_pid(engine)
        assert _backend_pid(engine) == first  # the pool reuses its connection
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        for _ in range(100):  # the server's goodbye reaches the socket
            with admin.connect() as connection:
                gone = connection.execute(
                    text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": first},
                ).scalar_one()
            if gone:
                break
            time.sleep(0.02)

        assert _backend_pid(engine) != first
    finally:
        engine.dispose()
        admin.dispose()


def test_a_connection_idle_for_long_is_pinged_before_use(monkeypatch: pytest.MonkeyPatch) -> None:
    pings: list[object] = []
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = create_db_engine(POSTGRES_URL, pool_size=1)
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(connection))
    try:
        _backend_pid(engine)
        assert pings == []  # a new connection is not pinged
        _backend_pid(engine)
        assert len(pings) == 1

        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
        _backend_pid(engine)
        assert len(pings) == 1  # used a moment ago: trusted
    finally:
        engine.dispose()


def test_a_server_process_keeps_its_connections_open_under_many_requests_at_once(
    tmp_path: Path,
) -> None:
    """Sixteen requests at once on a server process reuse connections: SQLAlchemy's default
    pool of 5 closed every connection above it on its return, and the next request started
    a new PostgreSQL server process (about 10 ms of the server's CPU)."""
    settings = Settings(data_dir=tmp_path, database_url=POSTGRES_URL, db_pool_size=16)
    engine = AppState.from_settings(settings).database.engine
    try:
        held = [engine.connect() for _ in range(16)]
        pids = {c.exec_driver_sql("select pg_backend_pid()").scalar() for c in held}
        for connection in held:
            connection.close()
        assert engine.pool.checkedin() == 16  # all kept, none closed
        again = [engine.connect() for _ in range(16)]
        assert {c.exec_driver_sql("select pg_backend_pid()").scalar() for c in again} == pids
        for connection in again:
            connection.close()
    finally:
        engine.dispose()
