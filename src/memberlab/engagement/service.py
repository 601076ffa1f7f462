"""Engagements in the store: create from the terms, record what happens, agree changes (new
versions), and compute where each stands. Services flush and never commit."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from memberlab.core.errors import Conflict, FieldError, InvalidInput, NotFound
from memberlab.engagement.calendar import WorkingCalendar
from memberlab.engagement.definition import (
    EngagementDefinition,
    content_hash,
    validate_definition,
)
from memberlab.engagement.events import Event, EventKind, parse_payload
from memberlab.engagement.holidays import tenant_calendar
from memberlab.engagement.models import Engagement, EngagementEvent, EngagementVersion
from memberlab.engagement.status import EngagementStatus, compute_status, submits


class EngagementNotFound(NotFound):
    key = "engagement.not_found"


def _invalid(loc: str, key: str, **params: Any) -> InvalidInput:
    return InvalidInput(errors=[FieldError(loc, f"engagement.event.{key}", params)])


# --- engagements and versions ----------------------------------------------------------------


def create(
    session: Session, spec: EngagementDefinition, *, actor: str, now: dt.datetime
) -> Engagement:
    """A new engagement with its terms as version 1."""
    existing = session.scalar(
        select(Engagement).where(Engagement.contract_number == spec.contract_number)
    )
    if existing is not None:
        raise Conflict("engagement.exists", number=spec.contract_number)
    engagement = Engagement(
        contract_number=spec.contract_number,
        status="draft",
        current_version=1,
        created_at=now,
        created_by=actor,
    )
    session.add(engagement)
    session.flush()
    _add_version(session, engagement, spec, 1, "original", None, actor, now)
    return engagement


def _add_version(
    session: Session,
    engagement: Engagement,
    spec: EngagementDefinition,
    version: int,
    reason: str,
    change_code: str | None,
    actor: str,
    now: dt.datetime,
) -> EngagementVersion:
    row = EngagementVersion(
        engagement_pk=engagement.id,
        version=version,
        definition=spec.model_dump(mode="json"),
        content_hash=content_hash(spec),
        reason=reason,
        change_code=change_code,
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, contract_number: str) -> Engagement:
    engagement = session.scalar(
        select(Engagement).where(Engagement.contract_number == contract_number)
    )
    if engagement is None:
        raise EngagementNotFound(number=contract_number)
    return engagement


def list_engagements(session: Session) -> list[Engagement]:
    return list(session.scalars(select(Engagement).order_by(Engagement.contract_number)))


def versions(session: Session, engagement: Engagement) -> list[EngagementVersion]:
    return list(
        session.scalars(
            select(EngagementVersion)
            .where(EngagementVersion.engagement_pk == engagement.id)
            .order_by(EngagementVersion.version)
        )
    )


def terms(session: Session, engagement: Engagement, version: int | None = None):
    """The terms in force (or of ``version``) as an ``EngagementDefinition``."""
    wanted = version or engagement.current_version
    row = session.scalar(
        select(EngagementVersion).where(
            EngagementVersion.engagement_pk == engagement.id,
            EngagementVersion.version == wanted,
        )
    )
    if row is None:
        raise NotFound("engagement.version_not_found", number=engagement.contract_number,
                       version=wanted)  # fmt: skip
    return EngagementDefinition.model_validate(row.definition)


# --- events ----------------------------------------------------------------------------------


def events(session: Session, engagement: Engagement) -> list[Event]:
    rows = session.scalars(
        select(EngagementEvent)
        .where(EngagementEvent.engagement_pk == engagement.id)
        .order_by(EngagementEvent.happened_on, EngagementEvent.id)
    )
    return [
        Event(kind=EventKind(r.kind), on=r.happened_on, payload=r.payload, seq=r.id) for r in rows
    ]


def event_rows(session: Session, engagement: Engagement) -> list[EngagementEvent]:
    return list(
        session.scalars(
            select(EngagementEvent)
            .where(EngagementEvent.engagement_pk == engagement.id)
            .order_by(EngagementEvent.happened_on, EngagementEvent.id)
        )
    )


@dataclass(frozen=True)
class Recorded:
    event: EngagementEvent
    replayed: bool


def record(
    session: Session,
    engagement: Engagement,
    *,
    kind: EventKind,
    on: dt.date,
    payload: dict[str, Any],
    key: str | None,
    actor: str,
    now: dt.datetime,
    today: dt.date,
) -> Recorded:
    """Record one event after checking it against the terms and what already happened.

    ``key`` makes a retry harmless: the same key with the same content returns the first
    event; with other content, a conflict. Without a key one is made from the content.
    """
    parsed = parse_payload(kind, payload)
    data = parsed.model_dump(mode="json", exclude_none=True)
    digest = hashlib.sha256(
        json.dumps([kind.value, on.isoformat(), data], sort_keys=True).encode()
    ).hexdigest()
    key = key or f"{kind.value}:{digest[:32]}"
    existing = session.scalar(
        select(EngagementEvent).where(
            EngagementEvent.engagement_pk == engagement.id, EngagementEvent.key == key
        )
    )
    if existing is not None:
        same = (existing.kind, existing.happened_on, existing.payload) == (kind.value, on, data)
        if not same:
            raise Conflict("engagement.event.key_reused", key=key)
        return Recorded(existing, replayed=True)
    if on > today:
        raise _invalid("on", "future", value=on.isoformat(), today=today.isoformat())
    spec = terms(session, engagement)
    history = events(session, engagement)
    calendar = tenant_calendar(session) if kind is EventKind.PAYMENT else None
    _check(spec, history, kind, on, parsed, today, calendar)
    row = EngagementEvent(
        engagement_pk=engagement.id,
        key=key,
        kind=kind.value,
        happened_on=on,
        payload=data,
        recorded_at=now,
        recorded_by=actor,
    )
    session.add(row)
    if kind is EventKind.SIGNED:
        engagement.status = "signed"
    elif kind is EventKind.COMPLETED:
        engagement.status = "completed"
    session.flush()
    return Recorded(row, replayed=False)


def _check(
    spec: EngagementDefinition,
    history: list[Event],
    kind: EventKind,
    on: dt.date,
    payload: Any,
    today: dt.date,
    calendar: WorkingCalendar | None = None,
) -> None:
    """Each event must name what exists and follow what it depends on."""
    signed = next((e.on for e in history if e.kind is EventKind.SIGNED), None)
    if kind is EventKind.SIGNED:
        if signed is not None:
            raise _invalid("kind", "signed_twice", on=signed.isoformat())
        return
    if kind in (EventKind.PAYMENT, EventKind.INVOICE, EventKind.COMPLETED) and signed is None:
        raise _invalid("kind", "not_signed", kind=kind.value)
    if signed is not None and on < signed and kind is not EventKind.QUESTIONNAIRE:
        raise _invalid("on", "before_signing", value=on.isoformat(), signed=signed.isoformat())

    def known(field: str, value: str | None, choices: list[str]) -> None:
        if value is not None and value not in choices:
            raise _invalid(f"payload.{field}", "unknown", value=value,
                           choices=", ".join(choices) or "-")  # fmt: skip

    deliverables = [d.code for d in spec.deliverables]
    if kind in (EventKind.SUBMISSION, EventKind.ACCEPTANCE, EventKind.REJECTION):
        known("deliverable", payload.deliverable, deliverables)
        if kind is not EventKind.SUBMISSION:
            wanted = spec.deliverable(payload.deliverable)
            assert wanted is not None  # known above
            submissions = [e for e in history if submits(e, wanted)]
            if not submissions:
                raise _invalid("payload.deliverable", "never_submitted",
                               deliverable=payload.deliverable)  # fmt: skip
            if on < submissions[-1].on:
                raise _invalid("on", "before_submission", value=on.isoformat(),
                               submitted=submissions[-1].on.isoformat())  # fmt: skip
    elif kind is EventKind.MILESTONE_ACCEPTED:
        known("milestone", payload.milestone, [m.code for m in spec.milestones])
    elif kind is EventKind.ASSESSMENT:
        known("standard", payload.standard, [s.code for s in spec.standards])
    elif kind is EventKind.TRAINING_HELD:
        known("session", payload.session, [s.code for s in spec.training])
    elif kind is EventKind.TEAM_APPROVED:
        known("name", payload.name, [m.name for m in spec.team])
    elif kind in (EventKind.INVOICE, EventKind.PAYMENT):
        known("instalment", payload.instalment, [i.code for i in spec.payment.instalments])
        if kind is EventKind.PAYMENT:
            _check_payment(spec, history, on, payload, calendar)
    elif kind is EventKind.QUESTIONNAIRE:
        known("deliverable", payload.deliverable, deliverables)
    elif kind in (EventKind.CHANGE_APPROVED, EventKind.CHANGE_REJECTED):
        requested = [e.payload.get("code") for e in history if e.kind is EventKind.CHANGE_REQUEST]
        known("code", payload.code, [c for c in requested if c])
        decided = {
            e.payload.get("code")
            for e in history
            if e.kind in (EventKind.CHANGE_APPROVED, EventKind.CHANGE_REJECTED)
        }
        if payload.code in decided:
            raise _invalid("payload.code", "decided", code=payload.code)


def _check_payment(
    spec: EngagementDefinition,
    history: list[Event],
    on: dt.date,
    payload: Any,
    calendar: WorkingCalendar | None,
) -> None:
    """A payment may not exceed what is still owed (on its instalment, or in all)."""
    status = compute_status(spec, history, on, calendar=calendar)
    amount = Decimal(str(payload.amount))
    if payload.instalment is not None:
        owed = status.schedule.status(payload.instalment).outstanding
    else:
        owed = status.schedule.total_outstanding
    if amount > owed:
        raise _invalid(
            "payload.amount",
            "more_than_owed",
            amount=format(amount, "f"),
            owed=format(owed, "f"),
            currency=spec.payment.currency,
        )


# --- changes ---------------------------------------------------------------------------------


def approve_change(
    session: Session,
    engagement: Engagement,
    *,
    code: str,
    new_terms: dict[str, Any],
    on: dt.date,
    decided_by: str,
    actor: str,
    now: dt.datetime,
    today: dt.date,
) -> EngagementVersion:
    """Approve change request ``code``: the event, and the terms' next version (the contract
    number stays; milestones keep their first agreed dates as the baseline)."""
    spec = validate_definition(new_terms)
    before = terms(session, engagement)
    if spec.contract_number != before.contract_number:
        raise _invalid("contract_number", "number_changed", value=spec.contract_number,
                       expected=before.contract_number)  # fmt: skip
    if content_hash(spec) == content_hash(before):
        raise _invalid("terms", "unchanged", code=code)
    decided = {
        e.payload.get("code")
        for e in events(session, engagement)
        if e.kind in (EventKind.CHANGE_APPROVED, EventKind.CHANGE_REJECTED)
    }
    if code in decided:  # a retry must not make another version
        raise _invalid("code", "decided", code=code)
    record(
        session,
        engagement,
        kind=EventKind.CHANGE_APPROVED,
        on=on,
        payload={"code": code, "decided_by": decided_by},
        key=f"change_approved:{code}",
        actor=actor,
        now=now,
        today=today,
    )
    baselines = {m.code: m.baseline or m.planned for m in before.milestones}
    spec = spec.model_copy(
        update={
            "milestones": [
                m.model_copy(update={"baseline": m.baseline or baselines.get(m.code, m.planned)})
                for m in spec.milestones
            ]
        }
    )
    request = next(
        (e for e in events(session, engagement)
         if e.kind is EventKind.CHANGE_REQUEST and e.payload.get("code") == code),
        None,
    )  # fmt: skip
    reason = request.payload.get("scope", code) if request else code
    number = (
        session.scalar(
            select(func.max(EngagementVersion.version)).where(
                EngagementVersion.engagement_pk == engagement.id
            )
        )
        or 0
    ) + 1
    row = _add_version(session, engagement, spec, number, reason, code, actor, now)
    engagement.current_version = number
    session.flush()
    return row


def status(session: Session, engagement: Engagement, as_of: dt.date) -> EngagementStatus:
    """Where the engagement stands on ``as_of``, on the tenant's working-day calendar (the
    built-in holiday table with the tenant's override, if one is stored)."""
    return compute_status(
        terms(session, engagement),
        events(session, engagement),
        as_of,
        calendar=tenant_calendar(session),
    )


def measure_standard(
    session: Session,
    engagement: Engagement,
    code: str,
    *,
    on: dt.date,
    timezone: str,
    actor: str,
    now: dt.datetime,
    today: dt.date,
) -> Recorded:
    """Measure standard ``code`` from the data of its period and record it as an assessment
    (a round: a failing one opens an improvement round)."""
    from memberlab.engagement.measures import measure

    spec = terms(session, engagement)
    standard = spec.standard(code)
    if standard is None:
        raise _invalid("standard", "unknown", value=code,
                       choices=", ".join(s.code for s in spec.standards) or "-")  # fmt: skip
    if on < standard.period_end:
        raise _invalid("on", "period_open", value=on.isoformat(),
                       end=standard.period_end.isoformat())  # fmt: skip
    found = measure(session, standard.kpi, start=standard.period_start,
                    end=standard.period_end, timezone=timezone)  # fmt: skip
    rounds = sum(
        1
        for e in events(session, engagement)
        if e.kind is EventKind.ASSESSMENT and e.payload.get("standard") == code
    )
    note = f"{found.kpi} {found.start.isoformat()}..{found.end.isoformat()}, n={found.n}"
    return record(
        session,
        engagement,
        kind=EventKind.ASSESSMENT,
        on=on,
        payload={"standard": code, "value": str(found.value), "measured_by": "MemberLab",
                 "note": note},
        key=f"measured:{code}:{rounds + 1}",
        actor=actor,
        now=now,
        today=today,
    )  # fmt: skip
