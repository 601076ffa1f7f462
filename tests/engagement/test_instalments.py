"""Payment schedules: exact amounts, due dates on the working-day calendar, payments, arrears."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from memberlab.engagement.instalments import (
    InvalidPayments,
    InvalidSchedule,
    apply_payments,
    build_schedule,
    due_date,
)

D = dt.date


def founding_contract(fee: str = "300000.00") -> dict:
    """Clause 4.1 of the founding contract: N% within N working days of signing, the rest
    after the service is completed (here: 10 working days after final acceptance)."""
    return {
        "fee": fee,
        "tax_rate": "6",
        "instalments": [
            {"code": "signing", "portion": "30", "trigger": "signing", "offset": 5},
            {
                "code": "completion",
                "portion": "70",
                "trigger": "milestone_accepted",
                "milestone": "final",
                "offset": 10,
            },
        ],
    }


def test_the_founding_contract_schedule_and_its_due_dates() -> None:
    schedule = build_schedule(founding_contract())
    first, second = schedule.instalments

    assert (first.amount, second.amount) == (Decimal("90000.00"), Decimal("210000.00"))
    # Signed Wed 2026-09-30: 5 working days is Tue 13 Oct (National Day, 调休 Sat 10 Oct).
    assert due_date(first, _events(signed_on=D(2026, 9, 30))).date == D(2026, 10, 13)
    # The completion instalment waits for its milestone.
    assert due_date(second, _events(signed_on=D(2026, 9, 30))) is None
    # Accepted Fri 2026-12-18: Mon 21 = 1 ... Fri 25 = 5, Mon 28 = 6, Tue 29 = 7, Wed 30 = 8,
    # Thu 31 = 9; Fri 1 Jan 2027 is New Year's Day; Mon 4 Jan = 10, in a year whose
    # schedule is not published: provisional.
    due = due_date(second, _events(signed_on=D(2026, 9, 30), final=D(2026, 12, 18)))
    assert due.date == D(2027, 1, 4)
    assert due.year_published is False
    assert due.notes[0].key == "engagement.note.trigger"


def _events(signed_on=None, final=None, invoices=None):
    from memberlab.engagement.instalments import Events

    return Events(
        signed_on=signed_on,
        milestones_accepted={"final": final} if final else {},
        invoices=invoices or {},
    )


def test_portions_round_to_the_fen_and_the_last_absorbs_the_rest() -> None:
    # 999.99 x 33.33% = 333.296667 -> 333.30, twice: 666.60; the last takes 999.99 - 666.60
    # = 333.39 (33.34% would round to 333.40 and the sum to 1000.00).
    schedule = build_schedule(
        {
            "fee": "999.99",
            "tax_rate": "0",
            "instalments": [
                {"code": "a", "portion": "33.33", "trigger": "signing"},
                {"code": "b", "portion": "33.33", "trigger": "signing"},
                {"code": "c", "portion": "33.34", "trigger": "signing"},
            ],
        }
    )

    assert [i.amount for i in schedule.instalments] == [
        Decimal("333.30"),
        Decimal("333.30"),
        Decimal("333.39"),
    ]
    assert sum(i.amount for i in schedule.instalments) == Decimal("999.99")


def test_tax_inside_the_fee_is_split_to_the_fen_as_well() -> None:
    # 10000.01 at 30/30/40: 3000.003 -> 3000.00, 3000.00, last 4000.01.
    # Tax included at 6%: 10000.01 x 6/106 = 566.0383 -> 566.04; 3000 x 6/106 = 169.8113 ->
    # 169.81 twice; the last 566.04 - 339.62 = 226.42.
    schedule = build_schedule(
        {
            "fee": "10000.01",
            "tax_rate": "6",
            "instalments": [
                {"code": "a", "portion": 30, "trigger": "signing"},
                {"code": "b", "portion": 30, "trigger": "signing"},
                {"code": "c", "portion": 40, "trigger": "signing"},
            ],
        }
    )

    assert schedule.total_tax == Decimal("566.04")
    assert [i.amount for i in schedule.instalments] == [
        Decimal("3000.00"),
        Decimal("3000.00"),
        Decimal("4000.01"),
    ]
    assert [i.tax for i in schedule.instalments] == [
        Decimal("169.81"),
        Decimal("169.81"),
        Decimal("226.42"),
    ]
    assert [i.payable for i in schedule.instalments] == [i.amount for i in schedule.instalments]


def test_tax_on_top_of_the_fee_is_added_to_each_payment() -> None:
    # 100000 + 6% = 106000; 30/70 -> 30000 + 1800 and 70000 + 4200.
    spec = founding_contract("100000")
    spec["tax_included"] = False
    schedule = build_schedule(spec)

    assert schedule.total_payable == Decimal("106000.00")
    assert [i.payable for i in schedule.instalments] == [Decimal("31800.00"), Decimal("74200.00")]


def test_an_amount_and_a_portion_mix() -> None:
    schedule = build_schedule(
        {
            "fee": "100000",
            "tax_rate": "6",
            "instalments": [
                {"code": "deposit", "amount": "20000", "trigger": "signing", "offset": 3},
                {
                    "code": "rest",
                    "portion": "80",
                    "trigger": "invoice",
                    "offset": 15,
                    "offset_unit": "calendar_days",
                },
            ],
        }
    )

    assert [i.amount for i in schedule.instalments] == [Decimal("20000"), Decimal("80000.00")]
    # Invoice received Thu 2026-09-17: + 15 days = Fri 2 Oct, inside National Day (1-7 Oct
    # off); the next working day is Thu 8 Oct.
    due = due_date(schedule.instalments[1], _events(invoices={"rest": D(2026, 9, 17)}))
    assert due.date == D(2026, 10, 8)
    assert [n.key for n in due.notes] == ["engagement.note.trigger", "engagement.note.moved"]


def test_a_date_trigger() -> None:
    schedule = build_schedule(
        {
            "fee": "5000",
            "tax_rate": "0",
            "instalments": [
                {
                    "code": "q1",
                    "amount": "5000",
                    "trigger": "date",
                    "trigger_date": "2026-04-03",
                    "offset": 1,
                },
            ],
        }
    )
    # Fri 3 April 2026 + 1 working day: 4-6 April is Qingming -> Tue 7 April.
    assert due_date(schedule.instalments[0], _events()).date == D(2026, 4, 7)


def test_instalments_that_do_not_add_up_to_the_fee_are_refused() -> None:
    spec = founding_contract("100000")
    spec["instalments"][1]["portion"] = "60"

    with pytest.raises(InvalidSchedule) as caught:
        build_schedule(spec)

    (error,) = caught.value.errors
    assert (error.loc, error.key) == ("instalments", "engagement.schedule.not_fee")
    assert error.params["total"] == Decimal("90000.00")
    assert "90000.00" in error.render("en")
    assert "100000" in error.render("zh-CN")


def test_every_problem_of_a_schedule_is_listed() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        build_schedule(
            {
                "fee": "1000.001",
                "tax_rate": "6",
                "instalments": [
                    {"code": "a", "portion": "50", "amount": "500", "trigger": "signing"},
                    {"code": "a", "portion": "50", "trigger": "milestone_accepted"},
                    {"code": "c", "amount": "1.001", "trigger": "date"},
                ],
            }
        )
    found = {(e.loc, e.key) for e in caught.value.errors}

    assert found == {
        ("fee", "engagement.schedule.precision"),
        ("instalments[0]", "engagement.schedule.portion_or_amount"),
        ("instalments[1].code", "engagement.schedule.duplicate_code"),
        ("instalments[1].milestone", "engagement.schedule.milestone_needed"),
        ("instalments[2].amount", "engagement.schedule.precision"),
        ("instalments[2].trigger_date", "engagement.schedule.date_needed"),
    }


def test_a_structural_error_names_its_field() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        build_schedule({"fee": "-1", "tax_rate": "6", "instalments": []})

    assert {e.loc for e in caught.value.errors} == {"fee", "instalments"}


def single(fee: str = "100000") -> dict:
    return {
        "fee": fee,
        "tax_rate": "6",
        "instalments": [
            {
                "code": "all",
                "portion": "100",
                "trigger": "signing",
                "offset": 10,
                "offset_unit": "calendar_days",
            },
        ],
    }


SIGNED = {"signed_on": "2026-03-02"}  # Mon; + 10 days = Thu 12 March 2026


def test_partial_payments_and_days_overdue() -> None:
    schedule = build_schedule(single())
    payments = [
        {"paid_on": "2026-03-22", "amount": "40000", "reference": "bank 1"},
        {"paid_on": "2026-04-11", "amount": "60000"},
    ]

    # As of 1 April only the first has come: 60000 outstanding, 20 days after 12 March.
    # Overdue 100000 from 13 to 22 March (10 days, the day of payment included), then 60000
    # from 23 March to 1 April (10 days).
    early = apply_payments(schedule, payments[:1], SIGNED, as_of=D(2026, 4, 1)).status("all")
    assert early.due.date == D(2026, 3, 12)
    assert (early.state, early.outstanding, early.days_overdue) == (
        "overdue",
        Decimal("60000.00"),
        20,
    )
    assert [(s.first, s.last, s.amount, s.days) for s in early.overdue_segments] == [
        (D(2026, 3, 13), D(2026, 3, 22), Decimal("100000.00"), 10),
        (D(2026, 3, 23), D(2026, 4, 1), Decimal("60000.00"), 10),
    ]

    # As of 30 April it was settled on 11 April: 30 days late, overdue 60000 for 20 days.
    late = apply_payments(schedule, payments, SIGNED, as_of=D(2026, 4, 30))
    status = late.status("all")
    assert (status.state, status.settled_on, status.days_overdue) == (
        "paid_late",
        D(2026, 4, 11),
        30,
    )
    assert status.overdue_segments[-1].days == 20
    assert late.overdue == ()
    assert late.total_outstanding == 0


def test_not_yet_due_due_today_and_paid_on_time() -> None:
    schedule = build_schedule(single())

    def state(as_of, payments=()):
        return apply_payments(schedule, list(payments), SIGNED, as_of=as_of).status("all").state

    assert state(D(2026, 3, 11)) == "not_due"
    assert state(D(2026, 3, 12)) == "due"
    assert state(D(2026, 3, 13)) == "overdue"
    assert state(D(2026, 3, 20), [{"paid_on": "2026-03-12", "amount": "100000"}]) == "paid"
    assert apply_payments(schedule, [], {}, as_of=D(2026, 3, 20)).status("all").state == (
        "awaiting_trigger"
    )


def test_an_unassigned_payment_goes_to_the_earliest_due_and_the_excess_is_flagged() -> None:
    schedule = build_schedule(founding_contract("100000"))
    events = {"signed_on": "2026-09-30", "milestones_accepted": {"final": "2026-11-02"}}
    # signing: 30000 due 13 Oct; completion: 70000 due 16 Nov (10 working days after 2 Nov).
    status = apply_payments(
        schedule,
        [
            {"paid_on": "2026-10-12", "amount": "50000"},
            {"paid_on": "2026-11-20", "amount": "55000"},
        ],
        events,
        as_of=D(2026, 11, 30),
    )

    signing, completion = status.instalments
    assert (signing.state, signing.paid) == ("paid", Decimal("30000.00"))
    assert completion.due.date == D(2026, 11, 16)
    assert (completion.state, completion.days_overdue) == ("paid_late", 4)
    assert status.unallocated == Decimal("5000")
    assert [w.key for w in status.warnings] == ["engagement.warn.unallocated"]


def test_a_payment_above_its_instalment_is_kept_as_overpaid_with_a_warning() -> None:
    schedule = build_schedule(founding_contract("100000"))
    status = apply_payments(
        schedule,
        [
            {"paid_on": "2026-10-09", "amount": "20000", "instalment": "signing"},
            {"paid_on": "2026-10-10", "amount": "15000", "instalment": "signing"},
        ],
        {"signed_on": "2026-09-30"},
        as_of=D(2026, 10, 31),
    )

    signing = status.status("signing")
    assert (signing.paid, signing.overpaid, signing.state) == (
        Decimal("30000.00"),
        Decimal("5000.00"),
        "paid",
    )
    assert [p.amount for p in signing.payments] == [Decimal("20000"), Decimal("10000.00")]
    assert status.warnings[0].params["excess"] == Decimal("5000.00")
    assert "5000.00" in status.warnings[0].render("zh-CN")


def test_a_payment_after_the_status_date_or_to_an_unknown_instalment_is_refused() -> None:
    schedule = build_schedule(single())

    with pytest.raises(InvalidPayments) as caught:
        apply_payments(
            schedule,
            [
                {"paid_on": "2026-05-01", "amount": "10"},
                {"paid_on": "2026-03-01", "amount": "10", "instalment": "nope"},
                {"paid_on": "2026-03-01", "amount": "0"},
            ],
            SIGNED,
            as_of=D(2026, 4, 30),
        )

    assert {(e.loc, e.key) for e in caught.value.errors} == {
        ("payments[0].paid_on", "engagement.payments.after_as_of"),
        ("payments[1].instalment", "engagement.payments.unknown_instalment"),
        ("payments[2].amount", "core.v.gt"),
    }
