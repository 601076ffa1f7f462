"""One rule engine, two drivers: the live ledger and the bulk importer agree.

A seeded random history of purchases and returns for a few members is applied twice, in two
tenants running the same program:

- live: one event at a time through ``ledger.service`` (as the API does), each in its own
  unit of work;
- bulk: written to a CSV file and applied by ``ledger.bulk.import_transactions``.

Per member, the ledger entries, their postings, the lots and the member's state must be the
same. Running the import again must change nothing.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from conftest import FIXED_NOW
from factories import make_tenant
from memberlab.core.app_state import AppState
from memberlab.datasets.demo import sample_program_text
from memberlab.ledger import bulk, service
from memberlab.ledger.jobs import run_jobs
from memberlab.ledger.models import (
    LedgerEntry,
    Order,
    OrderReturn,
    PointsLot,
    Posting,
    TierChange,
)
from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.ledger.schemas import LineIn, PurchaseCreate, ReturnCreate, ReturnLineIn
from memberlab.members import service as member_service
from memberlab.members.models import Member
from memberlab.members.schemas import MemberCreate
from memberlab.programs import service as program_service
from memberlab.programs.validation import parse_program_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROGRAM_FROM = datetime(2023, 1, 1, tzinfo=SHANGHAI)
FIRST_DAY = datetime(2023, 1, 6, 9, tzinfo=SHANGHAI)
CATEGORIES = {
    "teahouse": ["tea", "coffee", "seasonal", "bakery", "merch", "gift_card"],
    "department_store": ["cosmetics", "apparel", "electronics", "food", "gift_card"],
}
CHANNELS = {
    "teahouse": ["store", "mini_program", "app", "delivery"],
    "department_store": ["store", "app", "mini_program"],
}
CSV_COLUMNS = [
    "kind",
    "member_id",
    "order_id",
    "return_id",
    "occurred_at",
    "channel",
    "sku",
    "category",
    "quantity",
    "amount",
    "points_used",
]


# --- histories -------------------------------------------------------------------------------


@dataclass
class Line:
    sku: str
    category: str
    quantity: int
    fen: int

    @property
    def amount(self) -> Decimal:
        return Decimal(self.fen) / 100


@dataclass
class Purchase:
    member_id: str
    order_id: str
    at: datetime
    channel: str
    lines: list[Line]
    points_used: int = 0


@dataclass
class Return:
    member_id: str
    return_id: str
    order_id: str
    at: datetime
    lines: list[tuple[str, int]] | None  # (sku, quantity); None: everything left


@dataclass
class History:
    program: str
    members: list[str]
    events: list[Purchase | Return] = field(default_factory=list)


def random_history(program: str, seed: int, *, members: int = 5) -> History:
    """Purchases over almost four years and returns within the program's return window."""
    rng = random.Random(seed)
    window = parse_program_text(sample_program_text(program)).returns.window_days or 7
    history = History(program, [f"M{seed}-{n}" for n in range(members)])
    span = int((FIXED_NOW - FIRST_DAY).total_seconds() // 60) - 60 * 24 * 10
    for member_id in history.members:
        minutes = sorted(rng.sample(range(span), rng.randint(2, 9)))
        for n, minute in enumerate(minutes):
            at = FIRST_DAY + timedelta(minutes=minute)
            lines = [
                Line(
                    f"sku{i}",
                    rng.choice(CATEGORIES[program]),
                    rng.randint(1, 3),
                    rng.choice(
                        [
                            rng.randint(100, 9_999),
                            rng.randint(10_000, 150_000),
                            rng.randint(1, 9) * 100_000,
                        ]
                    ),
                )
                for i in range(rng.randint(1, 3))
            ]
            order_id = f"{member_id}-o{n}"
            history.events.append(
                Purchase(member_id, order_id, at, rng.choice(CHANNELS[program]), lines)
            )
            left = {line.sku: line.quantity for line in lines}
            when = at
            for r in range(rng.choice([0, 0, 1, 1, 2])):
                when = when + timedelta(minutes=rng.randint(30, (window - 1) * 24 * 60 // 2))
                sku = rng.choice(sorted(left))
                if rng.random() < 0.3 or not left[sku]:
                    wanted = None
                else:
                    wanted = [(sku, rng.randint(1, left[sku]))]
                history.events.append(Return(member_id, f"{order_id}-r{r}", order_id, when, wanted))
                if wanted is None:
                    break
                left[sku] -= wanted[0][1]
                if not any(left.values()):
                    break
    # as both drivers see them: per member in time order, purchases before returns
    history.events.sort(key=lambda e: (e.member_id, e.at, isinstance(e, Return)))
    return history


def write_csv(history: History, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for event in history.events:
            local = event.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
            if isinstance(event, Purchase):
                for line in event.lines:
                    writer.writerow(
                        [
                            "purchase",
                            event.member_id,
                            event.order_id,
                            "",
                            local,
                            event.channel,
                            line.sku,
                            line.category,
                            line.quantity,
                            f"{line.amount:.2f}",
                            event.points_used,
                        ]
                    )
            else:
                for sku, quantity in event.lines or [("", "")]:
                    writer.writerow(
                        [
                            "return",
                            event.member_id,
                            event.order_id,
                            event.return_id,
                            local,
                            "",
                            sku,
                            "",
                            quantity or 1,
                            "",
                            "",
                        ]
                    )


# --- the two drivers -------------------------------------------------------------------------


def open_tenant(state: AppState, slug: str, program: str, history: History) -> int:
    """A tenant running ``program``; where a purchase does not enrol, the members sign up."""
    tenant = make_tenant(state, slug=slug).tenant.id
    text = sample_program_text(program)
    with state.database.session(tenant_id=tenant) as session:
        version = program_service.load(session, source=text, created_by="test", now=FIXED_NOW)
        program_service.activate(
            session,
            version_id=version.version.id,
            effective_from=PROGRAM_FROM,
            activated_by="test",
            now=FIXED_NOW,
        )
        if not parse_program_text(text).enrolment.enrol_on_first_purchase:
            for n, member_id in enumerate(history.members):
                member_service.enrol(
                    session,
                    MemberCreate(
                        member_id=member_id,
                        enrolled_at=FIRST_DAY - timedelta(days=3),
                        birthday=datetime(1990, 1 + n * 2, 10 + n).date(),
                    ),
                    ctx=member_service.MemberContext(vault=state.vault),
                    now=FIXED_NOW,
                )
    return tenant


def apply_live(state: AppState, tenant_id: int, history: History) -> None:
    """Each event as the API applies it: one unit of work, through ``ledger.service``."""
    for event in history.events:
        with state.database.session(tenant_id=tenant_id) as session:
            ctx = service.LedgerContext(
                session=session,
                tenant_id=tenant_id,
                now=FIXED_NOW,
                vault=state.vault,
                actor="test",
            )
            if isinstance(event, Purchase):
                answer = service.post_purchase(
                    ctx,
                    PurchaseCreate(
                        member_id=event.member_id,
                        order_id=event.order_id,
                        occurred_at=event.at,
                        channel=event.channel,
                        lines=[
                            LineIn(
                                sku=x.sku,
                                category=x.category,
                                quantity=x.quantity,
                                amount=x.amount,
                            )
                            for x in event.lines
                        ],
                        points_used=event.points_used,
                    ),
                )
            else:
                answer = service.post_return(
                    ctx,
                    ReturnCreate(
                        return_id=event.return_id,
                        order_id=event.order_id,
                        occurred_at=event.at,
                        lines=None
                        if event.lines is None
                        else [ReturnLineIn(sku=s, quantity=q) for s, q in event.lines],
                    ),
                )
            assert answer.status_code == 201, answer.body


def bring_to(state: AppState, tenant_id: int, as_of: datetime) -> None:
    """Run the time-based jobs of a tenant up to ``as_of``."""
    with state.database.session(tenant_id=tenant_id) as session:
        ctx = service.LedgerContext(
            session=session, tenant_id=tenant_id, now=FIXED_NOW, vault=state.vault, actor="test"
        )
        run_jobs(ctx, as_of=as_of)


def apply_bulk(state: AppState, tenant_id: int, path: Path, workers: int = 0) -> bulk.ImportReport:
    """``workers``: 0 works each chunk out in this process, else in that many processes."""
    return bulk.import_transactions(
        state.database,
        tenant_id=tenant_id,
        path=path,
        now=FIXED_NOW,
        chunk_members=2,
        workers=workers,
    )


# --- what each driver left -----------------------------------------------------------------


def ledger_of(state: AppState, tenant_id: int) -> dict[str, dict[str, Any]]:
    """Per member: entries, postings, lots and state, as comparable tuples."""
    out: dict[str, dict[str, Any]] = {}
    with state.database.session(tenant_id=tenant_id) as session:
        members = dict(session.execute(select(Member.id, Member.member_id)).all())
        for pk, member_id in members.items():
            entries = session.scalars(
                select(LedgerEntry).where(LedgerEntry.member_pk == pk).order_by(LedgerEntry.seq)
            )
            postings = session.scalars(
                select(Posting)
                .where(Posting.member_pk == pk)
                .order_by(Posting.entry_seq, Posting.leg)
            )
            lots = session.scalars(
                select(PointsLot).where(PointsLot.member_pk == pk).order_by(PointsLot.seq)
            )
            row = session.scalar(select(MemberStateRow).where(MemberStateRow.member_pk == pk))
            tier_changes = session.scalars(
                select(TierChange).where(TierChange.member_pk == pk).order_by(TierChange.at)
            )
            out[member_id] = {
                "tier_changes": [(c.at, c.from_tier, c.to_tier, c.reason) for c in tier_changes],
                "entries": [
                    (e.seq, e.kind, e.at, e.reference, e.points, e.growth, e.spend, e.orders)
                    for e in entries
                ],
                "postings": [
                    (p.entry_seq, p.leg, p.source, p.destination, p.amount, p.lot_seq)
                    for p in postings
                ],
                "lots": [
                    (x.seq, x.amount, x.remaining, x.expires_at, x.available_at, x.released)
                    for x in lots
                ],
                "state": None
                if row is None
                else {
                    "tier": row.tier,
                    "available": row.available,
                    "pending": row.pending,
                    "debt": row.debt,
                    "lifetime_growth": row.lifetime_growth,
                    "lifetime_spend": row.lifetime_spend,
                    "as_of": row.as_of,
                    "next_seq": row.next_seq,
                },
            }
    return out


def counts(state: AppState, tenant_id: int) -> dict[str, int]:
    tables = (
        LedgerEntry,
        Posting,
        PointsLot,
        Order,
        OrderReturn,
        MemberStateRow,
        Member,
        TierChange,
    )
    with state.database.session(tenant_id=tenant_id) as session:
        return {
            t.__tablename__: session.scalar(select(func.count()).select_from(t)) or 0
            for t in tables
        }


def differences(live: dict[str, Any], imported: dict[str, Any]) -> list[str]:
    """Readable differences, member by member and part by part."""
    found = []
    for member_id in sorted(set(live) | set(imported)):
        for part in ("entries", "postings", "lots", "state"):
            a = live.get(member_id, {}).get(part)
            b = imported.get(member_id, {}).get(part)
            if a != b:
                found.append(f"{member_id} {part}:\n  live {a}\n  bulk {b}")
    return found


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("program", ["teahouse", "department_store"])
@pytest.mark.parametrize(("seed", "workers"), [(1, 0), (2, 0), (3, 2)])
def test_live_and_bulk_drivers_agree_on_a_random_history(
    state: AppState, tmp_path: Path, program: str, seed: int, workers: int
) -> None:
    history = random_history(program, seed)
    assert sum(isinstance(e, Return) for e in history.events) >= 2  # the seeds have returns
    path = tmp_path / "transactions.csv"
    write_csv(history, path)
    live = open_tenant(state, "live", program, history)
    imported = open_tenant(state, "bulk", program, history)

    apply_live(state, live, history)
    report = apply_bulk(state, imported, path, workers)

    assert (report.rejected, report.rejects) == (0, [])
    assert report.applied == len(history.events)
    live_ledger, bulk_ledger = ledger_of(state, live), ledger_of(state, imported)
    assert set(live_ledger) == set(history.members)
    kinds = {entry[1] for member in live_ledger.values() for entry in member["entries"]}
    assert {"sign_up", "purchase", "return", "release", "expire"} <= kinds, kinds
    tiers = {member["state"]["tier"] for member in live_ledger.values()}
    assert len(tiers) > 1, tiers
    assert differences(live_ledger, bulk_ledger) == []

    # stopped or not, a rerun applies nothing twice
    before = counts(state, imported)
    again = apply_bulk(state, imported, path, workers)
    assert (again.applied, again.skipped) == (0, len(history.events))
    assert counts(state, imported) == before
    assert ledger_of(state, imported) == bulk_ledger


def history_with(program: str, *events: Purchase | Return) -> History:
    members = sorted({e.member_id for e in events})
    return History(program, members, list(events))


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_live_and_bulk_agree_on_points_used_as_payment(state: AppState, tmp_path: Path) -> None:
    # 200 welcome points + 100 for a 100-yuan order (+50 bonus) = 350 available after
    # 3 days; then 30 yuan of tea paid with 300 points (3 yuan): 27 yuan earns 27 points.
    history = history_with(
        "teahouse",
        Purchase("P-1", "p-1", at(2026, 5, 1, 12), "store", [Line("tea", "tea", 1, 10_000)]),
        Purchase("P-1", "p-2", at(2026, 5, 10, 12), "store", [Line("tea", "tea", 1, 3_000)], 300),
    )
    path = tmp_path / "transactions.csv"
    write_csv(history, path)
    live = open_tenant(state, "live", "teahouse", history)
    imported = open_tenant(state, "bulk", "teahouse", history)

    apply_live(state, live, history)
    apply_bulk(state, imported, path)

    live_ledger = ledger_of(state, live)
    assert [e[4] for e in live_ledger["P-1"]["entries"] if e[3] == "p-2"] == [-300, 27]
    assert differences(live_ledger, ledger_of(state, imported)) == []


def test_a_later_import_that_uses_up_stored_lots_writes_them_down(
    state: AppState, tmp_path: Path
) -> None:
    """A lot of a first import used up by a second (300 points paid for a 30-yuan order: the
    200 welcome points first, then 100 of the first order's 150) is stored with nothing
    left, as live, also when a later event of the same import retires it."""
    first = Purchase("U-1", "u-1", at(2026, 5, 1, 12), "store", [Line("tea", "tea", 1, 10_000)])
    second = Purchase("U-1", "u-2", at(2026, 5, 10, 12), "store", [Line("tea", "tea", 1, 3_000)],
                      300)  # fmt: skip
    third = Purchase("U-1", "u-3", at(2026, 5, 20, 12), "store", [Line("tea", "tea", 1, 1_000)])
    history = history_with("teahouse", first, second, third)
    live = open_tenant(state, "live", "teahouse", history)
    imported = open_tenant(state, "bulk", "teahouse", history)
    apply_live(state, live, history)
    for part, events in (("first", [first]), ("then", [second, third])):
        path = tmp_path / f"{part}.csv"
        write_csv(history_with("teahouse", *events), path)
        assert apply_bulk(state, imported, path).applied == len(events)

    live_ledger = ledger_of(state, live)
    spent = [lot for lot in live_ledger["U-1"]["lots"] if lot[1] > 0 and lot[2] == 0]
    assert len(spent) == 1  # the welcome lot
    assert differences(live_ledger, ledger_of(state, imported)) == []


def test_live_and_bulk_agree_on_a_return_past_the_window(state: AppState, tmp_path: Path) -> None:
    # the teahouse takes returns for 7 days; this one comes 10 days after the order
    order = Purchase("W-1", "w-1", at(2026, 5, 1, 12), "store", [Line("tea", "tea", 1, 5_000)])
    late = Return("W-1", "w-1-r", "w-1", at(2026, 5, 11, 12), None)
    path = tmp_path / "transactions.csv"
    write_csv(history_with("teahouse", order, late), path)
    live = open_tenant(state, "live", "teahouse", history_with("teahouse", order))
    imported = open_tenant(state, "bulk", "teahouse", history_with("teahouse", order))

    apply_live(state, live, history_with("teahouse", order))
    with pytest.raises(service.LedgerRuleRefused):
        apply_live(state, live, history_with("teahouse", late))
    report = apply_bulk(state, imported, path)

    assert [r["key"] for r in report.rejects] == ["ledger.return_window"]
    # A refused event leaves time advanced in the importer (the chunk goes on) but not in
    # the live ledger (its transaction is rolled back). The state is a function of the
    # events and of the moment, so compare the two as of the same moment.
    bring_to(state, live, FIXED_NOW)
    bring_to(state, imported, FIXED_NOW)
    assert differences(ledger_of(state, live), ledger_of(state, imported)) == []
