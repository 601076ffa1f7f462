"""Bulk history import: purchases/s through the program's rules, SQLite and PostgreSQL.

Target (issue "Points and tier engine"): 1,000,000 purchases for 100,000 members at
>= 20,000 purchases/s into SQLite and >= 15,000/s into PostgreSQL. Baseline, measured in the
same run: a plain bulk insert of the same rows (one row per purchase, same insert method,
no rules), so the ratio shows what the rules and the ledger cost on top of storing rows.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import UTC, datetime

import polars as pl
from common import OUT, cpu_seconds, interpreter_speed_us, postgres_schema, synthetic_history
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table

from memberlab.core import migrate
from memberlab.core.bulkio import insert_rows
from memberlab.core.db import Database, create_db_engine
from memberlab.datasets.demo import prepare_demo
from memberlab.ledger.bulk import CHUNK_MEMBERS, import_transactions
from memberlab.ledger.liability import liability

NOW = datetime(2026, 11, 25, tzinfo=UTC)

plain = Table(
    "bench_plain_purchases",
    MetaData(),
    Column("member_id", String(64)),
    Column("order_id", String(128)),
    Column("occurred_at", String(40)),
    Column("channel", String(32)),
    Column("store", String(64)),
    Column("sku", String(64)),
    Column("category", String(64)),
    Column("quantity", Integer),
    Column("amount", BigInteger),
)


def baseline(database: Database, frame: pl.DataFrame) -> float:
    """Rows/s of a plain multi-row insert of the same purchases (no rules, no ledger)."""
    plain.drop(database.engine, checkfirst=True)
    plain.create(database.engine)
    rows = [
        (m, o, t.isoformat(), c, s, k, g, q, round(float(a) * 100))
        for m, o, t, c, s, k, g, q, a in frame.iter_rows()
    ]
    started = time.perf_counter()
    with database.session(platform=True) as session:
        for i in range(0, len(rows), 2000):
            insert_rows(session, plain, [c.name for c in plain.columns], rows[i : i + 2000])
    elapsed = time.perf_counter() - started
    plain.drop(database.engine)
    return len(rows) / elapsed


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    name: str,
    database: Database,
    plain_database: Database,
    path,
    frame: pl.DataFrame,
    workers: int | None,
    chunk: int,
) -> dict:
    """``plain_database``: where the baseline inserts. On SQLite a file of its own: a million
    rows inserted and dropped in the import's file leave it their free pages to fill and a
    grown WAL, and the import was 15-20% slower for them."""
    migrate.upgrade(database.engine)
    with database.session(platform=True) as session:
        demo = prepare_demo(session, now=NOW, created_by="bench")
        tenant_id = demo.tenant.id
    plain_rate = baseline(plain_database, frame)
    started, cpu_started = time.perf_counter(), time.process_time()
    children_started = _children_cpu()
    _, database_started = cpu_seconds(os.getpid())
    report = import_transactions(
        database, tenant_id=tenant_id, path=path, now=NOW, workers=workers, chunk_members=chunk
    )
    elapsed = time.perf_counter() - started
    # the importing process alone: it reads and writes every chunk in turn, so its CPU
    # bounds the rate however many cores work the chunks out
    importer_cpu = time.process_time() - cpu_started
    # this process and its finished workers (not PostgreSQL's server)
    cpu = importer_cpu + _children_cpu() - children_started
    # PostgreSQL's processes (every one on the machine: run nothing else meanwhile)
    database_cpu = cpu_seconds(os.getpid())[1] - database_started
    with database.session(tenant_id=tenant_id) as session:
        books = liability(session, as_of=NOW)
    rate = report.applied / elapsed
    return {
        "backend": name,
        "purchases": report.applied,
        "seconds": round(elapsed, 1),
        "purchases_per_s": round(rate),
        "workers": "auto" if workers is None else workers,
        "client_cpu_s": round(cpu, 1),
        "purchases_per_cpu_s": round(report.applied / cpu) if cpu else None,
        "importer_cpu_s": round(importer_cpu, 1),
        "importer_bound_per_s": round(report.applied / importer_cpu) if importer_cpu else None,
        **({"postgresql_cpu_s": round(database_cpu, 1)} if name == "postgresql" else {}),
        "plain_insert_rows_per_s": round(plain_rate),
        "ratio_to_plain": round(rate / plain_rate, 3),
        "books_balance": books.outstanding_points == books.member_balances,
        "python_1000_lookups_us": round(interpreter_speed_us(), 1),  # the machine, just after
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--purchases", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: one per core)"
    )
    parser.add_argument("--chunk-members", type=int, default=CHUNK_MEMBERS)
    args = parser.parse_args()
    path = synthetic_history(
        OUT / f"history_{args.purchases}_{args.members}.parquet",
        purchases=args.purchases,
        members=args.members,
    )
    frame = pl.read_parquet(path).select(
        "member_id",
        "order_id",
        "occurred_at",
        "channel",
        "store",
        "sku",
        "category",
        "quantity",
        "amount",
    )
    results: list[dict] = []

    def show(result: dict) -> None:
        results.append(result)
        print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)

    if args.backend in ("sqlite", "both"):
        engines = []
        for name in ("bench_bulk.db", "bench_plain.db"):
            for suffix in ("", "-wal", "-shm"):
                (OUT / f"{name}{suffix}").unlink(missing_ok=True)
            engines.append(create_db_engine(f"sqlite:///{OUT / name}"))
        databases = [Database(engine) for engine in engines]
        show(run("sqlite", *databases, path, frame, args.workers, args.chunk_members))
        for engine in engines:
            engine.dispose()
    if args.backend in ("postgresql", "both"):
        with postgres_schema() as (_url, engine):
            database = Database(engine)
            show(
                run("postgresql", database, database, path, frame, args.workers, args.chunk_members)
            )


if __name__ == "__main__":
    main()
