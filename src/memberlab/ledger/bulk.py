"""Bulk history: millions of past purchases and returns through the same rules.

The file is read with Polars, sorted by member and time, and cut into chunks of whole
members. For each chunk the states of its members are loaded in a few queries, every event
runs through ``memberlab.programs.rules`` in memory (exactly as the live ledger would apply
it; ``bulk_chunk``), and the results are written with multi-row inserts (COPY on
PostgreSQL), in a transaction per chunk on PostgreSQL; on SQLite, consecutive chunks share
a transaction until it holds ``COMMIT_MIN_EVENTS`` events or has been open
``COMMIT_MAX_SECONDS`` (``_CommitGroup``). Large files are worked out in worker processes,
a chunk each, while this process reads the next chunks and writes the finished ones.

Stopping at any point (even killing the process) loses at most the chunks not yet
committed: a rerun skips the orders and returns already stored, so nothing is applied
twice. (A chunk's new members may have been enrolled already: the rerun gives them their
history as it would have.)
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from memberlab.core.bulkio import (
    adapter_for,
    among,
    insert_packed,
    insert_rows,
    key_checks_skipped,
)
from memberlab.core.db import Database
from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.gcpause import collect_young, collector_paused
from memberlab.dataio import values
from memberlab.ledger import store
from memberlab.ledger.bulk_chunk import (
    ChunkContext,
    ChunkInput,
    ChunkResult,
    ChunkRows,
    MemberInfo,
    compute_chunk,
    compute_in_worker,
    worker_pool,
)
from memberlab.ledger.models import (
    ImportRun,
    LedgerEntry,
    Order,
    OrderReturn,
    PointsLot,
    Posting,
    TierChange,
)
from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.ledger.rows import ORDER_HEAD, Loaded, order_from_json
from memberlab.ledger.service import program_at
from memberlab.members.models import Member
from memberlab.programs import rules

CHUNK_MEMBERS = 2000
# files of this many rows or more are worked out in worker processes, one per core (starting
# them costs about a second)
PARALLEL_MIN_ROWS = 50_000
# imports that apply this many events or more refresh the planner's statistics at the end
ANALYZE_MIN_APPLIED = 5_000
# the importer collects young objects after this many chunks written with workers: each time,
# it walks every young object still alive, such as the finished chunks' rows that arrived
# meanwhile (about 55 ms for 20,000 purchases' rows), to find next to no garbage
COLLECT_EVERY_CHUNKS = 8
# on SQLite, chunks share a write transaction until it holds this many events or has been open
# this long (``_CommitGroup``)
COMMIT_MIN_EVENTS = 100_000
COMMIT_MAX_SECONDS = 5.0
# after each commit on SQLite the importer leaves the write lock free this long: SQLite keeps
# no queue of waiting writers, whose busy handlers poll every 100 ms at most, so a live
# write gets in only if the lock is free when it polls
COMMIT_PAUSE_SECONDS = 0.12

# canonical column -> accepted headers (the importer of the data module maps many more)
COLUMNS = {
    "kind": ("kind", "type"),
    "member_id": ("member_id", "member", "会员ID", "会员编号", "会员卡号"),
    "order_id": ("order_id", "order", "订单号"),
    "occurred_at": ("occurred_at", "order_time", "time", "下单时间", "交易时间"),
    "channel": ("channel", "渠道"),
    "store": ("store", "门店"),
    "sku": ("sku",),
    "category": ("category", "品类"),
    "quantity": ("quantity", "qty", "数量"),
    "amount": ("amount", "实付金额", "消费金额"),
    "points_used": ("points_used",),
    "return_id": ("return_id", "退货单号"),
}
REQUIRED = ("member_id", "order_id", "occurred_at", "amount")


@dataclass
class ImportReport:
    rows: int = 0
    events: int = 0
    applied: int = 0
    skipped: int = 0
    rejected: int = 0
    members_enrolled: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)


# --- reading ---------------------------------------------------------------------------------


def read_events(path: Path, *, timezone: str, currency_unit: int = 100) -> pl.DataFrame:
    """Read a CSV (UTF-8) or Parquet file of transactions into canonical columns."""
    if path.suffix.lower() == ".parquet":
        frame = pl.read_parquet(path)
    else:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    rename: dict[str, str] = {}
    for canonical, names in COLUMNS.items():
        for name in frame.columns:
            if name.strip() in names or name.strip().lower() in names:
                rename[name] = canonical
                break
    frame = frame.rename(rename)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InvalidInput(errors=[FieldError(c, "core.v.missing") for c in missing])
    defaults: dict[str, Any] = {
        "kind": "purchase",
        "channel": "store",
        "store": None,
        "sku": None,
        "category": "other",
        "quantity": "1",
        "points_used": "0",
        "return_id": None,
    }
    for column, default in defaults.items():
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(default, dtype=pl.String).alias(column))
    text = [
        pl.col(c).cast(pl.String)
        for c in (
            "member_id",
            "order_id",
            "channel",
            "store",
            "sku",
            "category",
            "kind",
            "return_id",
        )
    ]
    frame = frame.with_row_index("row", offset=2).with_columns(*text)
    occurred = frame.schema["occurred_at"]
    if isinstance(occurred, pl.Datetime):  # Parquet: an instant, or a wall time if naive
        moment = pl.col("occurred_at").cast(pl.Datetime("us", occurred.time_zone))
        times = moment if occurred.time_zone else values.localise(moment, timezone)
    else:
        times = pl.lit(values.read_instants(frame["occurred_at"].cast(pl.String), timezone))
    frame = frame.with_columns(
        times.dt.convert_time_zone("UTC").alias("occurred_at"),
        (
            pl.col("amount").cast(pl.String).str.strip_chars().cast(pl.Decimal(20, 4), strict=False)
            * currency_unit
        )
        .round(0)
        .cast(pl.Int64, strict=False)
        .alias("amount_minor"),
        pl.col("quantity").cast(pl.Int64, strict=False).alias("quantity"),
        pl.col("points_used").cast(pl.Int64, strict=False).fill_null(0).alias("points_used"),
        pl.col("kind").str.to_lowercase().fill_null("purchase").alias("kind"),
    )
    return frame


def _rejects(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    problems = [
        (pl.col("member_id").is_null(), "member_id", "core.v.missing"),
        (pl.col("order_id").is_null(), "order_id", "core.v.missing"),
        (pl.col("occurred_at").is_null(), "occurred_at", "core.v.datetime"),
        (
            pl.col("amount_minor").is_null() & (pl.col("kind") == "purchase"),
            "amount",
            "core.v.number",
        ),
        (pl.col("amount_minor") < 0, "amount", "ledger.negative_amount"),
        (
            pl.col("quantity").is_null() | (pl.col("quantity") < 1),
            "quantity",
            "ledger.bad_quantity",
        ),
        (~pl.col("kind").is_in(["purchase", "return"]), "kind", "core.v.choice"),
    ]
    rejects: list[dict[str, Any]] = []
    bad = pl.lit(False)
    for condition, column, key in problems:
        hits = frame.filter(condition)
        for row in hits.select("row", column if column in hits.columns else "row").iter_rows():
            rejects.append({"row": row[0], "column": column, "value": row[1], "key": key})
        bad = bad | condition.fill_null(False)
    return frame.filter(~bad), rejects


# --- events ----------------------------------------------------------------------------------


def member_chunks(frame: pl.DataFrame, chunk_members: int) -> list[tuple[pl.DataFrame, int]]:
    """The frame in (member, time, order, row) order, cut into slices of ``chunk_members``
    whole members each: (slice, number of members)."""
    frame = frame.sort(["member_id", "occurred_at", "order_id", "row"])
    counts = frame.group_by("member_id", maintain_order=True).len()["len"].to_list()
    chunks: list[tuple[pl.DataFrame, int]] = []
    offset = 0
    for start in range(0, len(counts), chunk_members):
        members = counts[start : start + chunk_members]
        rows = sum(members)
        chunks.append((frame.slice(offset, rows), len(members)))
        offset += rows
    return chunks


@dataclass(frozen=True)
class _ChunkKeys:
    """The order and return ids a chunk stores or refers to."""

    orders: frozenset[str]  # its purchases
    returns: frozenset[str]
    referenced: frozenset[str]  # orders its returns refer to that are not among its purchases

    @classmethod
    def of(cls, frame: pl.DataFrame) -> _ChunkKeys:
        is_return = pl.col("kind") == "return"
        orders = frozenset(frame.filter(~is_return)["order_id"].to_list())
        returned = frame.filter(is_return)
        returns = frozenset(
            returned.select(pl.coalesce("return_id", pl.col("order_id") + ":return"))
            .to_series()
            .to_list()
        )
        return cls(orders, returns, frozenset(returned["order_id"].to_list()) - orders)

    def depends_on(self, other: _ChunkKeys) -> bool:
        """Whether this chunk, read before ``other`` is written, could see the wrong things."""
        stored = other.orders | other.returns
        return not (
            stored.isdisjoint(self.orders)
            and stored.isdisjoint(self.returns)
            and other.orders.isdisjoint(self.referenced)
            # both return lines of one stored order: the later must see the earlier's
            and other.referenced.isdisjoint(self.referenced)
        )


# --- the import ------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_transactions(
    database: Database,
    *,
    tenant_id: int,
    path: Path,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
    chunk_members: int = CHUNK_MEMBERS,
    workers: int | None = None,
) -> ImportReport:
    """Apply a file of past purchases and returns in canonical columns; safe to rerun.

    Client exports in other shapes go through ``memberlab.dataio`` (``memberlab import
    transactions``), which maps and checks them and then calls ``apply_events``.
    """
    with database.session(tenant_id=tenant_id) as session:
        _, program = program_at(session, now)
    frame = read_events(path, timezone=program.timezone, currency_unit=int(rules.unit(program)))
    frame, rejects = _rejects(frame)
    report = apply_events(
        database,
        tenant_id=tenant_id,
        frame=frame,
        file_name=path.name,
        file_sha256=file_sha256(path),
        now=now,
        progress=progress,
        chunk_members=chunk_members,
        workers=workers,
    )
    report.rows += len({r["row"] for r in rejects})
    report.rejects = rejects + report.rejects
    report.rejected += len({r["row"] for r in rejects})
    return report


class AllOrNothingRefused(Exception):
    """Raised inside the one transaction of an all-or-nothing import, to roll it back."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("all-or-nothing import refused")
        self.report = report


def apply_events(
    database: Database,
    *,
    tenant_id: int,
    frame: pl.DataFrame,
    file_name: str,
    file_sha256: str,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
    chunk_members: int = CHUNK_MEMBERS,
    all_or_nothing: bool = False,
    advance_to: datetime | None = None,
    run_kind: str = "transactions",
    workers: int | None = None,
) -> ImportReport:
    """Apply checked events (canonical columns, times in UTC, amounts in minor units).

    ``advance_to`` (normally now) then brings each member of the file up to that moment, as
    the scheduled jobs would have, so a loaded history is current without a jobs run over
    every member.

    Normally one transaction per chunk of members, so a stopped import keeps what it did and
    a rerun skips it. ``all_or_nothing`` uses one transaction for everything and raises
    ``AllOrNothingRefused`` (having written nothing) if the rules refuse any event.

    ``workers``: processes that work chunks out while this one reads and writes (None: one
    per core for files of ``PARALLEL_MIN_ROWS`` rows or more, else none; 0: none).
    """
    with database.session(tenant_id=tenant_id) as session:
        _, program = program_at(session, now)
        run = ImportRun(kind=run_kind, file_name=file_name, file_sha256=file_sha256, started_at=now)
        session.add(run)
        session.flush()
        run_id = run.id
    report = ImportReport(rows=frame.height)
    context = ChunkContext(
        tenant_id=tenant_id,
        program=program,
        now=now,
        advance_to=advance_to,
        minor_per_point=rules.unit(program) / program.points_payment.points_per_unit,
        dialect=database.dialect,
    )
    chunks = member_chunks(frame, chunk_members)
    total = sum(size for _, size in chunks)
    if workers is None:
        workers = (os.cpu_count() or 1) if frame.height >= PARALLEL_MIN_ROWS else 0
    status = "done"
    # this process reads states and writes rows by the hundred thousand: the collector
    # walks each chunk's objects once, after it, not the growing heap again and again
    with collector_paused():
        if all_or_nothing:
            try:
                with database.session(tenant_id=tenant_id) as session:
                    done = 0
                    for chunk, size in chunks:
                        _apply_here(session, context, chunk, report)
                        collect_young()
                        done += size
                        if progress:
                            progress(done, total)
                    if report.rejected:
                        raise AllOrNothingRefused(report)
            except AllOrNothingRefused:
                status = "refused"
                report.applied = report.members_enrolled = 0
        elif workers <= 0:
            done = 0
            statistics = _StatisticsSchedule(database)
            with _CommitGroup(database, tenant_id) as group:
                for chunk, size in chunks:
                    _apply_here(group.session, context, chunk, report)
                    group.written(chunk.height)
                    collect_young()
                    statistics.after_chunk(report, group)
                    done += size
                    if progress:
                        progress(done, total)
        else:
            _apply_in_workers(database, context, chunks, report, workers, progress, total)
    if status == "done" and report.applied >= ANALYZE_MIN_APPLIED:
        refresh_statistics(database)
    with database.session(tenant_id=tenant_id) as session:
        session.execute(
            update(ImportRun)
            .where(ImportRun.tenant_id == tenant_id, ImportRun.id == run_id)
            .values(
                finished_at=now,
                rows=report.rows,
                applied=report.applied,
                skipped=report.skipped,
                rejected=report.rejected,
                status=status,
            )
            .execution_options(synchronize_session=False)
        )
    if status == "refused":
        raise AllOrNothingRefused(report)
    return report


class _CommitGroup:
    """The import's write transaction. On SQLite it spans consecutive chunks, committed once
    it holds ``min_events`` events or has been open ``max_seconds``; on PostgreSQL each
    chunk commits.

    An SQLite commit writes every page the transaction changed to the WAL. The indexes by
    time (entries, postings, orders) take each chunk's rows all over their length, so a
    chunk changes most of their pages, and committing chunk by chunk wrote them again and
    again: 1,000,000 purchases, 2,000 members (20,000 purchases) a chunk, wrote up to 240 MB
    per commit. A group writes those pages once. PostgreSQL logs each row as it goes and
    writes pages back in the background, so grouping saves it nothing (measured) and would
    only hold the members' row locks longer.

    The price on SQLite: a stopped import redoes the whole group (the rerun skips what was
    committed), and a live write waits for the group's commit, hence the time bound and the
    pause after each commit (``COMMIT_PAUSE_SECONDS``), in which it gets the lock.
    """

    def __init__(self, database: Database, tenant_id: int) -> None:
        self.database, self.tenant_id = database, tenant_id
        sqlite = database.dialect == "sqlite"
        self.min_events = COMMIT_MIN_EVENTS if sqlite else 0
        self.max_seconds = COMMIT_MAX_SECONDS
        self.pause = COMMIT_PAUSE_SECONDS if sqlite else 0.0
        self._session: Session | None = None
        self._opened_at = 0.0
        self._events = 0

    @property
    def session(self) -> Session:
        """The group's session, opened (with a new transaction) on first use."""
        if self._session is None:
            self._session = self.database.new_session(tenant_id=self.tenant_id)
            self._opened_at = time.monotonic()
        return self._session

    def written(self, events: int) -> None:
        """A chunk of ``events`` events was written: commit if the group is now full or old
        enough."""
        self._events += events
        if (
            self._events >= self.min_events
            or time.monotonic() - self._opened_at >= self.max_seconds
        ):
            self.commit()

    def before_waiting(self) -> None:
        """The importer is about to wait for a worker. On PostgreSQL, commit: no row locks
        are held while it waits. On SQLite, commit if no chunk was written in the group yet
        (what it holds is cheap to commit, and the first wait, while the workers start, is
        the longest: a live write gets in then) or if the group is as old as it may be.

        Committing at every wait (the importer writes faster than the workers work chunks
        out, so it waits before nearly every chunk) made each chunk a commit of its own,
        which wrote the pages of the indexes by time again each time: 1,000,000
        purchases, 50 commits and 6 s of the importer's CPU in them."""
        if (
            not self.min_events
            or not self._events
            or time.monotonic() - self._opened_at >= self.max_seconds
        ):
            self.commit()

    def commit(self) -> None:
        """Commit what the group holds; on SQLite, then leave the write lock free a moment."""
        if self._end(commit=True) and self.pause:
            time.sleep(self.pause)

    def _end(self, *, commit: bool) -> bool:
        """End the group's transaction; whether there was one."""
        self._events = 0
        if self._session is not None:
            session, self._session = self._session, None
            try:
                if commit:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
            return True
        return False

    def __enter__(self) -> _CommitGroup:
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        self._end(commit=error_type is None)  # the import's end: no pause


@dataclass
class _Pending:
    """A chunk handed to a worker: what was read for it, to check before writing."""

    chunk: pl.DataFrame
    size: int
    keys: _ChunkKeys
    pks: list[int]  # its members, as read
    snapshot: dict[int, tuple]
    future: Future[ChunkResult]


def _apply_in_workers(
    database: Database,
    context: ChunkContext,
    chunks: list[tuple[pl.DataFrame, int]],
    report: ImportReport,
    workers: int,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> None:
    """Read chunk k + 1 and write chunk k here while worker processes work chunks out.

    Chunks are read (which also enrols their new members) and written, in file order, in
    the transactions of a ``_CommitGroup`` (which may commit before waiting for a worker:
    ``_CommitGroup.before_waiting``).
    Between reading a chunk and writing it, a live write could change one of its members:
    the write locks the chunk's members and compares their state rows with what was read,
    and if any changed, works the chunk out again there and then.
    A chunk that stores or refers to an order or return of a chunk not yet written waits
    for that one, so every chunk reads what a one-at-a-time import would have read.
    """
    tenant_id = context.tenant_id
    done = written = 0
    pending: deque[_Pending] = deque()
    statistics = _StatisticsSchedule(database)

    def write_oldest() -> None:
        nonlocal done, written
        item = pending.popleft()
        if not item.future.done():
            group.before_waiting()
        result = item.future.result()
        session = group.session
        locked = _lock_members(session, tenant_id, item.pks)
        if _state_rows(session, tenant_id, item.pks) != item.snapshot:
            _apply_here(session, context, item.chunk, report)  # read again, locked
        else:
            write_chunk(session, tenant_id, result.rows, members_locked=locked)
            _count(report, result)
        size, events = item.size, item.chunk.height
        del item, result  # the chunk's rows, freed before the collector walks what is young
        group.written(events)
        written += 1
        if written % COLLECT_EVERY_CHUNKS == 0:
            collect_young()
        statistics.after_chunk(report, group)
        done += size
        if progress:
            progress(done, total)

    pool = worker_pool(context, workers)
    try:
        with _CommitGroup(database, tenant_id) as group:
            for chunk, size in chunks:
                keys = _ChunkKeys.of(chunk)
                while any(keys.depends_on(item.keys) for item in pending):
                    write_oldest()
                chunk_input, snapshot, _ = _prepare(
                    group.session, context, chunk, report, lock=False, keys=keys
                )
                future = pool.submit(compute_in_worker, chunk_input)
                pks = sorted(info.pk for info in chunk_input.members.values())
                pending.append(_Pending(chunk, size, keys, pks, snapshot, future))
                while len(pending) > workers:
                    write_oldest()
            while pending:
                write_oldest()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# the tables an import fills, whose planner statistics it makes stale
LOADED_TABLES = (
    "members",
    "member_states",
    "ledger_entries",
    "postings",
    "points_lots",
    "orders",
    "order_returns",
    "tier_changes",
)


class _StatisticsSchedule:
    """Refreshes the statistics while an import runs, each time the events applied have
    grown fourfold: a plan chosen for the tables' size before the load (a member looked up
    among the tenant's by another index, say) becomes slower with every chunk."""

    def __init__(self, database: Database) -> None:
        self.database, self.next_at = database, ANALYZE_MIN_APPLIED

    def after_chunk(self, report: ImportReport, group: _CommitGroup) -> None:
        if report.applied >= self.next_at:
            group.commit()  # what the statistics are to count, and on SQLite the write lock
            refresh_statistics(self.database)
            self.next_at = 4 * report.applied


def refresh_statistics(database: Database) -> None:
    """ANALYZE the tables an import filled, as one does after any bulk load.

    Until then the planner works from the statistics of the tables before the load (on
    PostgreSQL, until autovacuum gets round to them): a member looked up by number was
    found by scanning the tenant's members through another index.
    """
    with database.session(platform=True) as session:
        connection = session.connection()
        if database.dialect == "postgresql":
            connection.exec_driver_sql(f"ANALYZE {', '.join(LOADED_TABLES)}")
            return
        connection.exec_driver_sql("PRAGMA analysis_limit=1000")  # a sample, as PostgreSQL's
        for table in LOADED_TABLES:
            connection.exec_driver_sql(f"ANALYZE {table}")


def _count(report: ImportReport, result: ChunkResult) -> None:
    report.events += result.events
    report.applied += result.applied
    report.skipped += result.skipped
    report.rejected += result.rejected
    report.rejects += result.rejects


# --- reading and writing a chunk -------------------------------------------------------------

_members = Member.__table__
_states = MemberStateRow.__table__
_lots = PointsLot.__table__
_entries = LedgerEntry.__table__
_orders = Order.__table__
# the tables a chunk inserts into, by name (``ChunkRows.inserts``)
_INSERTED = {
    table.name: table
    for table in (
        _states,
        _entries,
        Posting.__table__,
        _lots,
        TierChange.__table__,
        _orders,
        OrderReturn.__table__,
    )
}


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# what a member enrolled by an import has (the rest is left empty)
_ENROLMENT_COLUMNS = (
    "tenant_id",
    "member_id",
    "enrolled_at",
    "consents",
    "status",
    "created_at",
    "updated_at",
    "enrol_channel",
)


def _known(session: Session, tenant_id: int, chunk: pl.DataFrame) -> dict[str, MemberInfo]:
    ids = chunk["member_id"].unique(maintain_order=True).to_list()
    query = select(
        _members.c.id, _members.c.member_id, _members.c.enrolled_at, _members.c.birthday_month_day
    ).where(_members.c.tenant_id == tenant_id, among(_members.c.member_id, ids, _dialect(session)))
    return {
        member_id: MemberInfo(pk, enrolled_at, birthday)
        for pk, member_id, enrolled_at, birthday in session.connection().execute(query)
    }


def _lock_members(session: Session, tenant_id: int, pks: list[int]) -> bool:
    """PostgreSQL: lock the members' rows, as the live ledger does (SQLite's BEGIN IMMEDIATE
    already holds the database). Whether every one of them is there, the tenant's, and now
    locked: what a key to the member, (tenant, member), would check."""
    if not pks or _dialect(session) != "postgresql":
        return True
    locked = session.connection().execute(
        select(_members.c.id)
        .where(_members.c.tenant_id == tenant_id, among(_members.c.id, pks, "postgresql"))
        .order_by(_members.c.id)
        .with_for_update()
    )
    return len(locked.all()) == len(pks)


def _state_rows(session: Session, tenant_id: int, pks: list[int]) -> dict[int, tuple]:
    if not pks:
        return {}
    query = select(_states).where(
        _states.c.tenant_id == tenant_id, among(_states.c.member_pk, pks, _dialect(session))
    )
    return {row.member_pk: tuple(row) for row in session.connection().execute(query)}


def _prepare(
    session: Session,
    context: ChunkContext,
    chunk: pl.DataFrame,
    report: ImportReport,
    *,
    lock: bool,
    keys: _ChunkKeys | None = None,
) -> tuple[ChunkInput, dict[int, tuple], bool]:
    """What the database holds of the chunk's members (enrolling the new ones, if the program
    says so), their state rows as read (to check, before writing, that none changed), and
    whether all of them are locked (``lock``: read with their rows locked)."""
    tenant_id, program = context.tenant_id, context.program
    keys = keys or _ChunkKeys.of(chunk)
    known = _known(session, tenant_id, chunk)
    unknown = chunk.filter(~pl.col("member_id").is_in(list(known)))
    if unknown.height and program.enrolment.enrol_on_first_purchase:
        # enrolled at the first event (purchases before returns at the same moment), by its
        # channel if it is a purchase
        firsts = (
            unknown.with_columns((pl.col("kind") == "return").alias("_is_return"))
            .sort(["member_id", "occurred_at", "_is_return", "order_id", "row"])
            .group_by("member_id", maintain_order=True)
            .first()
        )
        adapt = adapter_for(session)
        now, consents = adapt.dt(context.now), adapt.js({})
        new_members = [
            (
                tenant_id,
                member_id,
                adapt.dt(_utc(at)),
                consents,
                "active",
                now,
                now,
                None if is_return else (channel or "store"),
            )
            for member_id, at, channel, is_return in firsts.select(
                "member_id", "occurred_at", "channel", "_is_return"
            ).iter_rows()
        ]
        # in bulk, then read back as the known ones are: an INSERT ... RETURNING of
        # thousands of rows through SQLAlchemy took a tenth of the importer's CPU
        insert_rows(session, _members, _ENROLMENT_COLUMNS, new_members)
        known.update(_known(session, tenant_id, unknown))
        report.members_enrolled += len(new_members)
    pks = sorted(info.pk for info in known.values())
    locked = _lock_members(session, tenant_id, pks) if lock else False
    connection, dialect = session.connection(), _dialect(session)
    seen_orders: set[str] = set()
    if keys.orders:
        seen_orders = set(
            connection.scalars(
                select(_orders.c.order_id).where(
                    _orders.c.tenant_id == tenant_id,
                    among(_orders.c.order_id, keys.orders, dialect),
                )
            )
        )
    seen_returns: set[str] = set()
    if keys.returns:
        returns = OrderReturn.__table__
        seen_returns = set(
            connection.scalars(
                select(returns.c.return_id).where(
                    returns.c.tenant_id == tenant_id,
                    among(returns.c.return_id, keys.returns, dialect),
                )
            )
        )
    stored_orders: dict[str, rules.OrderRecord] = {}
    if keys.referenced:
        head = [_orders.c[name] for name in ORDER_HEAD]
        query = select(*head, _orders.c.record).where(
            _orders.c.tenant_id == tenant_id, among(_orders.c.order_id, keys.referenced, dialect)
        )
        stored_orders = {
            row[0]: order_from_json(row[-1], row[:-1]) for row in connection.execute(query)
        }
    snapshot = _state_rows(session, tenant_id, pks)
    states = _load_states(session, context, known, snapshot)
    chunk_input = ChunkInput(chunk, known, states, seen_orders, seen_returns, stored_orders)
    return chunk_input, snapshot, locked


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _load_states(
    session: Session,
    context: ChunkContext,
    known: dict[str, MemberInfo],
    state_rows: dict[int, tuple],
) -> dict[int, Loaded]:
    tenant_id, program = context.tenant_id, context.program
    notice_days = program.points.expiring_notice_days
    columns = [c.name for c in _states.columns]
    connection = session.connection()
    lots: dict[int, list[rules.Lot]] = defaultdict(list)
    activity: dict[int, list[rules.Activity]] = defaultdict(list)
    with_state = list(state_rows)
    if with_state:
        query = select(_lots).where(
            _lots.c.tenant_id == tenant_id,
            among(_lots.c.member_pk, with_state, _dialect(session)),
            (_lots.c.remaining > 0) | (_lots.c.released.is_(False)),
        )
        for lot in connection.execute(query):
            lots[lot.member_pk].append(store.lot_from_row(lot))
        horizon = store.activity_horizon(program, context.now)
        if horizon is not None:
            query = (
                select(
                    _entries.c.member_pk,
                    _entries.c.at,
                    _entries.c.growth,
                    _entries.c.spend,
                    _entries.c.orders,
                )
                .where(
                    _entries.c.tenant_id == tenant_id,
                    among(_entries.c.member_pk, with_state, _dialect(session)),
                    _entries.c.at >= horizon,
                    (_entries.c.growth != 0) | (_entries.c.spend != 0) | (_entries.c.orders != 0),
                )
                .order_by(_entries.c.member_pk, _entries.c.at, _entries.c.seq)
            )
            for pk, at, g, s, o in connection.execute(query):
                activity[pk].append(rules.Activity(at, g, s, o))
    loaded: dict[int, Loaded] = {}
    for member in known.values():
        pk = member.pk
        values = state_rows.get(pk)
        if values is None:
            state = rules.new_member_state(
                program, enrolled_at=member.enrolled_at, birthday=member.birthday
            )
            loaded[pk] = Loaded(pk, state, is_new=True, notice_days=notice_days)
            continue
        state = store.state_from_row(
            SimpleNamespace(**dict(zip(columns, values, strict=True))),
            enrolled_at=member.enrolled_at,
            birthday=member.birthday,
        )
        state.lots = sorted(lots[pk], key=lambda lot: lot.seq)
        state.activity = activity[pk]
        loaded[pk] = Loaded(
            pk,
            state,
            is_new=False,
            lots_before={lot.seq: (lot.remaining, lot.released, lot.noticed) for lot in state.lots},
            notice_days=notice_days,
        )
    return loaded


def _apply_here(
    session: Session, context: ChunkContext, chunk: pl.DataFrame, report: ImportReport
) -> None:
    """Read (locking the members), work out and write one chunk, in this process and in the
    session's transaction."""
    chunk_input, _, locked = _prepare(session, context, chunk, report, lock=True)
    result = compute_chunk(context, chunk_input)
    write_chunk(session, context.tenant_id, result.rows, members_locked=locked)
    _count(report, result)


def write_chunk(
    session: Session, tenant_id: int, rows: ChunkRows, *, members_locked: bool = False
) -> None:
    """Store a chunk's rows in the session's transaction.

    ``members_locked``: every member of the chunk is locked in this transaction
    (``_lock_members``). Each row written belongs to one of them, and its only key is its
    member (``MemberOwned``), so PostgreSQL's per-row key checks, a third of its CPU in an
    import, would find what the lock holds: they are skipped where the role may
    (``bulkio.key_checks_skipped``)."""
    inserts = rows.inserts()
    connection = session.connection()
    if rows.packed is not None:
        insert_packed(
            session, rows.packed, [(_INSERTED[name], columns) for name, columns, _ in inserts]
        )
    else:
        with key_checks_skipped(connection, skip=members_locked):
            for name, columns, table_rows in inserts:
                insert_rows(session, _INSERTED[name], columns, table_rows)
    if rows.lot_updates:
        connection.execute(
            _lots.update()
            .where(
                _lots.c.tenant_id == bindparam("b_tenant"),
                _lots.c.member_pk == bindparam("b_member"),
                _lots.c.seq == bindparam("b_seq"),
            )
            .values(
                remaining=bindparam("remaining"),
                released=bindparam("released"),
                noticed=bindparam("noticed"),
            ),
            rows.lot_updates,
        )
    if rows.state_updates:
        updates = [
            {
                **{k: v for k, v in row.items() if k not in ("tenant_id", "member_pk")},
                "b_tenant": row["tenant_id"],
                "b_member": row["member_pk"],
            }
            for row in rows.state_updates
        ]
        columns = [k for k in updates[0] if not k.startswith("b_")]
        connection.execute(
            _states.update()
            .where(
                _states.c.tenant_id == bindparam("b_tenant"),
                _states.c.member_pk == bindparam("b_member"),
            )
            .values({c: bindparam(c) for c in columns}),
            updates,
        )
    if rows.order_records:
        connection.execute(
            _orders.update()
            .where(_orders.c.tenant_id == tenant_id, _orders.c.order_id == bindparam("b_order"))
            .values(record=bindparam("b_record", type_=_orders.c.record.type)),
            [{"b_order": order_id, "b_record": record} for order_id, record in rows.order_records],
        )


def as_utc(moment: datetime, timezone: str) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)
