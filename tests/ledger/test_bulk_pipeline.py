"""The bulk import with worker processes (chunks worked out while others are read and
written) gives the same ledger as one chunk at a time, also where chunks depend on each
other, and where a live write changes a member between a chunk's reading and its writing.
On PostgreSQL, with a real engine (the pipeline's sessions follow one another)."""

from __future__ import annotations

import gc
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from conftest import TEST_SECRET, postgres_engine_in_new_schema
from memberlab.core import migrate
from memberlab.core import tenants as tenant_service
from memberlab.core.db import Database, create_db_engine
from memberlab.core.pii import PersonalDataVault
from memberlab.datasets.demo import sample_program_text
from memberlab.ledger import bulk, service
from memberlab.ledger.schemas import AdjustmentCreate
from memberlab.programs import service as program_service

NOW = datetime(2026, 11, 25, tzinfo=UTC)
TABLES = {
    "ledger_entries": (
        "seq, kind, at, reference, points, growth, spend, orders, cast(detail as text)"
    ),
    "postings": "entry_seq, leg, source, destination, amount, lot_seq, at",
    "points_lots": "seq, amount, remaining, released, noticed, expires_at, available_at",
    "member_states": "tier, available, pending, debt, lifetime_growth, as_of, next_seq",
    "orders": "order_id, points_earned, growth_earned, entry_seq, cast(record as text)",
    "order_returns": "return_id, order_id, entry_seq, points_reversed, growth_reversed",
    "tier_changes": "at, from_tier, to_tier, reason",
}


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """A real engine (the pipeline needs two connections), in a schema of its own."""
    with postgres_engine_in_new_schema() as engine:
        yield engine


def tenant(database: Database, slug: str) -> int:
    with database.session(platform=True) as session:
        tenant_id = tenant_service.create_tenant(
            session, slug=slug, name_zh=slug, name_en=slug, now=NOW
        ).id
        session.info["tenant_id"] = tenant_id
        loaded = program_service.load(
            session, source=sample_program_text("teahouse"), created_by="test", now=NOW
        )
        program_service.activate(
            session,
            version_id=loaded.version.id,
            effective_from=datetime(2020, 1, 1, tzinfo=UTC),
            activated_by="test",
            now=NOW,
        )
    return tenant_id


def ledger(database: Database, tenant_id: int) -> dict[str, list]:
    out = {}
    with database.engine.connect() as connection:
        for table, columns in TABLES.items():
            rows = connection.execute(
                text(
                    f"select m.member_id, {columns} from {table} t "
                    "join members m on m.id = t.member_pk where t.tenant_id = :t"
                ),
                {"t": tenant_id},
            )
            out[table] = sorted(tuple(str(v) for v in row) for row in rows)
    return out


def history_file(tmp_path: Path) -> Path:
    rows = ["kind,member_id,order_id,return_id,occurred_at,channel,sku,category,quantity,amount"]
    for n in range(12):
        for k in range(4):
            rows.append(
                f"purchase,M{n},M{n}-{k},,2025-0{k + 1}-1{n % 9} 10:00:00,store,tea,tea,1,"
                f"{120 + 37 * n + k}.50"
            )
    # chunks that depend on each other: an order id used again by the next member (skipped)
    # and returns, by the next members, of orders stored by the chunk before
    rows.append("purchase,M5,M4-1,,2025-06-01 10:00:00,store,tea,tea,1,10.00")
    rows.append("return,M6,M5-2,M6-r,2025-03-17 12:00:00,,tea,,1,")
    rows.append("return,M7,M6-0,M7-r,2025-01-20 12:00:00,,,,1,")
    path = tmp_path / "transactions.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_workers_give_the_ledger_of_one_chunk_at_a_time(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    """On SQLite the workers send their rows as database images (``bulkrows.PackedRows``),
    which must store what the rows themselves store."""
    path = history_file(tmp_path)
    packed: list[int] = []
    if backend == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'pipeline.db'}")
        request.addfinalizer(engine.dispose)
        migrate.upgrade(engine)
        insert_packed = bulk.insert_packed

        def counted(session, rows, tables):
            packed.append(len(rows.counts))
            insert_packed(session, rows, tables)

        monkeypatch.setattr(bulk, "insert_packed", counted)
    else:
        engine = request.getfixturevalue("engine")
    database = Database(engine)
    reports, ledgers = [], []
    for slug, workers in (("seq", 0), ("pipe", 2)):
        tenant_id = tenant(database, slug)
        seen: list[tuple[int, int]] = []
        report = bulk.import_transactions(
            database,
            tenant_id=tenant_id,
            path=path,
            now=NOW,
            chunk_members=1,
            workers=workers,
            progress=lambda done, total, out=seen: out.append((done, total)),
        )
        assert seen[-1] == (12, 12)
        assert gc.isenabled()  # paused during the import, on again after
        reports.append((report.applied, report.skipped, report.rejected, report.rejects))
        ledgers.append(ledger(database, tenant_id))
        again = bulk.import_transactions(
            database, tenant_id=tenant_id, path=path, now=NOW, chunk_members=1, workers=workers
        )
        assert again.applied == 0
        assert ledger(database, tenant_id) == ledgers[-1]
    assert reports[0] == reports[1]
    assert reports[0][1] == 1  # the order id used twice
    assert ledgers[0] == ledgers[1]
    assert len(ledgers[0]["order_returns"]) == 2  # both returns across chunks applied
    if backend == "sqlite":
        # every chunk of both imports with workers came packed (the rerun's empty)
        assert len(packed) == 24
        assert packed.count(0) == 12


@pytest.mark.parametrize("workers", [0, 2])
def test_postgresql_writes_a_chunk_without_the_key_checks_its_members_lock_makes_sure_of(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Every row a chunk writes has its member as its only key, and the members are locked
    before it writes: the per-row checks of those keys are off while it does (the tests'
    role may turn them off), and on again after."""
    database = Database(engine)
    tenant_id = tenant(database, f"unchecked-{workers}")
    settings: list[tuple[str, str]] = []
    insert_rows = bulk.insert_rows

    def recording(session, table, columns, rows):
        show = "SHOW session_replication_role"
        settings.append((table.name, session.connection().exec_driver_sql(show).scalar()))
        return insert_rows(session, table, columns, rows)

    monkeypatch.setattr(bulk, "insert_rows", recording)
    report = bulk.import_transactions(
        database,
        tenant_id=tenant_id,
        path=history_file(tmp_path),
        now=NOW,
        chunk_members=2,
        workers=workers,
    )
    assert report.applied == 49
    ledger_tables = {name for name, _, _ in bulk.ChunkRows().inserts()}
    written = [setting for table, setting in settings if table in ledger_tables]
    assert len(written) == 6 * 7  # each chunk's seven tables
    assert set(written) == {"replica"}
    # the members it enrols (their key is to the tenant, which nothing locks) are checked
    assert {setting for table, setting in settings if table == "members"} == {"origin"}
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW session_replication_role").scalar() == "origin"


def test_the_tables_written_without_checks_have_no_trigger_or_rule_it_would_skip(
    engine: Engine,
) -> None:
    """``session_replication_role = replica`` turns ordinary triggers and rules off too: a
    trigger added to one of these tables must be one that fires ``ALWAYS``, or the import
    must stop skipping the checks."""
    written = list(bulk.ChunkRows().inserts())
    names = [name for name, _, _ in written]
    with engine.connect() as connection:
        triggers = connection.execute(
            text(
                "select tgrelid::regclass::text, tgname from pg_trigger "
                "where not tgisinternal and tgenabled <> 'A' "
                "and tgrelid::regclass::text = any(:names)"
            ),
            {"names": names},
        ).all()
        rules = connection.execute(
            text("select tablename, rulename from pg_rules where tablename = any(:names)"),
            {"names": names},
        ).all()
        foreign_keys = connection.execute(
            text(
                "select conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint "
                "where contype = 'f' and conrelid::regclass::text = any(:names)"
            ),
            {"names": names},
        ).all()
    assert len(names) == 7
    assert triggers == []
    assert rules == []
    # and their only keys are to their members, which the import locks
    assert sorted(table for table, _ in foreign_keys) == sorted(names)
    assert {definition for _, definition in foreign_keys} == {
        "FOREIGN KEY (tenant_id, member_pk) REFERENCES members(tenant_id, id) ON DELETE RESTRICT"
    }


def test_the_members_lock_says_whether_every_member_is_there_and_the_tenants(
    engine: Engine, tmp_path: Path
) -> None:
    database = Database(engine)
    mine, other = tenant(database, "lock-mine"), tenant(database, "lock-other")
    for tenant_id in (mine, other):
        bulk.import_transactions(
            database, tenant_id=tenant_id, path=history_file(tmp_path), now=NOW, workers=0
        )
    with database.session(tenant_id=mine) as session:
        pks = {
            tenant_id: sorted(
                session.connection()
                .execute(text("select id from members where tenant_id = :t"), {"t": tenant_id})
                .scalars()
            )
            for tenant_id in (mine, other)
        }
        assert bulk._lock_members(session, mine, pks[mine])
        assert not bulk._lock_members(session, mine, [*pks[mine], max(pks[other]) + 1000])
        assert not bulk._lock_members(session, mine, [pks[mine][0], pks[other][0]])


@pytest.mark.parametrize(
    ("backend", "workers", "commit_min_events", "commit_max_seconds", "committed"),
    [
        # SQLite, groups of 10 events or more: (M0, M1, M10) committed, (M11, fifth) not; in
        # one process, as with workers the importer may also commit when it would wait for
        # one (``_CommitGroup.before_waiting``), which depends on their speed
        ("sqlite", 0, 10, 60.0, {"M0", "M1", "M10"}),
        ("sqlite", 2, 1, 60.0, {"M0", "M1", "M10", "M11"}),  # a commit per chunk
        ("sqlite", 2, 10**9, 0.0, {"M0", "M1", "M10", "M11"}),  # the same, by the time bound
        ("postgresql", 2, 10, 60.0, {"M0", "M1", "M10", "M11"}),  # always a commit per chunk
    ],
)
def test_a_write_failing_midway_keeps_what_was_committed_and_a_rerun_finishes(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    workers: int,
    commit_min_events: int,
    commit_max_seconds: float,
    committed: set[str],
) -> None:
    """The fifth chunk's write fails (the server gone, say), with workers while they work out
    the next:
    the error reaches the caller, the chunks committed before are kept and nothing of the
    failing transaction or later is, and the rerun gives the ledger of an import never
    stopped. (Chunks in member order: M0, M1, M10, M11, M2, ...; 4 events each.)"""
    path = history_file(tmp_path)
    if backend == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'midway.db'}")
        migrate.upgrade(engine)
    database = Database(engine)
    reference = tenant(database, f"whole-{commit_min_events}-{commit_max_seconds:.0f}")
    bulk.import_transactions(
        database, tenant_id=reference, path=path, now=NOW, chunk_members=1, workers=0
    )

    stopped = tenant(database, f"stopped-{commit_min_events}-{commit_max_seconds:.0f}")
    write = bulk.write_chunk
    calls = []

    def failing_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise ConnectionError("server closed the connection")
        return write(*args, **kwargs)

    monkeypatch.setattr(bulk, "write_chunk", failing_write)
    monkeypatch.setattr(bulk, "COMMIT_MIN_EVENTS", commit_min_events)
    monkeypatch.setattr(bulk, "COMMIT_MAX_SECONDS", commit_max_seconds)
    with pytest.raises(ConnectionError):
        bulk.import_transactions(
            database, tenant_id=stopped, path=path, now=NOW, chunk_members=1, workers=workers
        )
    members = {row[0] for row in ledger(database, stopped)["member_states"]}
    assert members == committed  # in member order
    assert gc.isenabled()  # paused during the import, on again after the error

    monkeypatch.setattr(bulk, "write_chunk", write)
    bulk.import_transactions(
        database, tenant_id=stopped, path=path, now=NOW, chunk_members=1, workers=workers
    )
    assert ledger(database, stopped) == ledger(database, reference)


def later_file(tmp_path: Path) -> Path:
    rows = ["kind,member_id,order_id,occurred_at,channel,sku,category,quantity,amount"]
    rows += [
        f"purchase,M{n},M{n}-later,2025-07-02 10:00:00,store,tea,tea,1,88.00" for n in range(12)
    ]
    path = tmp_path / "later.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def adjust_live(database: Database, tenant_id: int, member_id: str) -> None:
    """What the API does for POST /members/{id}/adjustments: one unit of work."""
    with database.session(tenant_id=tenant_id) as session:
        ctx = service.LedgerContext(
            session=session,
            tenant_id=tenant_id,
            now=NOW,
            vault=PersonalDataVault(TEST_SECRET),
            actor="test",
        )
        body = AdjustmentCreate(points=55, reason="goodwill")
        assert service.adjust(ctx, member_id, body, key=f"adj-{member_id}").status_code == 201


def test_a_live_write_between_reading_and_writing_a_chunk_is_not_lost(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """M3 is adjusted live after its chunk was read and before it was written: the chunk is
    worked out again from M3's new state, which gives the ledger of the adjustment first."""
    path, later = history_file(tmp_path), later_file(tmp_path)
    database = Database(engine)
    reference = tenant(database, "adjust-first")
    bulk.import_transactions(database, tenant_id=reference, path=path, now=NOW, workers=0)
    adjust_live(database, reference, "M3")
    bulk.import_transactions(database, tenant_id=reference, path=later, now=NOW, workers=0)

    racing = tenant(database, "adjust-racing")
    bulk.import_transactions(database, tenant_id=racing, path=path, now=NOW, workers=0)
    prepare = bulk._prepare
    adjusted = []

    def prepare_then_adjust(session, context, chunk, report, *, lock, **options):
        read = prepare(session, context, chunk, report, lock=lock, **options)
        if not lock and "M3" in chunk["member_id"].to_list() and not adjusted:
            adjusted.append(True)
            adjust_live(database, racing, "M3")  # its own transaction, committed
        return read

    monkeypatch.setattr(bulk, "_prepare", prepare_then_adjust)
    bulk.import_transactions(
        database, tenant_id=racing, path=later, now=NOW, chunk_members=2, workers=2
    )
    assert adjusted
    assert ledger(database, racing) == ledger(database, reference)


def test_a_live_write_on_sqlite_gets_in_while_an_import_waits_for_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite keeps no queue of waiting writers. The import has read (and holds the write
    lock for) the first chunks while its worker processes are still starting: it commits
    before waiting for them, so a live write made then is in before the first chunk is
    written, not after the import."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'live.db'}")
    migrate.upgrade(engine)
    database = Database(engine)
    tenant_id = tenant(database, "live")
    bulk.import_transactions(database, tenant_id=tenant_id, path=history_file(tmp_path), now=NOW)
    order: list[str] = []
    first_read = threading.Event()
    prepare, write = bulk._prepare, bulk.write_chunk

    def prepare_and_tell(*args, **kwargs):
        read = prepare(*args, **kwargs)
        first_read.set()
        return read

    def write_and_tell(*args, **kwargs):
        write(*args, **kwargs)
        order.append("chunk")

    monkeypatch.setattr(bulk, "_prepare", prepare_and_tell)
    monkeypatch.setattr(bulk, "write_chunk", write_and_tell)
    importer = threading.Thread(
        target=bulk.import_transactions,
        args=(database,),
        kwargs={
            "tenant_id": tenant_id, "path": later_file(tmp_path), "now": NOW,
            "chunk_members": 1, "workers": 2,
        },
    )  # fmt: skip
    importer.start()
    assert first_read.wait(60)
    adjust_live(database, tenant_id, "M3")
    order.append("live")
    importer.join(60)
    assert not importer.is_alive()
    assert order.count("chunk") == 12
    assert order[0] == "live"
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_large_import_leaves_the_planner_statistics_of_what_it_loaded(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """Without them, PostgreSQL found a member by number by scanning the tenant's members."""
    if backend == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'stats.db'}")
        migrate.upgrade(engine)
    database = Database(engine)
    tenant_id = tenant(database, f"stats-{backend}")
    monkeypatch.setattr(bulk, "ANALYZE_MIN_APPLIED", 40)  # the file's 49 events
    bulk.import_transactions(database, tenant_id=tenant_id, path=history_file(tmp_path), now=NOW)
    with engine.connect() as connection:
        if backend == "sqlite":
            analyzed = connection.exec_driver_sql("select tbl from sqlite_stat1").scalars()
        else:
            analyzed = connection.exec_driver_sql(
                "select relname from pg_stat_user_tables where last_analyze is not null"
                " and schemaname = current_schema()"
            ).scalars()
        assert {"orders", "ledger_entries", "members"} <= set(analyzed)


def test_returns_by_two_members_of_one_stored_order_are_applied_in_turn(
    engine: Engine, tmp_path: Path
) -> None:
    """M1's order of 3 cups, stored by an earlier import; M2 returns 2 and M3 then asks to
    return 2: with the chunks worked out at once, M3's must still see M2's return and be
    refused for returning more than was bought, as one chunk at a time would."""
    first = tmp_path / "first.csv"
    first.write_text(
        "kind,member_id,order_id,return_id,occurred_at,channel,sku,category,quantity,amount\n"
        "purchase,M1,O-1,,2025-01-05 10:00:00,store,tea,tea,3,90.00\n",
        encoding="utf-8",
    )
    returns = tmp_path / "returns.csv"
    returns.write_text(
        "kind,member_id,order_id,return_id,occurred_at,channel,sku,category,quantity,amount\n"
        "return,M2,O-1,R-2,2025-01-06 10:00:00,,tea,,2,\n"
        "return,M3,O-1,R-3,2025-01-07 10:00:00,,tea,,2,\n",
        encoding="utf-8",
    )
    database = Database(engine)
    outcomes = []
    for slug, workers in (("turns-seq", 0), ("turns-pipe", 2)):
        tenant_id = tenant(database, slug)
        bulk.import_transactions(database, tenant_id=tenant_id, path=first, now=NOW, workers=0)
        report = bulk.import_transactions(
            database, tenant_id=tenant_id, path=returns, now=NOW, chunk_members=1, workers=workers
        )
        outcomes.append(
            ([r["key"] for r in report.rejects], ledger(database, tenant_id)["order_returns"])
        )
    assert outcomes[0][0] == ["ledger.return_too_much"]
    assert outcomes[1] == outcomes[0]


IMPORTER = """
import multiprocessing, os, sys, time
from memberlab.ledger import bulk_chunk

if __name__ != "__main__":  # run again in a spawned process, as "__mp_main__"
    with open(sys.argv[1], "a") as marks:
        print(os.getpid(), file=marks)
if __name__ == "__main__":
    pool = bulk_chunk.worker_pool(None, 2)
    assert pool.submit(os.getpid).result()
    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    time.sleep(600)
"""


def start_importer(tmp_path: Path) -> tuple[subprocess.Popen, list[int], Path]:
    """A script with its own ``__main__`` that starts a pool of two workers: (the process,
    the workers' pids, the file where a process that runs the script again writes)."""
    script, marks = tmp_path / "importer.py", tmp_path / "marks.txt"
    script.write_text(IMPORTER, encoding="utf-8")
    importer = subprocess.Popen(
        [sys.executable, str(script), str(marks)], stdout=subprocess.PIPE, text=True
    )
    assert importer.stdout is not None
    return importer, [int(pid) for pid in importer.stdout.readline().split()], marks


def test_workers_start_without_running_the_importers_main_module_again(
    tmp_path: Path,
) -> None:
    """For ``memberlab import``, the main module is all of the CLI: seconds per worker."""
    importer, workers, marks = start_importer(tmp_path)
    try:
        assert len(workers) == 2
        assert all(Path(f"/proc/{pid}").exists() for pid in workers)
        assert not marks.exists()
    finally:
        importer.kill()
        importer.wait()


TWO_IMPORTS = """
import sys, threading
from memberlab.ledger import bulk_chunk

if __name__ == "__main__":
    main, pools = sys.modules["__main__"], []
    starts = [threading.Thread(target=lambda: pools.append(bulk_chunk.worker_pool(None, 1)))
              for _ in range(4)]
    for start in starts:
        start.start()
    for start in starts:
        start.join()
    print(sys.modules["__main__"] is main, len(pools), flush=True)
    for pool in pools:
        pool.shutdown()
"""


def test_imports_started_at_once_leave_the_main_module_as_it_was(tmp_path: Path) -> None:
    """The server may start two imports at once: their workers start one after the other."""
    script = tmp_path / "two_imports.py"
    script.write_text(TWO_IMPORTS, encoding="utf-8")

    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=120
    )

    assert done.stdout.split() == ["True", "4"]


def test_a_worker_imports_the_rules_and_not_the_database_layers() -> None:
    """What a worker imports to work chunks out (``bulk_chunk``, and what unpickling its
    input needs) costs each worker CPU before its first chunk: not SQLAlchemy, not the
    services, not the web stack."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, memberlab.ledger.bulk_chunk; print(' '.join(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    assert "memberlab.programs.rules" in loaded
    heavy = {"sqlalchemy", "httpx", "fastapi", "memberlab.ledger.store", "memberlab.ledger.service"}
    assert heavy.isdisjoint(loaded)


def test_workers_end_when_the_importer_is_killed(tmp_path: Path) -> None:
    """``kill -9`` of the importer leaves its pool no chance to stop the workers: they see
    their parent gone and end, instead of waiting for work for ever."""
    importer, workers, _ = start_importer(tmp_path)
    try:
        assert all(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        importer.kill()
        importer.wait()
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its importer"
        time.sleep(0.05)


def test_an_sqlite_commit_group_waits_for_a_worker_without_committing_once_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before a wait for a worker, the SQLite group commits only while it holds no chunk
    (the first wait, as the workers start) or once it is as old as it may be; otherwise
    each chunk would be a commit of its own. What it committed, another connection sees."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'group.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE written (chunk INTEGER)")
    database = Database(engine)
    monkeypatch.setattr(bulk, "COMMIT_PAUSE_SECONDS", 0.0)

    def seen() -> list[int]:  # a plain reader (the engine's connections begin IMMEDIATE)
        other = sqlite3.connect(tmp_path / "group.db")
        try:
            return [chunk for (chunk,) in other.execute("SELECT chunk FROM written")]
        finally:
            other.close()

    def write(group: bulk._CommitGroup, chunk: int) -> None:
        group.session.execute(text("INSERT INTO written VALUES (:c)"), {"c": chunk})

    with bulk._CommitGroup(database, tenant_id=1) as group:
        write(group, 0)  # what reading a chunk writes (its new members), no chunk written
        group.before_waiting()
        assert seen() == [0]
        write(group, 1)
        group.written(1)
        group.before_waiting()  # a chunk in the group, which is young: no commit
        assert seen() == [0]
        monkeypatch.setattr(group, "max_seconds", 0.0)  # now as old as it may be
        group.before_waiting()
        assert seen() == [0, 1]
    engine.dispose()
