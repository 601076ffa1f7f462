"""Where an engagement stands on a day: computed from its terms and its events, never stored.

- **Payments.** The instalments' due dates on the working-day calendar (marked provisional
  when a year's holiday schedule is not yet published), what was paid and what is overdue
  (``instalments.apply_payments``).
- **Deliverables.** Due, submitted, accepted, rejected (to be submitted again) or accepted by
  default when the client let the acceptance window pass (视为验收通过); late days. The needs
  questionnaire's answers (a ``questionnaire`` event) hand in the deliverable of that annex.
- **Milestones.** Accepted by an explicit event, or when every deliverable of the milestone
  is accepted (on the last acceptance).
- **Standards.** Each assessment is a round: a failing round opens an improvement round,
  until the standard passes or ``max_rounds`` improvement rounds have failed.
- **Breaches**, detected from the dates, each with its clause and the amount it computes:
  late delivery by the provider, late items from the client (lack of cooperation), late
  payment (the agreed rate or the statutory fallback), a standard failed for good.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from memberlab.engagement.calendar import ComputedDate, WorkingCalendar, default_calendar
from memberlab.engagement.definition import (
    Annex,
    Deliverable,
    EngagementDefinition,
    Side,
    Standard,
)
from memberlab.engagement.events import Event, EventKind
from memberlab.engagement.instalments import (
    Events,
    Payment,
    ScheduleStatus,
    apply_payments,
    build_schedule,
)
from memberlab.engagement.messages import Message, msg
from memberlab.engagement.penalties import (
    Breach,
    BreachType,
    PenaltyClause,
    PenaltyResult,
    compute,
    late_payment_charge,
)


@dataclass(frozen=True)
class DeliverableState:
    code: str
    by: Side
    due: dt.date
    state: str  # pending | submitted | accepted | deemed_accepted | rejected
    submitted_on: dt.date | None = None
    accepted_on: dt.date | None = None
    window_ends: ComputedDate | None = None  # the client's acceptance window
    late_days: int = 0


@dataclass(frozen=True)
class StandardState:
    code: str
    target: Decimal
    rounds: tuple[tuple[dt.date, Decimal, bool], ...]  # (day, value, passed)
    state: str  # not_assessed | passed | improving | failed
    improvement_rounds_left: int


@dataclass(frozen=True)
class BreachFound:
    breach_type: BreachType
    subject: str  # the deliverable, instalment or standard
    clause: str | None  # the clause's code, None for the statutory late-payment fallback
    since: dt.date
    result: PenaltyResult | None  # None when no clause covers it


@dataclass
class EngagementStatus:
    as_of: dt.date
    signed_on: dt.date | None
    schedule: ScheduleStatus
    deliverables: list[DeliverableState]
    milestones: dict[str, dt.date | None]
    standards: list[StandardState]
    breaches: list[BreachFound]
    warnings: list[Message] = field(default_factory=list)
    calendar: WorkingCalendar | None = None  # the working-day calendar the dates used

    @property
    def penalties_total(self) -> dict[str, Decimal]:
        """Amounts by who owes them: the provider (late delivery, standards) or the client."""
        owed = {"provider": Decimal(0), "client": Decimal(0)}
        for breach in self.breaches:
            if breach.result is None:
                continue
            side = (
                "client"
                if breach.breach_type in (BreachType.LATE_PAYMENT, BreachType.CLIENT_NO_COOPERATION)
                else "provider"
            )
            owed[side] += breach.result.amount
        return owed


def _ordered(events: Sequence[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.on, e.seq))


def _payload(event: Event, name: str) -> Any:
    payload = event.payload
    return payload.get(name) if isinstance(payload, dict) else getattr(payload, name, None)


def _window_end(
    submitted: dt.date, days: int, unit: str, calendar: WorkingCalendar
) -> ComputedDate:
    if unit == "working_days":
        return calendar.add_working_days(submitted, days)
    return calendar.add_calendar_days(submitted, days)


def submits(event: Event, deliverable: Deliverable) -> bool:
    """Whether ``event`` hands ``deliverable`` in: a submission naming it, or the needs
    questionnaire's answers (naming it, or naming none when it is of that annex)."""
    if event.kind is EventKind.SUBMISSION:
        return _payload(event, "deliverable") == deliverable.code
    if event.kind is EventKind.QUESTIONNAIRE:
        named = _payload(event, "deliverable")
        if named is not None:
            return named == deliverable.code
        return deliverable.annex is Annex.NEEDS_QUESTIONNAIRE
    return False


def deliverable_states(
    spec: EngagementDefinition,
    events: Sequence[Event],
    as_of: dt.date,
    calendar: WorkingCalendar,
) -> list[DeliverableState]:
    states = []
    for deliverable in spec.deliverables:
        submitted: dt.date | None = None
        first_submitted: dt.date | None = None
        accepted: dt.date | None = None
        state = "pending"
        for event in _ordered(events):
            if event.on > as_of:
                continue
            if submits(event, deliverable):
                submitted, state = event.on, "submitted"
                first_submitted = first_submitted or event.on
            elif _payload(event, "deliverable") != deliverable.code:
                continue
            elif event.kind is EventKind.ACCEPTANCE and submitted is not None:
                accepted, state = event.on, "accepted"
            elif event.kind is EventKind.REJECTION and submitted is not None:
                state, accepted = "rejected", None
        window = None
        if submitted is not None:
            window = _window_end(
                submitted, deliverable.acceptance_days, deliverable.acceptance_unit, calendar
            )
            if state == "submitted" and deliverable.deemed_acceptance and window.date < as_of:
                state, accepted = "deemed_accepted", window.date
        # delivered late: the first submission after the due day, or none by as_of; a
        # rejected delivery is late until it is submitted again
        end = submitted if state not in ("pending", "rejected") else as_of
        late = max((end - deliverable.due).days, 0) if end is not None else 0
        states.append(
            DeliverableState(
                code=deliverable.code,
                by=deliverable.by,
                due=deliverable.due,
                state=state,
                submitted_on=submitted,
                accepted_on=accepted,
                window_ends=window,
                late_days=late,
            )
        )
    return states


def milestone_dates(
    spec: EngagementDefinition, events: Sequence[Event], deliverables: list[DeliverableState]
) -> dict[str, dt.date | None]:
    accepted: dict[str, dt.date | None] = {m.code: None for m in spec.milestones}
    for event in _ordered(events):
        if event.kind is EventKind.MILESTONE_ACCEPTED:
            code = _payload(event, "milestone")
            if code in accepted and accepted[code] is None:
                accepted[code] = event.on
    by_code = {d.code: d for d in deliverables}
    for milestone in spec.milestones:
        if accepted[milestone.code] is not None:
            continue
        own = [by_code[d.code] for d in spec.deliverables if d.milestone == milestone.code]
        if own and all(d.accepted_on is not None for d in own):
            accepted[milestone.code] = max(d.accepted_on for d in own if d.accepted_on)
    return accepted


def standard_states(
    spec: EngagementDefinition, events: Sequence[Event], as_of: dt.date
) -> list[StandardState]:
    states = []
    for standard in spec.standards:
        rounds = tuple(
            (event.on, Decimal(str(_payload(event, "value"))), False)
            for event in _ordered(events)
            if event.kind is EventKind.ASSESSMENT
            and _payload(event, "standard") == standard.code
            and event.on <= as_of
        )
        rounds = tuple((day, value, standard.passes(value)) for day, value, _ in rounds)
        states.append(_standard_state(standard, rounds))
    return states


def _standard_state(
    standard: Standard, rounds: tuple[tuple[dt.date, Decimal, bool], ...]
) -> StandardState:
    failures = 0
    state = "not_assessed"
    for _, _, passed in rounds:
        if passed:
            state = "passed"
            break
        failures += 1
        state = "failed" if failures > standard.max_rounds else "improving"
        if state == "failed":
            break
    left = max(standard.max_rounds - max(failures - 1, 0), 0) if state == "improving" else 0
    return StandardState(standard.code, standard.target, rounds, state, left)


def compute_status(
    spec: EngagementDefinition,
    events: Sequence[Event],
    as_of: dt.date,
    *,
    calendar: WorkingCalendar | None = None,
    estimated_losses: dict[str, Decimal] | None = None,
) -> EngagementStatus:
    """Everything that follows from the terms and the events up to ``as_of``."""
    calendar = calendar or default_calendar()
    known = [e for e in events if e.on <= as_of]
    signed = next((e.on for e in _ordered(known) if e.kind is EventKind.SIGNED), None)
    deliverables = deliverable_states(spec, known, as_of, calendar)
    milestones = milestone_dates(spec, known, deliverables)
    invoices = {
        _payload(e, "instalment"): e.on for e in _ordered(known) if e.kind is EventKind.INVOICE
    }
    schedule = build_schedule(spec.payment)
    payments = [
        Payment(
            paid_on=e.on,
            amount=Decimal(str(_payload(e, "amount"))),
            instalment=_payload(e, "instalment"),
            reference=_payload(e, "reference"),
        )
        for e in _ordered(known)
        if e.kind is EventKind.PAYMENT
    ]
    happened = Events(
        signed_on=signed,
        milestones_accepted={k: v for k, v in milestones.items() if v is not None},
        invoices=invoices,
    )
    paid = apply_payments(schedule, payments, happened, as_of=as_of, calendar=calendar)
    standards = standard_states(spec, known, as_of)
    losses = estimated_losses or {}
    breaches = _breaches(spec, deliverables, paid, standards, as_of, calendar, losses)
    return EngagementStatus(
        as_of=as_of,
        signed_on=signed,
        schedule=paid,
        deliverables=deliverables,
        milestones=milestones,
        standards=standards,
        breaches=breaches,
        warnings=list(paid.warnings),
        calendar=calendar,
    )


def _clause(spec: EngagementDefinition, breach_type: BreachType) -> PenaltyClause | None:
    return next((c for c in spec.penalties if c.breach_type is breach_type), None)


def _breaches(
    spec: EngagementDefinition,
    deliverables: list[DeliverableState],
    paid: ScheduleStatus,
    standards: list[StandardState],
    as_of: dt.date,
    calendar: WorkingCalendar,
    losses: dict[str, Decimal],
) -> list[BreachFound]:
    found: list[BreachFound] = []
    fee = spec.payment.fee
    currency = spec.payment.currency
    for state in deliverables:
        if state.late_days <= 0:
            continue
        kind = (
            BreachType.LATE_DELIVERY
            if state.by is Side.PROVIDER
            else BreachType.CLIENT_NO_COOPERATION
        )
        clause = _clause(spec, kind)
        definition = spec.deliverable(state.code)
        performed = state.submitted_on if state.state not in ("pending", "rejected") else None
        breach = Breach(
            breach_type=kind,
            contract_fee=fee,
            currency=currency,
            due=state.due,
            performed_on=performed,
            as_of=as_of,
            deliverable_value=definition.value if definition else None,
            estimated_loss=losses.get(state.code),
        )
        result = compute(clause, breach, calendar=calendar) if clause else None
        found.append(
            BreachFound(kind, state.code, clause.code if clause else None, state.due, result)
        )
    for instalment in paid.overdue + tuple(
        s for s in paid.instalments if s.state != "overdue" and s.days_overdue > 0
    ):
        if instalment.due is None:
            continue
        breach = Breach(
            breach_type=BreachType.LATE_PAYMENT,
            contract_fee=fee,
            currency=currency,
            due=instalment.due.date,
            performed_on=instalment.settled_on,
            as_of=as_of,
            overdue=list(instalment.overdue_segments),
            estimated_loss=losses.get(instalment.code),
        )
        result = late_payment_charge(spec.late_payment, breach, calendar=calendar)
        clause = spec.late_payment.agreed
        found.append(
            BreachFound(
                BreachType.LATE_PAYMENT,
                instalment.code,
                clause.code if clause else None,
                instalment.due.date,
                result,
            )
        )
    for state in standards:
        if state.state != "failed":
            continue
        clause = _clause(spec, BreachType.BELOW_STANDARD)
        day = state.rounds[-1][0]
        breach = Breach(  # not a matter of days: no due date, a penalty charged once
            breach_type=BreachType.BELOW_STANDARD,
            contract_fee=fee,
            currency=currency,
            as_of=as_of,
            estimated_loss=losses.get(state.code),
        )
        result = compute(clause, breach, calendar=calendar) if clause else None
        found.append(
            BreachFound(
                BreachType.BELOW_STANDARD, state.code, clause.code if clause else None, day, result
            )
        )
    return found


def describe_breach(breach: BreachFound) -> Message:
    return msg(
        f"engagement.breach.{breach.breach_type.value}",
        subject=breach.subject,
        since=breach.since.isoformat(),
        amount=breach.result.amount if breach.result else "-",
    )


@dataclass(frozen=True)
class Reminder:
    on: dt.date
    kind: str  # instalment | deliverable | acceptance_window | training | standard_period
    subject: str
    side: str  # who must act: provider | client

    def message(self) -> Message:
        return msg(f"engagement.reminder.{self.kind}", subject=self.subject, on=self.on.isoformat())


def reminders(
    spec: EngagementDefinition, found: EngagementStatus, *, days: int = 7
) -> list[Reminder]:
    """What falls due within ``days`` after ``found.as_of`` (and is not done yet)."""
    first, last = found.as_of, found.as_of + dt.timedelta(days=days)
    due: list[Reminder] = []

    def within(day: dt.date | None) -> bool:
        return day is not None and first <= day <= last

    for instalment in found.schedule.instalments:
        day = instalment.due.date if instalment.due else None
        if instalment.state in ("due", "not_due") and within(day):
            due.append(Reminder(day, "instalment", instalment.code, "client"))  # type: ignore[arg-type]
    for state in found.deliverables:
        if state.state in ("pending", "rejected") and first <= state.due <= last:
            due.append(Reminder(state.due, "deliverable", state.code, state.by.value))
        window = state.window_ends.date if state.window_ends else None
        if state.state == "submitted" and within(window):
            due.append(Reminder(window, "acceptance_window", state.code, "client"))  # type: ignore[arg-type]
    for session in spec.training:
        if first <= session.planned <= last:
            due.append(Reminder(session.planned, "training", session.code, "provider"))
    for standard in spec.standards:
        if first <= standard.period_end <= last:
            due.append(Reminder(standard.period_end, "standard_period", standard.code, "provider"))
    return sorted(due, key=lambda r: (r.on, r.kind, r.subject))
