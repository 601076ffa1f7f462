"""The live ledger: applies the program's rules to one member at a time and persists them.

Every operation loads the member's state (locking the member), advances it to the event's
time (pending releases, expiries, reviews, birthdays), applies the event through
``memberlab.programs.rules``, writes the entries, postings and lots, and queues webhooks,
all in the caller's transaction. Writes are idempotent (``idempotency.replay_or_run``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from memberlab.core.db import session_tenant
from memberlab.core.errors import Conflict, FieldError, InvalidInput, NotFound
from memberlab.core.fastsql import FastStatement
from memberlab.core.money import points_value, to_minor
from memberlab.core.pii import PersonalDataVault
from memberlab.ledger import store
from memberlab.ledger.idempotency import Answer, replay_or_run
from memberlab.ledger.models import LedgerEntry, Order, OrderReturn, PointsLot, TierChange
from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.ledger.rows import Loaded, order_from_json, order_head, order_to_json, tier_changes
from memberlab.ledger.schemas import (
    AdjustmentCreate,
    Balances,
    BonusCreate,
    EntryResult,
    EntryView,
    LotView,
    PlanPurchaseCreate,
    PointsView,
    PurchaseCreate,
    PurchaseResult,
    ReturnCreate,
    ReturnResult,
    RuleLine,
)
from memberlab.members import service as member_service
from memberlab.members.models import Member
from memberlab.members.schemas import MemberCreate
from memberlab.members.service import LedgerMember
from memberlab.programs import rules
from memberlab.programs import service as program_service
from memberlab.programs.schema import BonusType, ProgramDefinition
from memberlab.webhooks import service as webhooks

FUTURE_TOLERANCE = timedelta(minutes=5)
_orders = Order.__table__
_INSERT_ORDER = FastStatement(_orders.insert())
_INSERT_TIER_CHANGES = FastStatement(insert(TierChange))


class LedgerRuleRefused(Conflict):
    """The program does not allow this (not enough points, a return of too much, ...)."""


class LedgerInputInvalid(InvalidInput):
    pass


class OrderNotFound(NotFound):
    key = "ledger.order_not_found"


@dataclass
class LedgerContext:
    session: Session
    tenant_id: int
    now: datetime
    vault: PersonalDataVault
    actor: str
    timezone: str = "Asia/Shanghai"


_PROGRAMS: dict[tuple[int, str], ProgramDefinition] = {}


def program_at(session: Session, at: datetime) -> tuple[int, ProgramDefinition]:
    """The program in force at ``at`` (parsed once per version and process)."""
    cache_key = program_service.version_in_force(session, as_of=at)
    program = _PROGRAMS.get(cache_key)
    if program is None:
        version = program_service.get_version(session, cache_key[0])
        program = program_service.definition_of(version)
        _PROGRAMS[cache_key] = program
    return cache_key[0], program


def refused(error: rules.RuleError, field: str | None = None) -> Exception:
    """A rule's refusal as the API error it is: 409 for state, 422 for input."""
    input_errors = {
        "ledger.no_lines",
        "ledger.bad_quantity",
        "ledger.negative_amount",
        "ledger.negative_paid",
        "ledger.paid_above_gross",
        "ledger.points_step",
        "ledger.points_share",
        "ledger.unknown_line",
        "ledger.bad_points",
        "ledger.return_before_order",
        "ledger.no_such_plan",
        "ledger.no_such_bonus",
        "ledger.points_payment_off",
    }
    if error.key in input_errors:
        return LedgerInputInvalid(errors=[FieldError(field or "", error.key, error.params)])
    return LedgerRuleRefused(error.key, **error.params)


def _balances(state: rules.MemberState) -> Balances:
    return Balances(available=state.available, pending=state.pending, debt=state.debt)


# --- one member's unit of work -----------------------------------------------------------------


@dataclass
class MemberWork:
    """A member's loaded state, the program, and what the operation has produced so far."""

    ctx: LedgerContext
    member: Member | LedgerMember
    program: ProgramDefinition
    loaded: Loaded
    entries: list[rules.Entry]
    lots: list[rules.Lot]
    notices: list[rules.Notice]
    reviewed_before: datetime | None = None  # the last tier review before this work

    @property
    def state(self) -> rules.MemberState:
        return self.loaded.state

    def take(self, outcome: rules.Outcome) -> rules.Outcome:
        self.entries.extend(outcome.entries)
        self.lots.extend(outcome.lots)
        self.notices.extend(outcome.notices)
        return outcome

    def save(self) -> None:
        session = self.ctx.session
        store.save(
            session,
            tenant_id=self.ctx.tenant_id,
            loaded=self.loaded,
            entries=self.entries,
            new_lots=self.lots,
            now=self.ctx.now,
        )
        changes = tier_changes(self.notices)
        if changes:
            _INSERT_TIER_CHANGES.send_many(
                session.connection(),
                [
                    {"tenant_id": self.ctx.tenant_id, "member_pk": self.member.id, "at": at,
                     "from_tier": old, "to_tier": new, "reason": reason}
                    for at, old, new, reason in changes
                ],
            )  # fmt: skip
        webhooks.enqueue(
            session,
            tenant_id=self.ctx.tenant_id,
            member_id=self.member.member_id,
            notices=self.notices,
            now=self.ctx.now,
        )


def open_member(
    ctx: LedgerContext,
    member: Member | LedgerMember,
    at: datetime,
    program: ProgramDefinition | None = None,
    *,
    locked: bool = False,
    loaded: Loaded | None = None,
) -> MemberWork:
    """Lock (unless ``locked`` already) and load a member (unless the caller did both,
    ``loaded``) and bring the state up to ``at`` (under the program in force at ``at``,
    unless the caller already has it)."""
    if program is None:
        _, program = program_at(ctx.session, at)
    if loaded is None:
        loaded = store.load(
            ctx.session,
            tenant_id=ctx.tenant_id,
            member=member,
            program=program,
            now=ctx.now,
            lock=not locked,
        )
    work = MemberWork(ctx, member, program, loaded, [], [], [], loaded.state.last_review_at)
    if loaded.is_new:
        # the member's first ledger event: the sign-up bonus, as of enrolment
        work.take(rules.enrol(program, loaded.state, member.enrolled_at, member.member_id))
    work.take(rules.advance(program, loaded.state, max(at, loaded.state.as_of or at)))
    return work


def open_member_by_number(
    ctx: LedgerContext,
    member_id: str,
    at: datetime,
    program: ProgramDefinition | None = None,
    *,
    find: Callable[[], Member | LedgerMember] | None = None,
) -> MemberWork:
    """``open_member`` for a member known by its number: on PostgreSQL the lookup, the lock
    and the load are one statement (``store.lock_and_load``). Where that cannot be (SQLite,
    a member new to the ledger), ``find`` finds and locks it (default: an unknown member is
    refused)."""
    if program is None:
        _, program = program_at(ctx.session, at)
    fused = store.lock_and_load(
        ctx.session, tenant_id=ctx.tenant_id, member_id=member_id, program=program, now=ctx.now
    )
    if fused is None:
        if find is None:
            member = member_service.get_for_ledger(ctx.session, member_id, lock=True)
        else:
            member = find()
        return open_member(ctx, member, at, program, locked=True)
    member, loaded = fused
    return open_member(ctx, member, at, program, loaded=loaded)


def _check_time(field: str, at: datetime, now: datetime) -> datetime:
    if at.tzinfo is None:
        raise LedgerInputInvalid(errors=[FieldError(field, "ledger.v.naive_time")])
    if at > now + FUTURE_TOLERANCE:
        raise LedgerInputInvalid(
            errors=[FieldError(field, "ledger.v.future", {"value": at.isoformat()})]
        )
    return at


def _money(field: str, amount: Decimal, currency: str, errors: list[FieldError]) -> int:
    try:
        return to_minor(amount, currency)
    except ValueError:
        errors.append(
            FieldError(field, "ledger.v.precision", {"currency": currency, "value": str(amount)})
        )
        return 0


# --- purchases -------------------------------------------------------------------------------


def post_purchase(ctx: LedgerContext, body: PurchaseCreate) -> Answer:
    """Post a purchase; the order id is its idempotency key."""
    payload = body.model_dump(mode="json")
    return replay_or_run(
        ctx.session,
        scope="purchase",
        key=body.order_id,
        payload=payload,
        now=ctx.now,
        run=lambda: (201, _purchase(ctx, body).model_dump(mode="json")),
    )


def _purchase(ctx: LedgerContext, body: PurchaseCreate) -> PurchaseResult:
    at = _check_time("occurred_at", body.occurred_at, ctx.now)
    _, program = program_at(ctx.session, at)
    currency = program.currency
    errors: list[FieldError] = []
    if body.currency is not None and body.currency != currency:
        errors.append(
            FieldError(
                "currency", "ledger.v.currency", {"expected": currency, "value": body.currency}
            )
        )
    lines = tuple(
        rules.PurchaseLine(
            line.sku,
            line.category,
            line.quantity,
            _money(f"lines[{i}].amount", line.amount, currency, errors),
        )
        for i, line in enumerate(body.lines)
    )
    gross = sum(line.amount for line in lines)
    discount = _money("discount", body.discount, currency, errors)
    points_money = int(
        Decimal(body.points_used) * rules.unit(program) / program.points_payment.points_per_unit
    )
    if body.amount_paid is None:
        paid = gross - discount - points_money
        if paid < 0:
            errors.append(FieldError("discount", "ledger.v.discount_above_gross"))
    else:
        paid = _money("amount_paid", body.amount_paid, currency, errors)
        if paid > gross:
            errors.append(
                FieldError("amount_paid", "ledger.paid_above_gross", {"paid": paid, "gross": gross})
            )
    if errors:
        raise LedgerInputInvalid(errors=errors)

    enrolled = False

    def find_or_enrol() -> Member | LedgerMember:
        nonlocal enrolled
        member, enrolled = _member_for_purchase(ctx, body, program, at)
        return member

    work = open_member_by_number(ctx, body.member_id, at, program, find=find_or_enrol)
    member = work.member
    event = rules.Purchase(
        body.order_id,
        at,
        body.channel,
        body.store,
        lines,
        max(paid, 0),
        discount,
        body.points_used,
        body.coupon_code,
    )
    tier_before = work.state.tier
    try:
        outcome = work.take(rules.purchase(program, work.state, event))
    except rules.RuleError as error:
        raise refused(error, "points_used" if "points" in error.key else "lines") from None
    if body.coupon_code:
        from memberlab.rewards import service as rewards_service

        rewards_service.use_coupon(
            ctx.session,
            member=member,
            code=body.coupon_code,
            order_id=body.order_id,
            gross=gross,
            at=at,
        )
    order = outcome.order
    assert order is not None
    purchase_entry = next(e for e in outcome.entries if e.kind == "purchase")
    _INSERT_ORDER.send(
        ctx.session.connection(),
        {
            "tenant_id": ctx.tenant_id,
            "order_id": body.order_id,
            "member_pk": member.id,
            "occurred_at": at,
            "channel": body.channel,
            "store": body.store,
            "amount_paid": order.amount_paid,
            "gross": gross,
            "discount": discount,
            "points_used": body.points_used,
            "points_earned": order.points + order.bonus_points,
            "growth_earned": purchase_entry.growth,
            "coupon_code": body.coupon_code,
            "entry_seq": purchase_entry.seq,
            "record": order_to_json(order),
        },
    )
    work.save()
    lot = next((x for x in outcome.lots if x.reference == body.order_id), None)
    return PurchaseResult(
        order_id=body.order_id,
        member_id=member.member_id,
        enrolled=enrolled,
        points_earned=order.points + order.bonus_points,
        points_pending=lot is not None and not lot.released,
        points_used=body.points_used,
        growth_earned=purchase_entry.growth,
        tier_before=tier_before,
        tier_after=work.state.tier,
        coupon_code=body.coupon_code,
        explanation=[RuleLine(rule=e["rule"], points=e["points"]) for e in outcome.explanation],
        balances=_balances(work.state),
    )


def _member_for_purchase(
    ctx: LedgerContext, body: PurchaseCreate, program: ProgramDefinition, at: datetime
) -> tuple[Member | LedgerMember, bool]:
    """The buyer, locked; enrolled first if the program enrols on a first purchase."""
    try:
        return member_service.get_for_ledger(ctx.session, body.member_id, lock=True), False
    except member_service.MemberNotFound:
        if not program.enrolment.enrol_on_first_purchase:
            raise
    data = MemberCreate(
        member_id=body.member_id,
        mobile=body.mobile,
        enrolled_at=at,
        enrol_channel=body.channel,
        enrol_store=body.store,
    )
    try:
        with ctx.session.begin_nested():
            member = member_service.enrol(
                ctx.session,
                data,
                ctx=member_service.MemberContext(vault=ctx.vault, timezone=ctx.timezone),
                now=ctx.now,
            )
    except (IntegrityError, member_service.MemberConflict):
        # the same new member's first purchases arrived together: the other one enrolled it
        return member_service.get_for_ledger(ctx.session, body.member_id, lock=True), False
    store.lock_member(ctx.session, member.id)
    return member, True


# --- returns -----------------------------------------------------------------------------------


def post_return(ctx: LedgerContext, body: ReturnCreate) -> Answer:
    payload = body.model_dump(mode="json")
    return replay_or_run(
        ctx.session,
        scope="return",
        key=body.return_id,
        payload=payload,
        now=ctx.now,
        run=lambda: (201, _return(ctx, body).model_dump(mode="json")),
    )


def _return(ctx: LedgerContext, body: ReturnCreate) -> ReturnResult:
    at = _check_time("occurred_at", body.occurred_at, ctx.now)
    order_row = ctx.session.scalar(select(Order).where(Order.order_id == body.order_id))
    if order_row is None:
        raise OrderNotFound(order_id=body.order_id)
    member = ctx.session.get(Member, order_row.member_pk)
    assert member is not None
    work = open_member(ctx, member, at)
    record = order_from_json(order_row.record, order_head(order_row))
    lines = _return_lines(body, record)
    tier_before = work.state.tier
    refunded_before = record.points_refunded
    event = rules.Return(body.return_id, body.order_id, at, tuple(lines))
    try:
        outcome = work.take(rules.return_(work.program, work.state, record, event))
    except rules.RuleError as error:
        raise refused(error, "lines") from None
    entry = outcome.entries[0]
    ctx.session.add(
        OrderReturn(
            return_id=body.return_id,
            order_id=body.order_id,
            member_pk=member.id,
            occurred_at=at,
            entry_seq=entry.seq,
            lines=[{"line": r.line, "quantity": r.quantity} for r in lines],
            points_reversed=-entry.detail["points"],
            growth_reversed=-entry.growth,
            amount_returned=-entry.spend,
        )
    )
    order_row.record = order_to_json(record)
    work.save()
    return ReturnResult(
        return_id=body.return_id,
        order_id=body.order_id,
        member_id=member.member_id,
        points_reversed=-entry.detail["points"],
        points_refunded=record.points_refunded - refunded_before,
        growth_reversed=-entry.growth,
        debt=work.state.debt,
        tier_before=tier_before,
        tier_after=work.state.tier,
        balances=_balances(work.state),
    )


def _return_lines(body: ReturnCreate, record: rules.OrderRecord) -> list[rules.ReturnLine]:
    if body.lines is None:
        lines = [
            rules.ReturnLine(i, line.quantity - line.returned_quantity)
            for i, line in enumerate(record.lines)
            if line.quantity > line.returned_quantity
        ]
        if not lines:
            raise LedgerRuleRefused("ledger.already_returned", order_id=record.order_id)
        return lines
    result: list[rules.ReturnLine] = []
    errors: list[FieldError] = []
    for i, item in enumerate(body.lines):
        index = item.line
        if index is None and item.sku is not None:
            index = next((j for j, line in enumerate(record.lines) if line.sku == item.sku), None)
            if index is None:
                errors.append(
                    FieldError(
                        f"lines[{i}].sku",
                        "ledger.v.unknown_sku",
                        {"value": item.sku, "order_id": record.order_id},
                    )
                )
                continue
        if index is None:
            errors.append(FieldError(f"lines[{i}]", "ledger.v.line_or_sku"))
            continue
        result.append(rules.ReturnLine(index, item.quantity))
    if errors:
        raise LedgerInputInvalid(errors=errors)
    return result


# --- other writes ------------------------------------------------------------------------------


def _entry_view(entry: rules.Entry, balance: int) -> EntryView:
    return EntryView(
        seq=entry.seq,
        kind=entry.kind,
        at=entry.at,
        reference=entry.reference,
        points=entry.points,
        growth=entry.growth,
        balance=balance,
        detail=entry.detail,
    )


def _single(
    ctx: LedgerContext, member_id: str, at: datetime, apply: Any, field: str = "points"
) -> EntryResult:
    work = open_member_by_number(ctx, member_id, at)
    member = work.member
    try:
        outcome = work.take(apply(work))
    except rules.RuleError as error:
        raise refused(error, field) from None
    work.save()
    state = work.state
    return EntryResult(
        member_id=member.member_id,
        entry=_entry_view(outcome.entries[-1], state.available + state.pending),
        balances=_balances(state),
    )


def adjust(ctx: LedgerContext, member_id: str, body: AdjustmentCreate, key: str) -> Answer:
    def run() -> tuple[int, dict[str, Any]]:
        result = _single(
            ctx,
            member_id,
            ctx.now,
            lambda w: rules.adjust(
                w.program, w.state, body.points, ctx.now, key, body.reason, ctx.actor
            ),
        )
        return 201, result.model_dump(mode="json")

    return replay_or_run(
        ctx.session,
        scope="adjustment",
        key=key,
        payload={"member_id": member_id, **body.model_dump(mode="json")},
        now=ctx.now,
        run=run,
    )


def award_bonus(ctx: LedgerContext, member_id: str, body: BonusCreate) -> Answer:
    def run() -> tuple[int, dict[str, Any]]:
        result = _single(
            ctx,
            member_id,
            ctx.now,
            lambda w: rules.bonus(
                w.program, w.state, BonusType(body.type), ctx.now, body.reference
            ),
            field="type",
        )
        return 201, result.model_dump(mode="json")

    return replay_or_run(
        ctx.session,
        scope=f"bonus:{body.type}",
        key=f"{member_id}:{body.reference}",
        payload={"member_id": member_id, **body.model_dump(mode="json")},
        now=ctx.now,
        run=run,
    )


def buy_plan(ctx: LedgerContext, member_id: str, body: PlanPurchaseCreate, key: str) -> Answer:
    def run() -> tuple[int, dict[str, Any]]:
        result = _single(
            ctx,
            member_id,
            ctx.now,
            lambda w: rules.buy_plan(w.program, w.state, body.plan, ctx.now, key),
            field="plan",
        )
        return 201, result.model_dump(mode="json")

    return replay_or_run(
        ctx.session,
        scope="paid_plan",
        key=key,
        payload={"member_id": member_id, **body.model_dump(mode="json")},
        now=ctx.now,
        run=run,
    )


# --- reading -----------------------------------------------------------------------------------


def member_points(ctx: LedgerContext, member_id: str, *, entries: int = 50) -> PointsView:
    """Tier, balances, growth, open lots and the last entries, as of now."""
    member, state_row = store.read_member(ctx.session, ctx.tenant_id, member_id)
    _, program = program_at(ctx.session, ctx.now)
    loaded = store.load(
        ctx.session,
        tenant_id=ctx.tenant_id,
        member=member,
        program=program,
        now=ctx.now,
        lock=False,
        state_row=state_row,
    )
    state = loaded.state
    if loaded.is_new:
        rules.enrol(program, state, member.enrolled_at, member.member_id)
    rules.advance(program, state, max(ctx.now, state.as_of or ctx.now))  # a view: not saved
    current = next((i for i, t in enumerate(program.tiers) if t.code == state.tier), 0)
    tier = program.tiers[current]
    measure = rules.qualifying_measure(program, state, ctx.now)
    # above the tier held: a member kept at a tier until its review may measure below it
    upper = [
        t for t in program.tiers[current + 1 :] if not t.invitation_only and t.threshold > measure
    ]
    next_tier = upper[0] if upper else None
    return PointsView(
        member_id=member.member_id,
        tier=tier.code,
        tier_name=tier.name.get(_lang()),
        tier_since=state.tier_since,
        growth_value=state.lifetime_growth,
        qualifying=str(measure),
        next_tier=next_tier.code if next_tier else None,
        next_tier_name=next_tier.name.get(_lang()) if next_tier else None,
        to_next_tier=str(next_tier.threshold - measure) if next_tier else None,
        balances=_balances(state),
        points_value=Decimal(
            points_value(max(state.available, 0), program.points.value_per_point, program.currency)
        )
        / rules.unit(program),
        plan=state.plan_code if state.plan_until and state.plan_until > ctx.now else None,
        plan_until=state.plan_until,
        lots=[
            LotView(
                seq=lot.seq,
                source=lot.source,
                earned_at=lot.earned_at,
                available_at=lot.available_at,
                expires_at=lot.expires_at,
                amount=lot.amount,
                remaining=lot.remaining,
                released=lot.released,
            )
            for lot in sorted(state.open_lots(), key=lambda x: (x.expiry_key, x.seq))
        ],
        last_entries=history(ctx.session, member, limit=entries),
    )


def _lang() -> str:
    from memberlab.core.i18n import current_language

    return current_language()


_entries = LedgerEntry.__table__
_HISTORY_COLUMNS = (
    _entries.c.seq,
    _entries.c.kind,
    _entries.c.at,
    _entries.c.reference,
    _entries.c.points,
    _entries.c.growth,
    _entries.c.detail,
)
_MEMBER_ENTRIES = (_entries.c.tenant_id == bindparam("tenant_id")) & (
    _entries.c.member_pk == bindparam("member_pk")
)
# Each page carries the balance right after its newest row (the same for every row: an
# uncorrelated subquery, evaluated once), so the running balance costs no second round trip.
_BALANCE = select(func.coalesce(func.sum(_entries.c.points), 0)).where(_MEMBER_ENTRIES)
_LAST_ENTRIES = (
    select(*_HISTORY_COLUMNS, _BALANCE.scalar_subquery().label("balance_after_page"))
    .where(_MEMBER_ENTRIES)
    .order_by(_entries.c.seq.desc())
    .limit(bindparam("limit"))
)
_LAST_ENTRIES_BEFORE = (
    select(
        *_HISTORY_COLUMNS,
        _BALANCE.where(_entries.c.seq < bindparam("before_seq"))
        .scalar_subquery()
        .label("balance_after_page"),
    )
    .where(_MEMBER_ENTRIES, _entries.c.seq < bindparam("before_seq"))
    .order_by(_entries.c.seq.desc())
    .limit(bindparam("limit"))
)


def history(
    session: Session,
    member: Member | LedgerMember,
    *,
    limit: int = 100,
    before_seq: int | None = None,
) -> list[EntryView]:
    """A member's entries, newest first, each with the balance right after it."""
    connection = session.connection()
    keys = {"tenant_id": session_tenant(session), "member_pk": member.id, "limit": limit}
    if before_seq is None:
        rows = connection.execute(_LAST_ENTRIES, keys).all()
    else:
        rows = connection.execute(_LAST_ENTRIES_BEFORE, {**keys, "before_seq": before_seq}).all()
    if not rows:
        return []
    total = rows[0].balance_after_page  # walking back from the newest row shown
    views = []
    for row in rows:
        views.append(
            EntryView(
                seq=row.seq,
                kind=row.kind,
                at=row.at,
                reference=row.reference,
                points=row.points,
                growth=row.growth,
                balance=int(total),
                detail=row.detail or {},
            )
        )
        total -= row.points
    return views


def state_row(session: Session, member: Member) -> MemberStateRow | None:
    return session.scalar(select(MemberStateRow).where(MemberStateRow.member_pk == member.id))


def open_lots(session: Session, member: Member) -> list[PointsLot]:
    return list(
        session.scalars(
            select(PointsLot)
            .where(PointsLot.member_pk == member.id, PointsLot.remaining > 0)
            .order_by(PointsLot.seq)
        )
    )
