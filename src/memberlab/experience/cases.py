"""Closing the loop: follow-up cases for unhappy members.

A detractor (NPS at or below ``detractor_max_nps``) or a low CSAT (at or below
``low_csat_max``) opens a case due ``case_due_hours`` later: answers on our pages at once,
imported answers by the ``open_recent`` job (only answers of the last ``case_window_days``:
nobody calls a member about last year's survey). A case is assigned, worked with notes,
and closed with a resolution and, optionally, a recovery gesture through the engine (bonus
points as a manual adjustment, or a coupon of the program's catalog), after which an active
``case_closed`` survey re-asks the member.

Measures: open and overdue cases, the deadline-met rate (closed by the due time, of the
cases closed) and the recovery rate (followed-up detractors who bought again after the case
was closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from memberlab.core.errors import Conflict, FieldError, InvalidInput, NotFound
from memberlab.experience import journey
from memberlab.experience.models import (
    CaseNote,
    FollowUpCase,
    Survey,
    SurveyInvitation,
    SurveyResponse,
)
from memberlab.experience.surveys import SurveyStatus, TriggerEvent, definition_of
from memberlab.ledger.models import Order
from memberlab.members.models import Member
from memberlab.programs.rules import Notice
from memberlab.webhooks import service as webhooks


class CaseStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


class CaseNotFound(NotFound):
    key = "experience.case_not_found"


def reason_for(response: SurveyResponse, rules: journey.Rules) -> str | None:
    if response.nps is not None and response.nps <= rules.detractor_max_nps:
        return "detractor"
    if response.csat is not None and response.csat <= rules.low_csat_max:
        return "low_csat"
    return None


def open_for_response(
    session: Session, response: SurveyResponse, *, now: datetime
) -> FollowUpCase | None:
    """Open the case an unhappy answer calls for (at most one per answer)."""
    rules = journey.rules(session)
    reason = reason_for(response, rules)
    if reason is None:
        return None
    existing = session.scalar(select(FollowUpCase).where(FollowUpCase.response_pk == response.id))
    if existing is not None:
        return existing
    case = FollowUpCase(
        response_pk=response.id,
        member_pk=response.member_pk,
        reason=reason,
        touchpoint=response.touchpoint,
        store=response.store,
        status=CaseStatus.OPEN.value,
        opened_at=now,
        due_at=now + timedelta(hours=rules.case_due_hours),
    )
    session.add(case)
    session.flush()
    member_id = (
        session.scalar(select(Member.member_id).where(Member.id == response.member_pk))
        if response.member_pk
        else None
    )
    webhooks.enqueue(
        session,
        tenant_id=case.tenant_id,
        member_id=member_id or "",
        notices=[
            Notice(
                "case.opened",
                now,
                {
                    "case": case.id,
                    "reason": reason,
                    "due_at": case.due_at.isoformat(),
                    "touchpoint": case.touchpoint,
                    "store": case.store,
                },
            )
        ],
        now=now,
    )
    return case


def open_recent(session: Session, *, as_of: datetime) -> int:
    """Cases for unhappy answers of the last ``case_window_days`` that have none (imports)."""
    rules = journey.rules(session)
    since = as_of - timedelta(days=rules.case_window_days)
    unhappy = or_(
        SurveyResponse.nps <= rules.detractor_max_nps, SurveyResponse.csat <= rules.low_csat_max
    )
    has_case = select(FollowUpCase.id).where(FollowUpCase.response_pk == SurveyResponse.id)
    responses = session.scalars(
        select(SurveyResponse)
        .where(
            SurveyResponse.responded_at > since,
            SurveyResponse.responded_at <= as_of,
            unhappy,
            ~has_case.exists(),
        )
        .order_by(SurveyResponse.responded_at, SurveyResponse.id)
    ).all()
    opened = 0
    for response in responses:
        # the deadline runs from the answer, not from when the job noticed it
        case = open_for_response(session, response, now=max(response.responded_at, since))
        if case is not None:
            opened += 1
    return opened


def get_case(session: Session, case_id: int) -> FollowUpCase:
    case = session.get(FollowUpCase, case_id)
    if case is None or case.tenant_id != session.info.get("tenant_id"):
        raise CaseNotFound(case=case_id)
    return case


def _note(session: Session, case: FollowUpCase, kind: str, text: str, actor: str, now: datetime):
    session.add(CaseNote(case_pk=case.id, at=now, author=actor, kind=kind, text=text))
    if case.first_action_at is None:
        case.first_action_at = now


def _open(case: FollowUpCase) -> None:
    if case.status == CaseStatus.CLOSED.value:
        raise Conflict("experience.case_closed", case=case.id)


def assign(session: Session, case_id: int, assignee: str, *, actor: str, now: datetime):
    case = get_case(session, case_id)
    _open(case)
    case.assignee = assignee
    _note(session, case, "assign", assignee, actor, now)
    session.flush()
    return case


def add_note(session: Session, case_id: int, text: str, *, actor: str, now: datetime):
    case = get_case(session, case_id)
    _open(case)
    if case.status == CaseStatus.OPEN.value:
        case.status = CaseStatus.IN_PROGRESS.value
    _note(session, case, "note", text, actor, now)
    session.flush()
    return case


@dataclass(frozen=True)
class Gesture:
    """A recovery gesture: ``points`` (a positive adjustment) or a ``coupon`` reward code."""

    points: int | None = None
    coupon: str | None = None

    def check(self) -> None:
        errors = []
        if self.points is not None and self.coupon is not None:
            errors.append(FieldError("gesture", "experience.v.one_gesture"))
        if self.points is not None and not 0 < self.points <= 1_000_000:
            errors.append(
                FieldError("gesture.points", "core.v.gt", {"gt": 0, "value": self.points})
            )
        if errors:
            raise InvalidInput(errors=errors)


def close(
    session: Session,
    case_id: int,
    *,
    resolution: str,
    gesture: Gesture | None,
    actor: str,
    now: datetime,
    ledger_context: Any = None,
    base_url: str = "",
) -> FollowUpCase:
    """Close a case: resolution, gesture through the engine, re-survey; all or nothing."""
    case = get_case(session, case_id)
    _open(case)
    if not resolution.strip():
        raise InvalidInput(errors=[FieldError("resolution", "core.v.text_empty")])
    member = session.get(Member, case.member_pk) if case.member_pk else None
    if gesture is not None and (gesture.points or gesture.coupon):
        gesture.check()
        if member is None:
            raise Conflict("experience.case_no_member", case=case.id)
        case.gesture = _give(ledger_context, case, member, gesture, resolution)
        _note(session, case, "gesture", str(case.gesture), actor, now)
    case.status = CaseStatus.CLOSED.value
    case.resolution = resolution.strip()
    case.closed_at = now
    case.closed_by = actor
    _note(session, case, "close", case.resolution, actor, now)
    session.flush()
    if member is not None:
        case.resurvey_pk = _resurvey(session, case, member, now=now, base_url=base_url)
        session.flush()
    return case


def _give(ledger_context: Any, case: FollowUpCase, member: Member, gesture: Gesture, why: str):
    # imported here: the ledger imports nothing of ours, keep it that way round
    from memberlab.ledger import service as ledger
    from memberlab.ledger.schemas import AdjustmentCreate
    from memberlab.rewards import service as rewards

    if ledger_context is None:
        raise RuntimeError("a gesture needs the ledger context")
    if gesture.points:
        reason = f"case {case.id}: {why}"[:500]
        answer = ledger.adjust(
            ledger_context,
            member.member_id,
            AdjustmentCreate(points=gesture.points, reason=reason),
            f"case:{case.id}:gesture",
        )
        return {"points": gesture.points, "entry": answer.body.get("entry", {}).get("seq")}
    coupon = rewards.grant_coupon(
        ledger_context, member.member_id, gesture.coupon or "", reference=f"case:{case.id}"
    )
    return {"coupon": coupon.code, "reward": coupon.reward_code}


def _resurvey(session: Session, case: FollowUpCase, member: Member, *, now: datetime,
              base_url: str) -> int | None:  # fmt: skip
    """Ask again through the first active survey with a ``case_closed`` trigger, if any."""
    from memberlab.experience.invitations import issue, may_ask

    if not may_ask(member):
        return None
    for survey in session.scalars(
        select(Survey).where(Survey.status == SurveyStatus.ACTIVE.value).order_by(Survey.id)
    ):
        definition = definition_of(survey)
        if any(t.event is TriggerEvent.CASE_CLOSED for t in definition.triggers):
            delay = max(
                (t.delay_hours for t in definition.triggers if t.event is TriggerEvent.CASE_CLOSED),
                default=0,
            )
            issued = issue(
                session,
                survey=survey,
                member=member,
                trigger="case_closed",
                dedupe_key=f"{survey.code}:case:{case.id}",
                now=now + timedelta(hours=delay),
                base_url=base_url,
                valid_days=definition.link_valid_days,
                touchpoint=case.touchpoint,
                store=case.store,
                case_pk=case.id,
            )
            return issued.invitation.id
    return None


# --- lists and measures ----------------------------------------------------------------------


@dataclass(frozen=True)
class CaseView:
    id: int
    member_id: str | None
    reason: str
    status: str
    touchpoint: str | None
    store: str | None
    opened_at: datetime
    due_at: datetime
    overdue: bool
    assignee: str | None
    nps: int | None
    csat: int | None
    comment: str | None
    resolution: str | None
    closed_at: datetime | None
    gesture: dict[str, Any] | None
    resurvey_nps: int | None
    notes: list[dict[str, Any]]


def _view(session: Session, case: FollowUpCase, now: datetime, notes: bool) -> CaseView:
    response = session.get(SurveyResponse, case.response_pk) if case.response_pk else None
    member_id = (
        session.scalar(select(Member.member_id).where(Member.id == case.member_pk))
        if case.member_pk
        else None
    )
    resurvey_nps = None
    if case.resurvey_pk is not None:
        resurvey_nps = session.scalar(
            select(SurveyResponse.nps).where(SurveyResponse.invitation_pk == case.resurvey_pk)
        )
    note_rows = (
        session.scalars(select(CaseNote).where(CaseNote.case_pk == case.id).order_by(CaseNote.id))
        if notes
        else []
    )
    return CaseView(
        id=case.id,
        member_id=member_id,
        reason=case.reason,
        status=case.status,
        touchpoint=case.touchpoint,
        store=case.store,
        opened_at=case.opened_at,
        due_at=case.due_at,
        overdue=case.status != CaseStatus.CLOSED.value and case.due_at < now,
        assignee=case.assignee,
        nps=response.nps if response else None,
        csat=response.csat if response else None,
        comment=response.comment if response else None,
        resolution=case.resolution,
        closed_at=case.closed_at,
        gesture=case.gesture,
        resurvey_nps=resurvey_nps,
        notes=[
            {"at": n.at.isoformat(), "author": n.author, "kind": n.kind, "text": n.text}
            for n in note_rows
        ],
    )


def view(session: Session, case_id: int, *, now: datetime) -> CaseView:
    return _view(session, get_case(session, case_id), now, notes=True)


def list_cases(
    session: Session,
    *,
    now: datetime,
    status: CaseStatus | None = None,
    overdue: bool = False,
    assignee: str | None = None,
    touchpoint: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[CaseView]:
    """Cases, soonest due first among the open ones (then the closed, newest first)."""
    query = select(FollowUpCase)
    if status is not None:
        query = query.where(FollowUpCase.status == status.value)
    if overdue:
        query = query.where(
            FollowUpCase.status != CaseStatus.CLOSED.value, FollowUpCase.due_at < now
        )
    if assignee is not None:
        query = query.where(FollowUpCase.assignee == assignee)
    if touchpoint is not None:
        query = query.where(FollowUpCase.touchpoint == touchpoint)
    if after is not None:
        query = query.where(FollowUpCase.id > after)
    query = query.order_by(FollowUpCase.id).limit(limit)
    rows = session.scalars(query).all()
    views = [_view(session, case, now, notes=False) for case in rows]
    return sorted(views, key=lambda v: (v.status == "closed", v.due_at, v.id))


@dataclass(frozen=True)
class CaseMeasures:
    opened: int
    closed: int
    open: int
    overdue: int
    deadline_met_rate: float | None  # closed by the due time, of the cases closed
    recovery_rate: float | None  # detractors followed up who bought again after closing
    recovered: int
    followed_detractors: int
    median_hours_to_close: float | None


def measures(session: Session, *, now: datetime, since: datetime | None = None) -> CaseMeasures:
    query = select(FollowUpCase)
    if since is not None:
        query = query.where(FollowUpCase.opened_at >= since)
    cases = session.scalars(query).all()
    closed = [c for c in cases if c.status == CaseStatus.CLOSED.value and c.closed_at]
    still_open = [c for c in cases if c.status != CaseStatus.CLOSED.value]
    met = sum(1 for c in closed if c.closed_at <= c.due_at)  # type: ignore[operator]
    detractors = [c for c in closed if c.reason == "detractor" and c.member_pk is not None]
    recovered = 0
    for case in detractors:
        bought = session.scalar(
            select(func.count(Order.id)).where(
                Order.member_pk == case.member_pk, Order.occurred_at > case.closed_at
            )
        )
        recovered += 1 if bought else 0
    hours = sorted((c.closed_at - c.opened_at).total_seconds() / 3600 for c in closed)  # type: ignore[operator]
    median = None
    if hours:
        middle = len(hours) // 2
        median = hours[middle] if len(hours) % 2 else (hours[middle - 1] + hours[middle]) / 2
    return CaseMeasures(
        opened=len(cases),
        closed=len(closed),
        open=len(still_open),
        overdue=sum(1 for c in still_open if c.due_at < now),
        deadline_met_rate=met / len(closed) if closed else None,
        recovery_rate=recovered / len(detractors) if detractors else None,
        recovered=recovered,
        followed_detractors=len(detractors),
        median_hours_to_close=median,
    )


def invitation_of_case(session: Session, case: FollowUpCase) -> SurveyInvitation | None:
    return session.get(SurveyInvitation, case.resurvey_pk) if case.resurvey_pk else None
