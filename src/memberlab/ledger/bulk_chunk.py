"""One chunk of a bulk import, worked out away from the database.

``memberlab.ledger.bulk`` reads what a chunk of members needs from the database (members,
states, orders already stored) into a ``ChunkInput``; ``compute_chunk`` runs every event
through ``memberlab.programs.rules`` and returns the rows to write (``ChunkRows``). It does
no I/O, so it runs in worker processes, one chunk each, while the importer reads and
writes the chunks before and after it: that is how an import uses more than one core.

Everything here crosses a process boundary, so it is plain data (tuples, dataclasses) and
the rows are already in the database's own terms (``bulkrows.Adapter``; for PostgreSQL even
rendered as COPY text), which leaves the importer only the writing.
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, NamedTuple

import polars as pl

from memberlab.core.bulkrows import (
    CAN_PACK,
    Adapter,
    CopyText,
    PackedRows,
    copy_instant,
    copy_str,
    copy_text,
    pack_rows,
)
from memberlab.core.gcpause import collect_young
from memberlab.ledger import rows as ledger_rows
from memberlab.programs import rules
from memberlab.programs.schema import ProgramDefinition

_UTC_KEYS = ("UTC", "Etc/UTC")

# the columns of the canonical frame that ``group_events`` reads, in this order
EVENT_COLUMNS = (
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
)


@dataclass
class MemberEvents:
    member_id: str
    events: list[tuple[datetime, int, Any]]  # (time, 0 purchase / 1 return, event)


def group_events(
    frame: pl.DataFrame,
    *,
    minor_per_point: Decimal,
    is_sorted: bool = False,
) -> Iterator[MemberEvents]:
    """Per member, in time order: purchases (lines grouped by order) and returns.

    The line amounts are what the lines cost; points used as payment
    (``minor_per_point`` each) are not money paid and earn nothing, as in the live path.
    ``is_sorted``: the frame is already in (member, time, order, row) order.
    """
    if not is_sorted:
        frame = frame.sort(["member_id", "occurred_at", "order_id", "row"])
    current: str | None = None
    events: list[tuple[datetime, int, Any]] = []
    order_lines: dict[str, list[tuple]] = {}
    return_lines: dict[str, list[tuple]] = {}

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
        if return_lines:  # purchases alone are in time order already (the frame's)
            for return_id, rows in return_lines.items():
                events.append((rows[0][4], 1, (return_id, rows)))
            events.sort(key=lambda e: (e[0], e[1]))
        return MemberEvents(current or "", list(events))

    for row in _event_rows(frame):
        if row[0] != current:
            if current is not None:
                yield flush()
            current = row[0]
            events.clear()
            order_lines.clear()
            return_lines.clear()
        if row[1] == "return":
            return_lines.setdefault(row[3] or f"{row[2]}:return", []).append(row)
        else:
            order_lines.setdefault(row[2], []).append(row)
    if current is not None:
        yield flush()


def _event_rows(frame: pl.DataFrame) -> Iterator[tuple]:
    """The frame's ``EVENT_COLUMNS`` as tuples, times as ``datetime.UTC`` (the same instant
    as Polars' UTC zone object, and what the rules and the SQLite adapter handle fastest;
    naive times are UTC). Column by column: cheaper than Polars' ``iter_rows``."""
    columns = frame.select(EVENT_COLUMNS)
    zone = columns.schema["occurred_at"].time_zone  # type: ignore[union-attr]
    if zone is None or zone in _UTC_KEYS:
        naive = columns["occurred_at"].dt.replace_time_zone(None).to_list()
        times = [None if t is None else t.replace(tzinfo=UTC) for t in naive]
    else:  # another zone: its own aware times
        times = columns["occurred_at"].to_list()
    lists = [times if name == "occurred_at" else columns[name].to_list() for name in EVENT_COLUMNS]
    return zip(*lists, strict=True)


# --- what crosses the process boundary -------------------------------------------------------


@dataclass(frozen=True)
class ChunkContext:
    """What is the same for every chunk of one import (sent once to each worker)."""

    tenant_id: int
    program: ProgramDefinition
    now: datetime
    advance_to: datetime | None
    minor_per_point: Decimal
    dialect: str


class MemberInfo(NamedTuple):
    pk: int
    enrolled_at: datetime
    birthday: str | None


@dataclass
class ChunkInput:
    """One chunk of members: its rows of the file and what the database holds of them."""

    frame: pl.DataFrame  # the chunk's rows, in (member, time, order, row) order
    members: dict[str, MemberInfo]  # by member number; absent: unknown and not enrolled
    states: dict[int, ledger_rows.Loaded]  # by member pk
    seen_orders: set[str]  # stored already: skipped
    seen_returns: set[str]
    stored_orders: dict[str, rules.OrderRecord]  # orders stored before, that returns refer to


@dataclass
class ChunkRows:
    """Everything a chunk writes, as tuples in the database's terms (or COPY text)."""

    entries: list[tuple] | CopyText = field(default_factory=list)
    postings: list[tuple] | CopyText = field(default_factory=list)
    lots: list[tuple] | CopyText = field(default_factory=list)
    lot_updates: list[dict[str, Any]] = field(default_factory=list)
    new_states: list[tuple] | CopyText = field(default_factory=list)
    state_columns: tuple[str, ...] = ()
    state_updates: list[dict[str, Any]] = field(default_factory=list)
    orders: list[tuple] | CopyText = field(default_factory=list)
    order_records: list[tuple[str, dict]] = field(default_factory=list)  # stored order, record
    returns: list[tuple] | CopyText = field(default_factory=list)
    tier_changes: list[tuple] | CopyText = field(default_factory=list)
    member_pks: list[int] = field(default_factory=list)  # every member the chunk changes
    packed: PackedRows | None = None  # SQLite, from a worker: the inserted tables' rows

    def inserts(self) -> list[tuple[str, tuple[str, ...], list[tuple] | CopyText]]:
        """The rows to insert, as (table name, columns, rows), in the order of writing."""
        return [
            ("member_states", self.state_columns, self.new_states),
            ("ledger_entries", ENTRY_COLUMNS, self.entries),
            ("postings", POSTING_COLUMNS, self.postings),
            ("points_lots", LOT_COLUMNS, self.lots),
            ("tier_changes", ledger_rows.TIER_CHANGE_COLUMNS, self.tier_changes),
            ("orders", ORDER_COLUMNS, self.orders),
            ("order_returns", RETURN_COLUMNS, self.returns),
        ]

    def pack(self) -> None:
        """Move the rows to insert into ``packed`` (SQLite's lists of tuples only): what a
        worker sends back, as one image of bytes (``bulkrows.PackedRows``)."""
        tables: dict[str, tuple[tuple[str, ...], list[tuple]]] = {}
        for name, columns, rows in self.inserts():
            if isinstance(rows, CopyText):
                raise TypeError("COPY text is PostgreSQL's: not packed")
            tables[name] = (columns, rows)
        self.packed = pack_rows(tables)
        self.new_states, self.entries, self.postings, self.lots = [], [], [], []
        self.tier_changes, self.orders, self.returns = [], [], []


@dataclass
class ChunkResult:
    rows: ChunkRows
    events: int = 0
    applied: int = 0
    skipped: int = 0
    rejected: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)


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
LOT_COLUMNS = ("tenant_id", "member_pk", *ledger_rows.LOT_FIELDS)
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


# COPY text lines (PostgreSQL) of the four tables a purchase fills, each knowing its columns'
# types: ``copy_text`` looks at the type of each value (about 3.9 us a posting against 1.5).
# tests/ledger/test_bulk_chunk.py checks that they write what ``copy_text`` writes.
_NULL = "\\N"


def _entry_line(row: tuple, instants: dict[datetime, str]) -> str:
    tenant, member, seq, kind, at, recorded, reference, points, growth, spend, orders, detail = row
    at, recorded = copy_instant(at, instants), copy_instant(recorded, instants)
    reference = _NULL if reference is None else copy_str(reference)
    return (
        f"{tenant}\t{member}\t{seq}\t{copy_str(kind)}\t{at}\t{recorded}\t{reference}\t"
        f"{points}\t{growth}\t{spend}\t{orders}\t{copy_str(detail)}\n"
    )


def _posting_line(row: tuple, instants: dict[datetime, str]) -> str:
    tenant, member, seq, leg, source, destination, amount, lot, at = row
    lot = _NULL if lot is None else lot
    return (
        f"{tenant}\t{member}\t{seq}\t{leg}\t{copy_str(source)}\t{copy_str(destination)}\t"
        f"{amount}\t{lot}\t{copy_instant(at, instants)}\n"
    )


def _lot_line(row: tuple, instants: dict[datetime, str]) -> str:
    tenant, member, seq, earned, available, expires, amount, remaining = row[:8]
    source, released, reference, noticed = row[8:]
    earned, available = copy_instant(earned, instants), copy_instant(available, instants)
    expires = _NULL if expires is None else copy_instant(expires, instants)
    reference = _NULL if reference is None else copy_str(reference)
    released, noticed = "t" if released else "f", "t" if noticed else "f"
    return (
        f"{tenant}\t{member}\t{seq}\t{earned}\t{available}\t{expires}\t{amount}\t"
        f"{remaining}\t{copy_str(source)}\t{released}\t{reference}\t{noticed}\n"
    )


def _order_line(row: tuple, instants: dict[datetime, str]) -> str:
    tenant, order_id, member, at, channel, shop, paid, gross, discount = row[:9]
    points_used, points, growth, coupon, entry_seq, record = row[9:]
    shop = _NULL if shop is None else copy_str(shop)
    coupon = _NULL if coupon is None else copy_str(coupon)
    return (
        f"{tenant}\t{copy_str(order_id)}\t{member}\t{copy_instant(at, instants)}\t"
        f"{copy_str(channel)}\t{shop}\t{paid}\t{gross}\t{discount}\t{points_used}\t"
        f"{points}\t{growth}\t{coupon}\t{entry_seq}\t{copy_str(record)}\n"
    )


def _copy_lines(rows: list[tuple], line: Any, instants: dict[datetime, str]) -> CopyText:
    return CopyText("".join([line(row, instants) for row in rows]), len(rows))


# --- working a chunk out ---------------------------------------------------------------------


def compute_chunk(context: ChunkContext, chunk: ChunkInput) -> ChunkResult:
    """Run the chunk's events through the rules, member by member, in time order.

    Callers run it with the cyclic garbage collector paused (``core.gcpause``): the
    importer's ``apply_events`` and the worker processes do; otherwise the collector walks
    what the chunk keeps again and again, about half of the CPU."""
    program, tenant_id = context.program, context.tenant_id
    result = ChunkResult(ChunkRows())
    builder = _RowBuilder(Adapter(context.dialect), tenant_id, context.now, result.rows)
    for member in group_events(
        chunk.frame, minor_per_point=context.minor_per_point, is_sorted=True
    ):
        result.events += len(member.events)
        info = chunk.members.get(member.member_id)
        if info is None:
            result.rejected += len(member.events)
            result.rejects.append(
                {
                    "row": None,
                    "column": "member_id",
                    "value": member.member_id,
                    "key": "members.not_found",
                }
            )
            continue
        loaded = chunk.states[info.pk]
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
            if kind == 0 and event.order_id in chunk.seen_orders:
                result.skipped += 1
                continue
            if kind == 1 and event[0] in chunk.seen_returns:
                result.skipped += 1
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
                    builder.purchases.append((info.pk, event, outcome))
                    # stored now: another member's row with the same order id is skipped
                    chunk.seen_orders.add(event.order_id)
                else:
                    outcome = _return(program, state, orders, chunk, event, at, builder, info.pk)
                    chunk.seen_returns.add(event[0])
            except rules.RuleError as error:
                result.rejected += 1
                result.rejects.append(
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
            result.applied += 1
        advance_to = context.advance_to
        if advance_to is not None and (state.as_of is None or state.as_of < advance_to):
            # what the jobs would have done since the member's last event: pending points
            # released, lots expired, reviews, birthdays, up to ``advance_to``
            outcome = rules.advance(program, state, advance_to)
            entries += outcome.entries
            lots += outcome.lots
            notices += outcome.notices
        builder.add_member(info.pk, loaded, entries, lots, notices)
        builder.final_orders.update({k: (info.pk, v) for k, v in orders.items()})
    builder.finish(chunk.stored_orders)
    return result


def _return(
    program: ProgramDefinition,
    state: rules.MemberState,
    orders: dict[str, rules.OrderRecord],
    chunk: ChunkInput,
    event: tuple[str, list[tuple]],
    at: datetime,
    builder: _RowBuilder,
    member_pk: int,
) -> rules.Outcome:
    return_id, rows = event
    order_id = rows[0][2]
    record = orders.get(order_id)
    if record is None:
        record = chunk.stored_orders.get(order_id)
        if record is None:
            raise rules.RuleError("ledger.order_not_found", order_id=order_id)
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
    adapt = builder.adapt
    builder.returns.append(
        (
            builder.tenant_id,
            return_id,
            order_id,
            member_pk,
            adapt.dt(at),
            entry.seq,
            adapt.js([{"line": x.line, "quantity": x.quantity} for x in lines]),
            -entry.detail["points"],
            -entry.growth,
            -entry.spend,
        )
    )
    return outcome


class _RowBuilder:
    """Turns what the rules produced into ``ChunkRows``."""

    def __init__(self, adapt: Adapter, tenant_id: int, now: datetime, rows: ChunkRows) -> None:
        self.adapt, self.tenant_id, self.now, self.rows = adapt, tenant_id, now, rows
        self.recorded = adapt.dt(now)
        self.purchases: list[tuple[int, rules.Purchase, rules.Outcome]] = []
        self.final_orders: dict[str, tuple[int, rules.OrderRecord]] = {}
        self.entries: list[tuple] = []
        self.postings: list[tuple] = []
        self.lots: list[tuple] = []
        self.new_states: list[tuple] = []
        self.returns: list[tuple] = []
        self.tier_changes: list[tuple] = []

    def add_member(
        self,
        member_pk: int,
        loaded: ledger_rows.Loaded,
        entries: list[rules.Entry],
        lots: list[rules.Lot],
        notices: list[rules.Notice],
    ) -> None:
        rows, tenant_id = self.rows, self.tenant_id
        dt, js = self.adapt.dt, self.adapt.js
        rows.member_pks.append(member_pk)
        recorded = self.recorded
        entry_rows, posting_rows = self.entries, self.postings
        for entry in entries:
            at = dt(entry.at)
            entry_rows.append(
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
                posting_rows.append(
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
        lot_rows = self.lots
        for lot in lots:
            new_seqs.add(lot.seq)
            lot_rows.append(
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
                rows.lot_updates.append(
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
        values = ledger_rows.state_row(
            tenant_id, member_pk, loaded.state, self.now, loaded.notice_days
        )
        if loaded.is_new:
            self.new_states.append(
                tuple(
                    js(v) if k == "bonus_counts" else dt(v) if isinstance(v, datetime) else v
                    for k, v in values.items()
                )
            )
            rows.state_columns = tuple(values)
        else:
            rows.state_updates.append(values)
        self.tier_changes += [
            (tenant_id, member_pk, dt(at), old, new, reason)
            for at, old, new, reason in ledger_rows.tier_changes(notices)
        ]

    def finish(self, stored_orders: dict[str, rules.OrderRecord]) -> None:
        """The orders with their final records (returns change them), and, for PostgreSQL,
        every inserted table as COPY text."""
        rows, tenant_id = self.rows, self.tenant_id
        dt, js = self.adapt.dt, self.adapt.js
        order_rows = []
        for member_pk, event, outcome in self.purchases:
            record = self.final_orders[event.order_id][1]
            purchase_entry = outcome.main
            assert purchase_entry is not None  # a purchase's outcome has its entry
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
                    js(ledger_rows.order_to_json(record)),
                )
            )
        # in time order (each member's orders stay in theirs): the index by time takes them
        # from one end to the other rather than all over, and the ids follow the times.
        # 1,000,000 purchases into SQLite: the orders' inserts 8.0 -> 7.35 s.
        order_rows.sort(key=itemgetter(3))
        rows.order_records = [
            (order_id, ledger_rows.order_to_json(self.final_orders[order_id][1]))
            for order_id in stored_orders
            if order_id in self.final_orders
        ]
        # PostgreSQL: as COPY text, made here rather than by the process that writes
        if self.adapt.sqlite:
            rows.entries, rows.postings, rows.lots = self.entries, self.postings, self.lots
            rows.orders, rows.new_states = order_rows, self.new_states
            rows.returns, rows.tier_changes = self.returns, self.tier_changes
            return
        instants: dict[datetime, str] = {}  # the chunk's UTC instants, as COPY text
        rows.entries = _copy_lines(self.entries, _entry_line, instants)
        rows.postings = _copy_lines(self.postings, _posting_line, instants)
        rows.lots = _copy_lines(self.lots, _lot_line, instants)
        rows.orders = _copy_lines(order_rows, _order_line, instants)
        rows.new_states = copy_text(self.new_states, instants)
        rows.returns = copy_text(self.returns, instants)
        rows.tier_changes = copy_text(self.tier_changes, instants)


# --- in a worker process ---------------------------------------------------------------------

_worker_context: ChunkContext | None = None


def start_worker(context: ChunkContext) -> None:
    """The pool's initializer: the import's context, once per worker process.

    A worker also ends when the importer does: killed (``kill -9``), it cannot shut its
    pool down, and the workers would otherwise wait for work for ever."""
    global _worker_context
    _worker_context = context
    # a worker only works chunks out: the collector stays paused, and each chunk collects
    # what is left of the one before (``compute_in_worker``)
    gc.disable()
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent.sentinel,), daemon=True).start()


def worker_pool(context: ChunkContext | None, workers: int) -> ProcessPoolExecutor:
    """``workers`` processes, started now, that work chunks out (``compute_in_worker``).

    A spawned process first runs its parent's ``__main__`` again, so that what the parent
    defines there can be unpickled. The workers need nothing from it, and for the
    ``memberlab`` command it is all of ``memberlab.cli``: seconds of CPU per worker before
    its first chunk. So while they start, ``__main__`` is an empty module (under a lock:
    the server may start two imports at once), and each submit of a first task starts one
    worker, as the pool starts a process while none is idle. Hence nothing sent to these
    workers may be defined in ``__main__``; ``context`` and chunks hold memberlab's types.
    As with any process pool, a worker that dies breaks the pool (``BrokenProcessPool``).
    """
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(context,),
    )
    try:
        with _MAIN_SWAPPED:
            main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")  # no file to run again
            try:
                for _ in range(workers):
                    pool.submit(os.getpid)
            finally:
                sys.modules["__main__"] = main
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool


_MAIN_SWAPPED = threading.Lock()


def _end_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def compute_in_worker(chunk: ChunkInput) -> ChunkResult:
    assert _worker_context is not None, "start_worker was not called"
    # the last chunk's objects were freed with it: this walks little more than the new input
    collect_young()
    result = compute_chunk(_worker_context, chunk)
    if _worker_context.dialect == "sqlite" and CAN_PACK:
        result.rows.pack()
    return result
