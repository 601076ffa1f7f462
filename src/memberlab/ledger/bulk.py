"""Bulk history: millions of past purchases and returns through the same rules.

The file is read with Polars into events, sorted by member and time. Members are processed
in chunks; for each chunk the states of its members are loaded in a few queries, every
event runs through ``memberlab.programs.rules`` in memory (exactly as the live ledger would
apply it), and the results are written with multi-row inserts in one transaction per chunk.

Stopping at any point (even killing the process) loses at most the chunk in progress, which
was never committed: a rerun skips the orders and returns already stored, so nothing is
applied twice.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from memberlab.core.bulkio import Adapter, adapter_for, insert_rows
from memberlab.core.db import Database, finished
from memberlab.core.errors import FieldError, InvalidInput
from memberlab.ledger import store
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
from memberlab.ledger.service import order_from_json, order_to_json, program_at
from memberlab.members.models import Member
from memberlab.programs import rules
from memberlab.programs.schema import ProgramDefinition

CHUNK_MEMBERS = 2000
# PostgreSQL: write a chunk on a second thread while the next is worked out
PIPELINE_WRITES = True
_UTC_KEYS = ("UTC", "Etc/UTC")

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
    times = (
        pl.col("occurred_at")
        .cast(pl.String)
        .str.to_datetime(time_zone=None, strict=False)
        .dt.replace_time_zone(timezone, ambiguous="earliest")
    )
    if frame.schema["occurred_at"] == pl.Datetime or isinstance(
        frame.schema["occurred_at"], pl.Datetime
    ):
        column_zone = frame.schema["occurred_at"].time_zone  # type: ignore[union-attr]
        times = (
            pl.col("occurred_at").dt.convert_time_zone("UTC")
            if column_zone
            else pl.col("occurred_at").dt.replace_time_zone(timezone)
        )
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


@dataclass
class MemberEvents:
    member_id: str
    events: list[tuple[datetime, int, Any]]  # (time, 0 purchase / 1 return, event)


def group_events(
    frame: pl.DataFrame,
    *,
    minor_per_point: Decimal,
) -> Iterator[MemberEvents]:
    """Per member, in time order: purchases (lines grouped by order) and returns.

    The line amounts are what the lines cost; points used as payment
    (``minor_per_point`` each) are not money paid and earn nothing, as in the live path.
    """
    frame = frame.sort(["member_id", "occurred_at", "order_id", "row"])
    current: str | None = None
    events: list[tuple[datetime, int, Any]] = []
    order_lines: dict[str, list[tuple]] = {}
    return_lines: dict[str, list[tuple]] = {}
    columns = [
        "member_id",
        "kind",
        "order_id",
        "return_id",
        "occurred_at",
        "channel",
        "store",
        "sku",
        "category",
        "quantity",
        "amount_minor",
        "points_used",
    ]

    def flush() -> MemberEvents:
        for rows in order_lines.values():
            first = rows[0]
            if len(rows) == 1:
                lines = (
                    rules.PurchaseLine(
                        first[7] or first[2], first[8] or "other", first[9], first[10]
                    ),
                )
                gross = first[10]
            else:
                lines = tuple(
                    rules.PurchaseLine(r[7] or r[2], r[8] or "other", r[9], r[10]) for r in rows
                )
                gross = sum(line.amount for line in lines)
            points_used = int(first[11] or 0)
            paid = (
                max(gross - int(Decimal(points_used) * minor_per_point), 0)
                if points_used
                else gross
            )
            purchase = rules.Purchase(
                first[2],
                first[4],
                first[5] or "store",
                first[6],
                lines,
                paid,
                0,
                points_used,
                None,
                gross,
            )
            events.append((first[4], 0, purchase))
        for return_id, rows in return_lines.items():
            events.append((rows[0][4], 1, (return_id, rows)))
        events.sort(key=lambda e: (e[0], e[1]))
        return MemberEvents(current or "", list(events))

    for row in frame.select(columns).iter_rows():
        if row[0] != current:
            if current is not None:
                yield flush()
            current = row[0]
            events.clear()
            order_lines.clear()
            return_lines.clear()
        occurred = row[4]
        # naive (UTC) or another UTC object (Polars' zoneinfo): ``datetime.UTC``, the same
        # instant, which the rules and the SQLite adapter handle fastest
        if occurred.tzinfo is not UTC and (
            occurred.tzinfo is None or getattr(occurred.tzinfo, "key", None) in _UTC_KEYS
        ):
            occurred = occurred.replace(tzinfo=UTC)
        row = (*row[:4], occurred, *row[5:])
        if row[1] == "return":
            return_lines.setdefault(row[3] or f"{row[2]}:return", []).append(row)
        else:
            order_lines.setdefault(row[2], []).append(row)
    if current is not None:
        yield flush()


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
) -> ImportReport:
    """Apply checked events (canonical columns, times in UTC, amounts in minor units).

    ``advance_to`` (normally now) then brings each member of the file up to that moment, as
    the scheduled jobs would have, so a loaded history is current without a jobs run over
    every member.

    Normally one transaction per chunk of members, so a stopped import keeps what it did and
    a rerun skips it. ``all_or_nothing`` uses one transaction for everything and raises
    ``AllOrNothingRefused`` (having written nothing) if the rules refuse any event.
    """
    with database.session(tenant_id=tenant_id) as session:
        _, program = program_at(session, now)
        run = ImportRun(kind=run_kind, file_name=file_name, file_sha256=file_sha256, started_at=now)
        session.add(run)
        session.flush()
        run_id = run.id
    report = ImportReport(rows=frame.height)
    minor_per_point = rules.unit(program) / program.points_payment.points_per_unit
    members = list(group_events(frame, minor_per_point=minor_per_point))
    report.events = sum(len(m.events) for m in members)
    total = len(members)
    done = 0
    status = "done"
    if all_or_nothing:
        try:
            with database.session(tenant_id=tenant_id) as session:
                for start in range(0, total, chunk_members):
                    chunk = members[start : start + chunk_members]
                    _apply_chunk(session, tenant_id, program, chunk, now, report, advance_to)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
                if report.rejected:
                    raise AllOrNothingRefused(report)
        except AllOrNothingRefused:
            status = "refused"
            report.applied = report.members_enrolled = 0
    elif PIPELINE_WRITES and database.dialect == "postgresql" and isinstance(database.bind, Engine):
        # (not on one shared connection, as tests use: two sessions at a time need two)
        # the server stores chunk k (COPY, indexes, keys) while this process works out k + 1
        with _Pipeline(database, tenant_id, now, progress, total) as pipeline:
            for start in range(0, total, chunk_members):
                chunk = members[start : start + chunk_members]
                session = database.new_session(tenant_id=tenant_id)
                try:
                    out, stored_orders = _apply_chunk(
                        session,
                        tenant_id,
                        program,
                        chunk,
                        now,
                        report,
                        advance_to,
                        write=False,
                        in_flight=pipeline.in_flight,
                    )
                except BaseException:
                    session.rollback()
                    session.close()
                    raise
                pipeline.submit(session, out, stored_orders, len(chunk))
    else:
        for start in range(0, total, chunk_members):
            chunk = members[start : start + chunk_members]
            with database.session(tenant_id=tenant_id) as session:
                _apply_chunk(session, tenant_id, program, chunk, now, report, advance_to)
            done += len(chunk)
            if progress:
                progress(done, total)
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


class _InFlight:
    """The chunk being written while the next one is worked out: its orders and returns
    count as stored (a rerun would skip them too), and ``wait`` lets it commit first."""

    def __init__(self) -> None:
        self.orders: set[str] = set()
        self.returns: set[str] = set()
        self.future: Future[None] | None = None

    def wait(self) -> None:
        if self.future is not None:
            self.future.result()


class _Pipeline:
    """Writes each chunk in its own transaction on a second thread, one chunk at a time.

    Chunk k commits before chunk k + 1 is handed over, so a stopped import has committed a
    prefix of the chunks (as the plain loop does), and a rerun skips what is stored.
    """

    def __init__(
        self,
        database: Database,
        tenant_id: int,
        now: datetime,
        progress: Callable[[int, int], None] | None,
        total: int,
    ) -> None:
        self.tenant_id, self.now = tenant_id, now
        self.progress, self.total, self.done = progress, total, 0
        self.in_flight = _InFlight()
        self.pending_size = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-write")

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        try:
            if kind is None:
                self._finish_pending()
            elif self.in_flight.future is not None:
                # the chunk in flight commits or not on its own; wait for it either way
                with contextlib.suppress(BaseException):  # the first error is the one raised
                    self.in_flight.future.result()
        finally:
            self.executor.shutdown(wait=True)

    def _finish_pending(self) -> None:
        if self.in_flight.future is None:
            return
        self.in_flight.future.result()
        self.in_flight.future = None
        self.done += self.pending_size
        if self.progress:
            self.progress(self.done, self.total)

    def submit(
        self, session: Session, out: _Rows, stored_orders: dict[str, Order], size: int
    ) -> None:
        try:
            self._finish_pending()
        except BaseException:
            session.rollback()
            session.close()
            raise
        self.in_flight.orders = {event.order_id for _, event, _ in out.orders}
        self.in_flight.returns = {r["return_id"] for r in out.returns}
        self.pending_size = size
        self.in_flight.future = self.executor.submit(self._write, session, out, stored_orders)

    def _write(self, session: Session, out: _Rows, stored_orders: dict[str, Order]) -> None:
        with finished(session):
            out.write(session, self.tenant_id, self.now, stored_orders)


def _apply_chunk(
    session: Session,
    tenant_id: int,
    program: ProgramDefinition,
    chunk: list[MemberEvents],
    now: datetime,
    report: ImportReport,
    advance_to: datetime | None = None,
    *,
    write: bool = True,
    in_flight: _InFlight | None = None,
) -> tuple[_Rows, dict[str, Order]]:
    """Apply the events of one chunk of members; write the rows unless ``write`` is False
    (then the caller writes ``out`` in the same session, see ``_Pipeline``)."""
    ids = [m.member_id for m in chunk]
    known = {
        row.member_id: row
        for row in session.execute(
            select(
                Member.id, Member.member_id, Member.enrolled_at, Member.birthday_month_day
            ).where(Member.tenant_id == tenant_id, Member.member_id.in_(ids))
        )
    }
    order_ids = [e.order_id for m in chunk for _, kind, e in m.events if kind == 0]
    seen_orders = (
        set(
            session.scalars(
                select(Order.order_id).where(
                    Order.tenant_id == tenant_id, Order.order_id.in_(order_ids)
                )
            )
        )
        if order_ids
        else set()
    )
    return_ids = [e[0] for m in chunk for _, kind, e in m.events if kind == 1]
    seen_returns = (
        set(
            session.scalars(
                select(OrderReturn.return_id).where(
                    OrderReturn.tenant_id == tenant_id, OrderReturn.return_id.in_(return_ids)
                )
            )
        )
        if return_ids
        else set()
    )
    if in_flight is not None:  # written by the chunk before, perhaps not committed yet
        seen_orders |= in_flight.orders.intersection(order_ids)
        seen_returns |= in_flight.returns.intersection(return_ids)

    new_members = []
    for member in chunk:
        if member.member_id not in known:
            if not program.enrolment.enrol_on_first_purchase or not member.events:
                report.rejected += len(member.events)
                report.rejects.append(
                    {
                        "row": None,
                        "column": "member_id",
                        "value": member.member_id,
                        "key": "members.not_found",
                    }
                )
                continue
            first = member.events[0][0]
            new_members.append(
                {
                    "tenant_id": tenant_id,
                    "member_id": member.member_id,
                    "enrolled_at": first,
                    "consents": {},
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                    "enrol_channel": getattr(member.events[0][2], "channel", None),
                }
            )
    if new_members:
        session.execute(insert(Member), new_members)
        report.members_enrolled += len(new_members)
        known.update(
            {
                row.member_id: row
                for row in session.execute(
                    select(
                        Member.id, Member.member_id, Member.enrolled_at, Member.birthday_month_day
                    ).where(
                        Member.tenant_id == tenant_id,
                        Member.member_id.in_([m["member_id"] for m in new_members]),
                    )
                )
            }
        )

    pks = [known[m].id for m in ids if m in known]
    states = _load_states(session, tenant_id, program, pks, known, now)

    out = _Rows(adapter_for(session))
    stored_orders: dict[str, Order] = {}
    for member in chunk:
        info = known.get(member.member_id)
        if info is None:
            continue
        loaded = states[info.id]
        state = loaded.state
        entries: list[rules.Entry] = []
        lots: list[rules.Lot] = []
        notices: list[rules.Notice] = []
        orders: dict[str, rules.OrderRecord] = {}
        if loaded.is_new:
            outcome = rules.enrol(program, state, info.enrolled_at, member.member_id)
            entries += outcome.entries
            lots += outcome.lots
            notices += outcome.notices
        for at, kind, event in member.events:
            if kind == 0 and event.order_id in seen_orders:
                report.skipped += 1
                continue
            if kind == 1 and event[0] in seen_returns:
                report.skipped += 1
                continue
            outcome = rules.advance(program, state, max(at, state.as_of or at))
            entries += outcome.entries
            lots += outcome.lots
            notices += outcome.notices
            try:
                if kind == 0:
                    outcome = rules.purchase(program, state, event)
                    assert outcome.order is not None
                    orders[event.order_id] = outcome.order
                    out.orders.append((info.id, event, outcome))
                else:
                    outcome = _bulk_return(
                        session,
                        tenant_id,
                        program,
                        state,
                        orders,
                        stored_orders,
                        event,
                        at,
                        out,
                        info.id,
                        in_flight,
                    )
            except rules.RuleError as error:
                report.rejected += 1
                report.rejects.append(
                    {
                        "row": None,
                        "column": "order_id",
                        "value": event.order_id if kind == 0 else event[0],
                        "key": error.key,
                        "params": error.params,
                    }
                )
                continue
            entries += outcome.entries
            lots += outcome.lots
            notices += outcome.notices
            report.applied += 1
        if advance_to is not None and (state.as_of is None or state.as_of < advance_to):
            # what the jobs would have done since the member's last event: pending points
            # released, lots expired, reviews, birthdays, up to ``advance_to``
            outcome = rules.advance(program, state, advance_to)
            entries += outcome.entries
            lots += outcome.lots
            notices += outcome.notices
        out.add_member(tenant_id, info.id, loaded, entries, lots, now)
        out.tier_changes += [
            (tenant_id, info.id, out.adapt.dt(at), old, new, reason)
            for at, old, new, reason in store.tier_changes(notices)
        ]
        out.final_orders.update({k: (info.id, v) for k, v in orders.items()})
    if write:
        out.write(session, tenant_id, now, stored_orders)
    return out, stored_orders


def _bulk_return(
    session: Session,
    tenant_id: int,
    program: ProgramDefinition,
    state: rules.MemberState,
    orders: dict[str, rules.OrderRecord],
    stored_orders: dict[str, Order],
    event: tuple[str, list[tuple]],
    at: datetime,
    out: _Rows,
    member_pk: int,
    in_flight: _InFlight | None = None,
) -> rules.Outcome:
    return_id, rows = event
    order_id = rows[0][2]
    record = orders.get(order_id)
    if record is None:
        if in_flight is not None and order_id not in stored_orders:
            in_flight.wait()  # the order may be in the chunk being written: let it commit
        row = stored_orders.get(order_id) or session.scalar(
            select(Order).where(Order.tenant_id == tenant_id, Order.order_id == order_id)
        )
        if row is None:
            raise rules.RuleError("ledger.order_not_found", order_id=order_id)
        stored_orders[order_id] = row
        record = order_from_json(row.record)
        orders[order_id] = record
    lines: list[rules.ReturnLine] = []
    for r in rows:
        sku = r[7]
        if sku is None:
            lines += [
                rules.ReturnLine(i, line.quantity - line.returned_quantity)
                for i, line in enumerate(record.lines)
                if line.quantity > line.returned_quantity
            ]
            continue
        index = next((i for i, line in enumerate(record.lines) if line.sku == sku), None)
        if index is None:
            raise rules.RuleError("ledger.unknown_line", line=sku, order_id=order_id)
        lines.append(rules.ReturnLine(index, r[9]))
    outcome = rules.return_(
        program, state, record, rules.Return(return_id, order_id, at, tuple(lines))
    )
    entry = outcome.entries[0]
    out.returns.append(
        {
            "tenant_id": tenant_id,
            "return_id": return_id,
            "order_id": order_id,
            "member_pk": member_pk,
            "occurred_at": at,
            "entry_seq": entry.seq,
            "lines": [{"line": x.line, "quantity": x.quantity} for x in lines],
            "points_reversed": -entry.detail["points"],
            "growth_reversed": -entry.growth,
            "amount_returned": -entry.spend,
        }
    )
    return outcome


def _load_states(
    session: Session,
    tenant_id: int,
    program: ProgramDefinition,
    pks: list[int],
    known: dict[str, Any],
    now: datetime,
) -> dict[int, store.Loaded]:
    notice_days = program.points.expiring_notice_days
    by_pk = {row.id: row for row in known.values()}
    rows = (
        {
            row.member_pk: row
            for row in session.scalars(
                select(MemberStateRow).where(
                    MemberStateRow.tenant_id == tenant_id, MemberStateRow.member_pk.in_(pks)
                )
            )
        }
        if pks
        else {}
    )
    lots: dict[int, list[rules.Lot]] = defaultdict(list)
    activity: dict[int, list[rules.Activity]] = defaultdict(list)
    with_state = list(rows)
    if with_state:
        for lot in session.scalars(
            select(PointsLot).where(
                PointsLot.tenant_id == tenant_id,
                PointsLot.member_pk.in_(with_state),
                (PointsLot.remaining > 0) | (PointsLot.released.is_(False)),
            )
        ):
            lots[lot.member_pk].append(store.lot_from_row(lot))
        horizon = store.activity_horizon(program, now)
        if horizon is not None:
            query = (
                select(
                    LedgerEntry.member_pk,
                    LedgerEntry.at,
                    LedgerEntry.growth,
                    LedgerEntry.spend,
                    LedgerEntry.orders,
                )
                .where(
                    LedgerEntry.tenant_id == tenant_id,
                    LedgerEntry.member_pk.in_(with_state),
                    LedgerEntry.at >= horizon,
                    (LedgerEntry.growth != 0)
                    | (LedgerEntry.spend != 0)
                    | (LedgerEntry.orders != 0),
                )
                .order_by(LedgerEntry.member_pk, LedgerEntry.at, LedgerEntry.seq)
            )
            for pk, at, g, s, o in session.execute(query):
                activity[pk].append(rules.Activity(at, g, s, o))
    loaded: dict[int, store.Loaded] = {}
    for pk in pks:
        member = by_pk[pk]
        row = rows.get(pk)
        if row is None:
            state = rules.new_member_state(
                program, enrolled_at=member.enrolled_at, birthday=member.birthday_month_day
            )
            loaded[pk] = store.Loaded(pk, state, is_new=True, notice_days=notice_days)
            continue
        state = store.state_from_row(
            row, enrolled_at=member.enrolled_at, birthday=member.birthday_month_day
        )
        state.lots = sorted(lots[pk], key=lambda lot: lot.seq)
        state.activity = activity[pk]
        loaded[pk] = store.Loaded(
            pk,
            state,
            is_new=False,
            lots_before={lot.seq: (lot.remaining, lot.released, lot.noticed) for lot in state.lots},
            notice_days=notice_days,
        )
    return loaded


ENTRY_COLUMNS = (
    "tenant_id",
    "member_pk",
    "seq",
    "kind",
    "at",
    "recorded_at",
    "reference",
    "points",
    "growth",
    "spend",
    "orders",
    "detail",
)
POSTING_COLUMNS = (
    "tenant_id",
    "member_pk",
    "entry_seq",
    "leg",
    "source",
    "destination",
    "amount",
    "lot_seq",
    "at",
)
LOT_COLUMNS = (
    "tenant_id",
    "member_pk",
    "seq",
    "earned_at",
    "available_at",
    "expires_at",
    "amount",
    "remaining",
    "source",
    "released",
    "reference",
    "noticed",
)
ORDER_COLUMNS = (
    "tenant_id",
    "order_id",
    "member_pk",
    "occurred_at",
    "channel",
    "store",
    "amount_paid",
    "gross",
    "discount",
    "points_used",
    "points_earned",
    "growth_earned",
    "coupon_code",
    "entry_seq",
    "record",
)
RETURN_COLUMNS = (
    "tenant_id",
    "return_id",
    "order_id",
    "member_pk",
    "occurred_at",
    "entry_seq",
    "lines",
    "points_reversed",
    "growth_reversed",
    "amount_returned",
)


@dataclass
class _Rows:
    """Everything a chunk writes, as tuples for ``insert_rows``."""

    adapt: Adapter
    entries: list[tuple] = field(default_factory=list)
    postings: list[tuple] = field(default_factory=list)
    lots: list[tuple] = field(default_factory=list)
    lot_updates: list[dict[str, Any]] = field(default_factory=list)
    new_states: list[tuple] = field(default_factory=list)
    state_columns: tuple[str, ...] = ()
    state_updates: list[dict[str, Any]] = field(default_factory=list)
    orders: list[tuple[int, rules.Purchase, rules.Outcome]] = field(default_factory=list)
    final_orders: dict[str, tuple[int, rules.OrderRecord]] = field(default_factory=dict)
    returns: list[dict[str, Any]] = field(default_factory=list)
    tier_changes: list[tuple] = field(default_factory=list)

    def add_member(
        self,
        tenant_id: int,
        member_pk: int,
        loaded: store.Loaded,
        entries: list[rules.Entry],
        lots: list[rules.Lot],
        now: datetime,
    ) -> None:
        dt, js = self.adapt.dt, self.adapt.js
        recorded = dt(now)
        for entry in entries:
            at = dt(entry.at)
            self.entries.append(
                (
                    tenant_id,
                    member_pk,
                    entry.seq,
                    entry.kind,
                    at,
                    recorded,
                    entry.reference,
                    entry.points,
                    entry.growth,
                    entry.spend,
                    entry.orders,
                    js(entry.detail),
                )
            )
            for leg, m in enumerate(entry.movements):
                self.postings.append(
                    (
                        tenant_id,
                        member_pk,
                        entry.seq,
                        leg,
                        m.source,
                        m.destination,
                        m.amount,
                        m.lot,
                        at,
                    )
                )
        new_seqs = set()
        flag = self.adapt.flag
        for lot in lots:
            new_seqs.add(lot.seq)
            self.lots.append(
                (
                    tenant_id,
                    member_pk,
                    lot.seq,
                    dt(lot.earned_at),
                    dt(lot.available_at),
                    dt(lot.expires_at),
                    lot.amount,
                    lot.remaining,
                    lot.source,
                    flag(lot.released),
                    lot.reference,
                    flag(lot.noticed),
                )
            )
        # used-up lots leave ``state.lots`` for ``state.retired``: their last change too
        for lot in (*loaded.state.lots, *loaded.state.retired):
            if lot.seq not in new_seqs and loaded.lots_before.get(lot.seq) != (
                lot.remaining,
                lot.released,
                lot.noticed,
            ):
                self.lot_updates.append(
                    {
                        "b_tenant": tenant_id,
                        "b_member": member_pk,
                        "b_seq": lot.seq,
                        "remaining": lot.remaining,
                        "released": lot.released,
                        "noticed": lot.noticed,
                    }
                )
        loaded.state.retired.clear()
        values = store.state_row(tenant_id, member_pk, loaded.state, now, loaded.notice_days)
        if loaded.is_new:
            self.new_states.append(
                tuple(
                    js(v) if k == "bonus_counts" else dt(v) if isinstance(v, datetime) else v
                    for k, v in values.items()
                )
            )
            self.state_columns = tuple(values)
        else:
            self.state_updates.append(values)

    def write(
        self, session: Session, tenant_id: int, now: datetime, stored_orders: dict[str, Order]
    ) -> None:
        from sqlalchemy import bindparam

        js, dt = self.adapt.js, self.adapt.dt
        insert_rows(session, MemberStateRow.__table__, self.state_columns, self.new_states)
        insert_rows(session, LedgerEntry.__table__, ENTRY_COLUMNS, self.entries)
        insert_rows(session, Posting.__table__, POSTING_COLUMNS, self.postings)
        insert_rows(session, PointsLot.__table__, LOT_COLUMNS, self.lots)
        insert_rows(session, TierChange.__table__, store.TIER_CHANGE_COLUMNS, self.tier_changes)
        if self.lot_updates:
            table = PointsLot.__table__
            session.execute(
                table.update()
                .where(
                    table.c.tenant_id == bindparam("b_tenant"),
                    table.c.member_pk == bindparam("b_member"),
                    table.c.seq == bindparam("b_seq"),
                )
                .values(
                    remaining=bindparam("remaining"),
                    released=bindparam("released"),
                    noticed=bindparam("noticed"),
                ),
                self.lot_updates,
            )
        if self.state_updates:
            table = MemberStateRow.__table__
            rows = [
                {
                    **{k: v for k, v in row.items() if k not in ("tenant_id", "member_pk")},
                    "b_tenant": row["tenant_id"],
                    "b_member": row["member_pk"],
                }
                for row in self.state_updates
            ]
            columns = [k for k in rows[0] if not k.startswith("b_")]
            session.execute(
                table.update()
                .where(
                    table.c.tenant_id == bindparam("b_tenant"),
                    table.c.member_pk == bindparam("b_member"),
                )
                .values({c: bindparam(c) for c in columns}),
                rows,
            )
        order_rows = []
        for member_pk, event, outcome in self.orders:
            record = self.final_orders[event.order_id][1]
            purchase_entry = next(e for e in outcome.entries if e.kind == "purchase")
            order_rows.append(
                (
                    tenant_id,
                    event.order_id,
                    member_pk,
                    dt(event.occurred_at),
                    event.channel,
                    event.store,
                    event.amount_paid,
                    event.gross,
                    event.discount,
                    event.points_used,
                    record.points + record.bonus_points,
                    purchase_entry.growth,
                    None,
                    purchase_entry.seq,
                    js(order_to_json(record)),
                )
            )
        insert_rows(session, Order.__table__, ORDER_COLUMNS, order_rows)
        for order_id, row in stored_orders.items():
            member_pk, record = self.final_orders.get(order_id, (None, None))
            if record is not None:
                row.record = order_to_json(record)
        insert_rows(
            session,
            OrderReturn.__table__,
            RETURN_COLUMNS,
            [
                (
                    r["tenant_id"],
                    r["return_id"],
                    r["order_id"],
                    r["member_pk"],
                    dt(r["occurred_at"]),
                    r["entry_seq"],
                    js(r["lines"]),
                    r["points_reversed"],
                    r["growth_reversed"],
                    r["amount_returned"],
                )
                for r in self.returns
            ],
        )
        session.flush()


def as_utc(moment: datetime, timezone: str) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)
