"""Where the sample engagement stands, computed from its terms and what happened; every
figure worked by hand in the comments (fee 480,000.00 CNY)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from memberlab.engagement.definition import parse_definition_text
from memberlab.engagement.events import Event, EventKind, parse_payload
from memberlab.engagement.penalties import BreachType
from memberlab.engagement.status import compute_status

D = dt.date
SPEC = parse_definition_text(
    (
        Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"
    ).read_text(encoding="utf-8")
)


def event(kind: str, on: dt.date, seq: int = 0, **payload: Any) -> Event:
    kind_ = EventKind(kind)
    return Event(kind=kind_, on=on, payload=parse_payload(kind_, payload), seq=seq)


HAPPENED = [
    event("signed", D(2026, 1, 5)),
    # advance (30 % = 144,000.00): due 5 working days after Monday 5 January, the start day
    # not counted: 6, 7, 8, 9, 12 January; paid early
    event("payment", D(2026, 1, 9), amount="144000.00", instalment="advance"),
    # the client's needs questionnaire, due 20 January, came 3 days late: 0.03 % of the fee a
    # day = 144.00 x 3 = 432.00 for the client's lack of cooperation
    event("submission", D(2026, 1, 23), deliverable="needs_questionnaire"),
    event("acceptance", D(2026, 1, 23), deliverable="needs_questionnaire", accepted_by="陈晓"),
    event("submission", D(2026, 1, 24), deliverable="service_schedule"),
    event("acceptance", D(2026, 1, 26), deliverable="service_schedule", accepted_by="王明"),
    # no answer to the team introduction: accepted by default after 10 working days
    # (26-30 January, 2-6 February): on 6 February
    event("submission", D(2026, 1, 25), deliverable="team_introduction"),
    # the diagnosis report, due 25 March, handed in on 8 April: 14 days late, the first 3 of
    # grace: 11 x 0.05 % of the fee (240.00) = 2,640.00
    event("submission", D(2026, 4, 8), deliverable="diagnosis_report"),
    event("acceptance", D(2026, 4, 10), deliverable="diagnosis_report", accepted_by="王明"),
    # the program design, on time but rejected, then handed in again 8 days after its due
    # day (20 -> 28 April): 8 - 3 = 5 days x 240.00 = 1,200.00
    event("submission", D(2026, 4, 20), deliverable="program_design"),
    event(
        "rejection",
        D(2026, 4, 24),
        deliverable="program_design",
        reasons="积分规则不完整",
        rejected_by="王明",
    ),
    event("submission", D(2026, 4, 28), deliverable="program_design", seq=1),
    event("acceptance", D(2026, 4, 30), deliverable="program_design", accepted_by="王明"),
    event("submission", D(2026, 4, 18), deliverable="evaluation_standards"),
    event("acceptance", D(2026, 4, 22), deliverable="evaluation_standards", accepted_by="王明"),
    # design accepted on 30 April (its last deliverable): the design instalment (40 % =
    # 192,000.00) is due 10 working days later: 1-5 May are Labour Day, 9 May a make-up
    # Saturday: 6, 7, 8, 9, 11, 12, 13, 14, 15, 18 May. Paid on 2 July: 13 + 30 + 2 = 45 days
    # late at the agreed 0.05 % a day of the late amount: 96.00 x 45 = 4,320.00
    event("payment", D(2026, 7, 2), amount="192000.00", instalment="design"),
    event("submission", D(2026, 5, 29), deliverable="training_plan"),
    # NPS (target 25): fails, improves, fails, then passes on re-assessment
    event("assessment", D(2026, 8, 31), standard="nps", value="20"),
    event("assessment", D(2026, 9, 30), standard="nps", value="23"),
    event("assessment", D(2026, 10, 31), standard="nps", value="27.5"),
    # repeat rate (target 35 %): fails the first assessment and both improvement rounds:
    # below standard, 5 % of the fee once = 24,000.00
    event("assessment", D(2026, 8, 31), standard="repeat_rate", value="31"),
    event("assessment", D(2026, 9, 30), standard="repeat_rate", value="33"),
    event("assessment", D(2026, 10, 31), standard="repeat_rate", value="34.9"),
]


@pytest.fixture(scope="module")
def status():
    return compute_status(SPEC, HAPPENED, D(2026, 11, 20))


def test_instalments_their_due_dates_and_payments(status) -> None:
    advance = status.schedule.status("advance")
    assert advance.due is not None
    assert advance.due.date == D(2026, 1, 12)
    assert (advance.state, advance.days_overdue) == ("paid", 0)
    design = status.schedule.status("design")
    assert design.due is not None
    assert design.due.date == D(2026, 5, 18)
    assert (design.paid, design.days_overdue) == (Decimal("192000.00"), 45)
    final = status.schedule.status("final")
    assert (final.due, final.state) == (None, "awaiting_trigger")  # no final acceptance yet


def test_deliverables_and_milestones(status) -> None:
    states = {d.code: d for d in status.deliverables}
    assert states["team_introduction"].state == "deemed_accepted"
    assert states["team_introduction"].accepted_on == D(2026, 2, 6)
    assert (states["program_design"].state, states["program_design"].late_days) == ("accepted", 8)
    assert states["diagnosis_report"].late_days == 14
    assert states["proof_of_performance"].state == "pending"
    assert status.milestones["kickoff"] == D(2026, 2, 6)  # the last of its three accepted
    assert status.milestones["design_accepted"] == D(2026, 4, 30)
    assert status.milestones["final_acceptance"] is None


def test_a_standard_fails_improves_and_passes_on_re_assessment(status) -> None:
    nps, repeat, cases = status.standards
    assert nps.state == "passed"
    assert [passed for _, _, passed in nps.rounds] == [False, False, True]
    assert repeat.state == "failed"  # two improvement rounds used, still below 35
    assert cases.state == "not_assessed"


def test_breaches_with_their_clauses_and_amounts(status) -> None:
    found = {(b.breach_type, b.subject): b for b in status.breaches}

    assert set(found) == {
        (BreachType.CLIENT_NO_COOPERATION, "needs_questionnaire"),
        (BreachType.LATE_DELIVERY, "diagnosis_report"),
        (BreachType.LATE_DELIVERY, "program_design"),
        (BreachType.LATE_PAYMENT, "design"),
        (BreachType.BELOW_STANDARD, "repeat_rate"),
    }
    amounts = {key: b.result.amount for key, b in found.items() if b.result}
    assert amounts[(BreachType.CLIENT_NO_COOPERATION, "needs_questionnaire")] == Decimal("432.00")
    assert amounts[(BreachType.LATE_DELIVERY, "diagnosis_report")] == Decimal("2640.00")
    assert amounts[(BreachType.LATE_DELIVERY, "program_design")] == Decimal("1200.00")
    assert amounts[(BreachType.LATE_PAYMENT, "design")] == Decimal("4320.00")
    assert amounts[(BreachType.BELOW_STANDARD, "repeat_rate")] == Decimal("24000.00")
    assert found[(BreachType.LATE_PAYMENT, "design")].clause == "late_payment"
    # the provider owes 2,640 + 1,200 + 24,000; the client 432 + 4,320
    assert status.penalties_total == {
        "provider": Decimal("27840.00"),
        "client": Decimal("4752.00"),
    }


def test_an_unpaid_instalment_keeps_running_until_as_of() -> None:
    unpaid = [e for e in HAPPENED if not (e.kind is EventKind.PAYMENT and e.on.month == 7)]
    status = compute_status(SPEC, unpaid, D(2026, 6, 2))
    (late,) = [b for b in status.breaches if b.breach_type is BreachType.LATE_PAYMENT]
    # 19 May to 2 June: 15 days x 96.00 = 1,440.00
    assert late.result is not None
    assert (late.result.late_days, late.result.amount) == (15, Decimal("1440.00"))


def test_reminders_of_what_falls_due() -> None:
    from memberlab.engagement.status import reminders

    signed = [event("signed", D(2026, 1, 5)), event("submission", D(2026, 1, 5),
                                                      deliverable="service_schedule")]  # fmt: skip
    found = compute_status(SPEC, signed, D(2026, 1, 6))

    due = reminders(SPEC, found, days=14)

    # the advance (12 January), the schedule's acceptance window (10 working days after
    # Monday 5 January: 19 January) and the client's questionnaire (20 January)
    assert [(r.on, r.kind, r.subject, r.side) for r in due] == [
        (D(2026, 1, 12), "instalment", "advance", "client"),
        (D(2026, 1, 19), "acceptance_window", "service_schedule", "client"),
        (D(2026, 1, 20), "deliverable", "needs_questionnaire", "client"),
    ]
    assert "2026-01-12" in due[0].message().render("zh-CN")
