"""Between the rules' in-memory member state and the ledger tables.

``load`` reads what the rules need of one member (locking the member on PostgreSQL so that
concurrent writes for one member queue up, then reading state, lots and activity in one
statement); ``save`` writes what the rules produced: new entries with their postings, new
and changed lots, and the member's state row.

These run on every purchase, so they are Core statements built once (below) and run as
``FastStatement``s on the session's connection: that skips statement construction, the ORM's
tenant filter and most of SQLAlchemy's per-execution work (see ``core.fastsql``). Each one
names the tenant itself (``tenant_id`` in every WHERE and every row) instead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import Integer, Text, bindparam, cast, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from memberlab.core.fastsql import FastStatement
from memberlab.ledger.models import LedgerEntry, PointsLot, Posting
from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.ledger.rows import LOT_FIELDS, Loaded, state_row
from memberlab.members.models import Member
from memberlab.members.service import LedgerMember, MemberNotFound
from memberlab.programs import rules
from memberlab.programs.schema import ProgramDefinition, WindowType

_members = Member.__table__
_states = MemberStateRow.__table__
_lots = PointsLot.__table__
_entries = LedgerEntry.__table__
_postings = Posting.__table__

_LOCK_MEMBER = FastStatement(
    select(_members.c.id).where(_members.c.id == bindparam("member_pk")).with_for_update()
)
_STATE = FastStatement(
    select(_states).where(
        _states.c.tenant_id == bindparam("tenant_id"),
        _states.c.member_pk == bindparam("member_pk"),
    )
)
_OPEN_LOTS = FastStatement(
    select(_lots).where(
        _lots.c.tenant_id == bindparam("tenant_id"),
        _lots.c.member_pk == bindparam("member_pk"),
        (_lots.c.remaining > 0) | (_lots.c.released.is_(False)),
    )
)
_ACTIVITY = FastStatement(
    select(_entries.c.at, _entries.c.growth, _entries.c.spend, _entries.c.orders)
    .where(
        _entries.c.tenant_id == bindparam("tenant_id"),
        _entries.c.member_pk == bindparam("member_pk"),
        _entries.c.at >= bindparam("horizon"),
        (_entries.c.growth != 0) | (_entries.c.spend != 0) | (_entries.c.orders != 0),
    )
    .order_by(_entries.c.at, _entries.c.seq)
)

_ACTIVITY_HORIZON = func.least(
    bindparam("now", type_=_states.c.as_of.type),
    func.coalesce(_states.c.as_of, bindparam("now", type_=_states.c.as_of.type)),
) - bindparam("horizon_days", type_=Integer) * literal_column("interval '24 hours'")


def _json_rows(columns: list[Any], order_by: list[Any], where: Any) -> Any:
    """A correlated subquery: the matching rows as one JSON text of arrays (NULL: none)."""
    rows = func.json_agg(aggregate_order_by(func.json_build_array(*columns), *order_by))
    return select(cast(rows, Text)).where(where).scalar_subquery()


def _open_lots_json() -> Any:
    """The open lots of the state row's member, as JSON text (``_lots_from_json``)."""
    return _json_rows(
        [_lots.c[name] for name in LOT_FIELDS],
        [_lots.c.seq],
        (_lots.c.tenant_id == _states.c.tenant_id)
        & (_lots.c.member_pk == _states.c.member_pk)
        & ((_lots.c.remaining > 0) | (_lots.c.released.is_(False))),
    ).label("open_lots")


def _activity_json() -> Any:
    """The state row's member's activity since the horizon, as JSON text."""
    return _json_rows(
        [_entries.c.at, _entries.c.growth, _entries.c.spend, _entries.c.orders],
        [_entries.c.at, _entries.c.seq],
        (_entries.c.tenant_id == _states.c.tenant_id)
        & (_entries.c.member_pk == _states.c.member_pk)
        & (_entries.c.at >= _ACTIVITY_HORIZON)
        & ((_entries.c.growth != 0) | (_entries.c.spend != 0) | (_entries.c.orders != 0)),
    ).label("activity")


# PostgreSQL, after the member's lock: the state row, its open lots and its activity since
# the horizon, in one round trip instead of three: a round trip costs client and server some
# CPU whatever it carries (``core.fastsql``). The lots and the activity come back as JSON text
# parsed here; ``horizon_days`` NULL (a lifetime window) reads no activity.
_STATE_LOTS_ACTIVITY = FastStatement(
    select(_states, _open_lots_json(), _activity_json()).where(
        _states.c.tenant_id == bindparam("tenant_id"),
        _states.c.member_pk == bindparam("member_pk"),
    )
)


def _instant(text: str | None) -> datetime | None:
    """A timestamp as PostgreSQL writes it in JSON (ISO 8601 with an offset), in UTC."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def _lots_from_json(text: str | None) -> list[rules.Lot]:
    """Lots as ``_STATE_LOTS_ACTIVITY`` sends them: arrays in ``LOT_FIELDS`` order."""
    if text is None:
        return []
    return [
        rules.Lot(seq, _instant(earned), _instant(available), _instant(expires), *rest)  # type: ignore[arg-type]
        for seq, earned, available, expires, *rest in orjson.loads(text)
    ]


def _activity_from_json(text: str | None) -> list[rules.Activity]:
    if text is None:
        return []
    return [
        rules.Activity(_instant(at), growth, spend, orders)  # type: ignore[arg-type]
        for at, growth, spend, orders in orjson.loads(text)
    ]


_STATE_COLUMNS = [c for c in _states.c if c.name != "tenant_id"]


def _member_and_state(*more: Any, without_state: bool) -> Any:
    """The member by number (``LedgerMember``'s columns first) with its state row and
    ``more``; ``without_state``: also a member that has no state row yet."""
    on = (_states.c.tenant_id == _members.c.tenant_id) & (_states.c.member_pk == _members.c.id)
    return (
        select(
            _members.c.id,
            _members.c.member_id,
            _members.c.enrolled_at,
            _members.c.birthday_month_day,
            *_STATE_COLUMNS,
            *more,
        )
        .select_from(
            _members.outerjoin(_states, on) if without_state else _members.join(_states, on)
        )
        .where(
            _members.c.tenant_id == bindparam("tenant_id"),
            _members.c.member_id == bindparam("member_id"),
        )
    )


# The member and its state row in one round trip, for readers that take no lock. A writer
# must not read the state this way: on PostgreSQL a SELECT that waits for a row lock sees
# the locked row's newest version but the joined rows as they were when it started (the
# statement below locks both rows and checks what it read).
_MEMBER_AND_STATE = FastStatement(_member_and_state(without_state=True))


# PostgreSQL, a writer's first read of a member it knows by number: the member locked, with
# its state, open lots and activity, in one round trip where the lock and the read took two.
# It locks the member's row and then its state row (members first, as every writer does).
# A statement that had to wait for those locks sees the locked rows as the writer it waited
# for left them, but everything else (the lots, the activity) as it was when the statement
# began; so it also reads the state row as it was then: ``current`` says whether that was
# the same version. When it was not, another writer committed in between, and the caller
# reads again (``load``), under the lock it now holds. Every ledger writer updates the state
# row, so an unchanged state row means unchanged lots and activity.
_seen_state = _states.alias("seen_state")
_LOCKED_MEMBER_STATE_LOTS_ACTIVITY = FastStatement(
    _member_and_state(
        _open_lots_json(),
        _activity_json(),
        (
            literal_column("member_states.xmin")
            == select(literal_column("seen_state.xmin"))
            .where(
                (_seen_state.c.tenant_id == _states.c.tenant_id)
                & (_seen_state.c.member_pk == _states.c.member_pk)
            )
            .scalar_subquery()
        ).label("current"),
        without_state=False,
    ).with_for_update(of=[_members, _states])
)


UNREAD: Any = object()  # ``load``'s ``state_row`` when the caller has not read it


def read_member(session: Session, tenant_id: int, member_id: str) -> tuple[LedgerMember, Any]:
    """The member by its number and its state row (``None``: no ledger event yet), read
    together without a lock, to hand to ``load`` as ``state_row`` (a view)."""
    keys = {"tenant_id": tenant_id, "member_id": member_id}
    row = _MEMBER_AND_STATE.first(session.connection(), keys)
    if row is None:
        raise MemberNotFound(member_id=member_id)
    state = None
    if row.member_pk is not None:
        state = SimpleNamespace(**{c.name: row[4 + i] for i, c in enumerate(_STATE_COLUMNS)})
    return LedgerMember(*row[:4]), state


def lock_member(session: Session, member_pk: int) -> None:
    """Serialize writers of one member (PostgreSQL row lock; SQLite locks the database)."""
    if session.get_bind().dialect.name == "postgresql":
        _LOCK_MEMBER.rows(session.connection(), {"member_pk": member_pk})


def _horizon_days(program: ProgramDefinition) -> int | None:
    """How far back the tier window can look, in days (None: lifetime, no activity needed)."""
    window = program.tier_qualification.window
    if window.type is WindowType.LIFETIME:
        return None
    months = (window.months or 12) if window.type is WindowType.ROLLING_MONTHS else 24
    return 31 * (months + 1)


def activity_horizon(program: ProgramDefinition, now: datetime) -> datetime | None:
    days = _horizon_days(program)
    return None if days is None else now - timedelta(days=days)


def load(
    session: Session,
    *,
    tenant_id: int,
    member: Member | LedgerMember,
    program: ProgramDefinition,
    now: datetime,
    lock: bool = True,
    state_row: Any = UNREAD,
) -> Loaded:
    """What the rules need of ``member``; ``state_row``, as ``read_member`` read it in this
    transaction, saves reading it again (readers only: see ``read_member``)."""
    if lock:
        lock_member(session, member.id)
    notice_days = program.points.expiring_notice_days
    connection = session.connection()
    keys = {"tenant_id": tenant_id, "member_pk": member.id}
    at_once = state_row is UNREAD and connection.dialect.name == "postgresql"
    if at_once:
        values = {**keys, "now": now, "horizon_days": _horizon_days(program)}
        row = _STATE_LOTS_ACTIVITY.first(connection, values)
    else:
        row = _STATE.first(connection, keys) if state_row is UNREAD else state_row
    if row is None:
        state = rules.new_member_state(
            program, enrolled_at=member.enrolled_at, birthday=member.birthday_month_day
        )
        return Loaded(member.id, state, is_new=True, notice_days=notice_days)
    if at_once:
        return _loaded_from_json(member, row, notice_days)
    state = state_from_row(row, enrolled_at=member.enrolled_at, birthday=member.birthday_month_day)
    state.lots = [lot_from_row(lot) for lot in _OPEN_LOTS.rows(connection, keys)]
    state.lots.sort(key=lambda lot: lot.seq)
    horizon = activity_horizon(program, min(now, state.as_of or now))
    if horizon is not None:
        activity = _ACTIVITY.rows(connection, {**keys, "horizon": horizon})
        state.activity = [rules.Activity(at, g, s, o) for at, g, s, o in activity]
    return _loaded(member.id, state, notice_days)


def lock_and_load(
    session: Session, *, tenant_id: int, member_id: str, program: ProgramDefinition, now: datetime
) -> tuple[LedgerMember, Loaded] | None:
    """On PostgreSQL, the member by its number, locked, and what the rules need of it, in
    one statement. None (the caller locks and loads as before): another database, or a member
    unknown or without a ledger event yet."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return None
    row = _LOCKED_MEMBER_STATE_LOTS_ACTIVITY.first(
        connection,
        {
            "tenant_id": tenant_id,
            "member_id": member_id,
            "now": now,
            "horizon_days": _horizon_days(program),
        },
    )
    if row is None:
        return None
    member = LedgerMember(*row[:4])
    notice_days = program.points.expiring_notice_days
    if not row.current:  # another writer committed while this one waited for the lock
        return member, load(
            session, tenant_id=tenant_id, member=member, program=program, now=now, lock=False
        )
    return member, _loaded_from_json(member, row, notice_days)


def _loaded_from_json(member: Member | LedgerMember, row: Any, notice_days: int) -> Loaded:
    """A state row read with its lots and activity as JSON text."""
    state = state_from_row(row, enrolled_at=member.enrolled_at, birthday=member.birthday_month_day)
    state.lots = _lots_from_json(row.open_lots)
    state.activity = _activity_from_json(row.activity)
    return _loaded(member.id, state, notice_days)


def _loaded(member_pk: int, state: rules.MemberState, notice_days: int) -> Loaded:
    return Loaded(
        member_pk,
        state,
        is_new=False,
        lots_before={lot.seq: (lot.remaining, lot.released, lot.noticed) for lot in state.lots},
        notice_days=notice_days,
    )


def state_from_row(row: Any, *, enrolled_at: datetime, birthday: str | None) -> rules.MemberState:
    return rules.MemberState(
        enrolled_at=enrolled_at,
        tier=row.tier,
        tier_since=row.tier_since,
        birthday=birthday,
        as_of=row.as_of,
        tier_at_review=row.tier_at_review,
        last_review_at=row.last_review_at,
        debt=row.debt,
        lifetime_growth=row.lifetime_growth,
        lifetime_spend=row.lifetime_spend,
        lifetime_orders=row.lifetime_orders,
        cap_day=date.fromisoformat(row.cap_day) if row.cap_day else None,
        cap_day_points=row.cap_day_points,
        cap_month=tuple(int(x) for x in row.cap_month.split("-")) if row.cap_month else None,  # type: ignore[arg-type]
        cap_month_points=row.cap_month_points,
        bonus_counts=dict(row.bonus_counts or {}),
        plan_code=row.plan_code,
        plan_until=row.plan_until,
        next_seq=row.next_seq,
    )


def lot_from_row(lot: Any) -> rules.Lot:
    """A lot of the rules from a ``points_lots`` row (ORM object or Core row)."""
    return rules.Lot(
        seq=lot.seq,
        earned_at=lot.earned_at,
        available_at=lot.available_at,
        expires_at=lot.expires_at,
        amount=lot.amount,
        remaining=lot.remaining,
        source=lot.source,
        released=lot.released,
        reference=lot.reference,
        noticed=lot.noticed,
    )


# --- rows ------------------------------------------------------------------------------------


def entry_rows(
    tenant_id: int, member_pk: int, entries: list[rules.Entry], recorded_at: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    entry_dicts: list[dict[str, Any]] = []
    posting_dicts: list[dict[str, Any]] = []
    for entry in entries:
        entry_dicts.append(
            {
                "tenant_id": tenant_id,
                "member_pk": member_pk,
                "seq": entry.seq,
                "kind": entry.kind,
                "at": entry.at,
                "recorded_at": recorded_at,
                "reference": entry.reference,
                "points": entry.points,
                "growth": entry.growth,
                "spend": entry.spend,
                "orders": entry.orders,
                "detail": entry.detail,
            }
        )
        for leg, movement in enumerate(entry.movements):
            posting_dicts.append(
                {
                    "tenant_id": tenant_id,
                    "member_pk": member_pk,
                    "entry_seq": entry.seq,
                    "leg": leg,
                    "source": movement.source,
                    "destination": movement.destination,
                    "amount": movement.amount,
                    "lot_seq": movement.lot,
                    "at": entry.at,
                }
            )
    return entry_dicts, posting_dicts


def lot_row(tenant_id: int, member_pk: int, lot: rules.Lot) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "member_pk": member_pk,
        "seq": lot.seq,
        "earned_at": lot.earned_at,
        "available_at": lot.available_at,
        "expires_at": lot.expires_at,
        "amount": lot.amount,
        "remaining": lot.remaining,
        "source": lot.source,
        "released": lot.released,
        "reference": lot.reference,
        "noticed": lot.noticed,
    }


_INSERT_ENTRIES = FastStatement(_entries.insert())
_INSERT_POSTINGS = FastStatement(_postings.insert())
_INSERT_LOTS = FastStatement(_lots.insert())
_INSERT_STATE = FastStatement(_states.insert())
# UPDATE ... SET <the columns given> WHERE <the b_ parameters>
_UPDATE_LOT = FastStatement(
    update(_lots).where(
        _lots.c.tenant_id == bindparam("b_tenant_id"),
        _lots.c.member_pk == bindparam("b_member_pk"),
        _lots.c.seq == bindparam("b_seq"),
    )
)
_UPDATE_STATE = FastStatement(
    update(_states).where(
        _states.c.tenant_id == bindparam("b_tenant_id"),
        _states.c.member_pk == bindparam("b_member_pk"),
    )
)


def save(
    session: Session,
    *,
    tenant_id: int,
    loaded: Loaded,
    entries: list[rules.Entry],
    new_lots: list[rules.Lot],
    now: datetime,
) -> None:
    """Write what the rules produced for one member (sent: on PostgreSQL the statements go
    to the server with the next one that needs an answer, see ``core.fastsql``)."""
    member_pk, state = loaded.member_pk, loaded.state
    connection = session.connection()
    entry_dicts, posting_dicts = entry_rows(tenant_id, member_pk, entries, now)
    if entry_dicts:
        _INSERT_ENTRIES.send_many(connection, entry_dicts)
    if posting_dicts:
        _INSERT_POSTINGS.send_many(connection, posting_dicts)
    new_seqs = {lot.seq for lot in new_lots}
    if new_lots:
        _INSERT_LOTS.send_many(connection, [lot_row(tenant_id, member_pk, lot) for lot in new_lots])
    changed_lots = [
        {
            "b_tenant_id": tenant_id,
            "b_member_pk": member_pk,
            "b_seq": lot.seq,
            "remaining": lot.remaining,
            "released": lot.released,
            "noticed": lot.noticed,
        }
        for lot in [*state.lots, *state.retired]
        if lot.seq not in new_seqs
        and loaded.lots_before.get(lot.seq) != (lot.remaining, lot.released, lot.noticed)
    ]
    if changed_lots:
        _UPDATE_LOT.send_many(connection, changed_lots)
    values = state_row(tenant_id, member_pk, state, now, loaded.notice_days)
    if loaded.is_new:
        _INSERT_STATE.send(connection, values)
        loaded.is_new = False
    else:
        values["b_tenant_id"] = values.pop("tenant_id")
        values["b_member_pk"] = values.pop("member_pk")
        _UPDATE_STATE.send(connection, values)
    state.retired.clear()
    loaded.lots_before = {lot.seq: (lot.remaining, lot.released, lot.noticed) for lot in state.lots}
    # lots that are used up and released no longer need to be kept in memory
    state.lots = [lot for lot in state.lots if lot.remaining > 0 or not lot.released]
