"""PostgreSQL: the bulk import writing chunk k while working out k + 1 gives the same ledger
as writing each chunk before the next, also where chunks depend on each other."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from conftest import postgres_engine_in_new_schema
from memberlab.core import tenants as tenant_service
from memberlab.core.db import Database
from memberlab.datasets.demo import sample_program_text
from memberlab.ledger import bulk
from memberlab.programs import service as program_service

NOW = datetime(2026, 11, 25, tzinfo=UTC)
TABLES = {
    "ledger_entries": "seq, kind, at, reference, points, growth, spend, orders, detail::text",
    "postings": "entry_seq, leg, source, destination, amount, lot_seq, at",
    "points_lots": "seq, amount, remaining, released, noticed, expires_at, available_at",
    "member_states": "tier, available, pending, debt, lifetime_growth, as_of, next_seq",
    "orders": "order_id, points_earned, growth_earned, entry_seq, record::text",
    "order_returns": "return_id, order_id, entry_seq, points_reversed, growth_reversed",
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


def test_pipelined_writes_match_chunk_by_chunk(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = history_file(tmp_path)
    database = Database(engine)
    reports, ledgers = [], []
    for slug, pipelined in (("seq", False), ("pipe", True)):
        monkeypatch.setattr(bulk, "PIPELINE_WRITES", pipelined)
        tenant_id = tenant(database, slug)
        seen: list[tuple[int, int]] = []
        report = bulk.import_transactions(
            database,
            tenant_id=tenant_id,
            path=path,
            now=NOW,
            chunk_members=1,
            progress=lambda done, total, out=seen: out.append((done, total)),
        )
        assert seen[-1] == (12, 12)
        reports.append((report.applied, report.skipped, report.rejected, report.rejects))
        ledgers.append(ledger(database, tenant_id))
        again = bulk.import_transactions(
            database, tenant_id=tenant_id, path=path, now=NOW, chunk_members=1
        )
        assert again.applied == 0
        assert ledger(database, tenant_id) == ledgers[-1]
    assert reports[0] == reports[1]
    assert reports[0][1] == 1  # the order id used twice
    assert ledgers[0] == ledgers[1]
    assert len(ledgers[0]["order_returns"]) == 2  # both returns across chunks applied


def test_a_write_failing_midway_keeps_the_chunks_before_and_a_rerun_finishes(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fifth chunk's write fails on the writer thread (the server gone, say): the error
    reaches the caller, the four chunks before are committed and nothing of the fifth or
    later is, and the rerun gives the ledger of an import never stopped."""
    path = history_file(tmp_path)
    database = Database(engine)
    reference = tenant(database, "whole")
    bulk.import_transactions(database, tenant_id=reference, path=path, now=NOW, chunk_members=1)

    stopped = tenant(database, "stopped")
    write = bulk._Rows.write
    calls = []

    def failing_write(self, session, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise ConnectionError("server closed the connection")
        return write(self, session, *args, **kwargs)

    monkeypatch.setattr(bulk._Rows, "write", failing_write)
    with pytest.raises(ConnectionError):
        bulk.import_transactions(database, tenant_id=stopped, path=path, now=NOW, chunk_members=1)
    members = {row[0] for row in ledger(database, stopped)["member_states"]}
    assert members == {"M0", "M1", "M10", "M11"}  # the first four chunks, in member order

    monkeypatch.setattr(bulk._Rows, "write", write)
    bulk.import_transactions(database, tenant_id=stopped, path=path, now=NOW, chunk_members=1)
    assert ledger(database, stopped) == ledger(database, reference)
