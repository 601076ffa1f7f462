"""Penalties and late-payment charges, computed by hand in the comments.

Interest at an annual rate accrues rate / 365 a day (``day_count``), each line is rounded
half up to the fen, and the total is the sum of the lines.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from memberlab.engagement._datafile import DataFileError
from memberlab.engagement.instalments import apply_payments, build_schedule
from memberlab.engagement.penalties import (
    InvalidBreach,
    compute,
    default_lpr_table,
    late_payment_charge,
    load_lpr_table,
    load_rules,
)

D = dt.date

# 500 000 CNY due Mon 2024-09-30, paid Thu 2024-11-14: late from 1 October to 14 November
# inclusive, 31 + 14 = 45 days. The one-year LPR was 3.35% (since 2024-07-22) until it
# fell to 3.10% on 2024-10-21: 20 days at 3.35% (1-20 Oct), 25 days at 3.10% (21 Oct - 14 Nov).
LATE_45 = {
    "breach_type": "late_payment",
    "contract_fee": "500000",
    "due": "2024-09-30",
    "performed_on": "2024-11-14",
    "late_amount": "500000",
}

DAILY_005 = {
    "breach_type": "late_payment",
    "basis": "late_amount_percent",
    "rate": "0.05",
    "period": "per_calendar_day",
}


def test_a_payment_45_days_late_under_an_agreed_daily_rate() -> None:
    # 500000 x 0.05% x 45 = 250 x 45 = 11250.00
    result = late_payment_charge({"agreed": DAILY_005}, LATE_45)

    assert result.amount == Decimal("11250.00")
    assert result.late_days == 45
    assert result.rule.key == "engagement.rule.penalty.per_calendar_day"
    assert result.rule.render("en") == "0.05% of the amount paid late per calendar day late"
    assert result.rule.render("zh-CN") == "按逾期付款金额的0.05%每逾期一个自然日计收"


def test_a_payment_45_days_late_under_the_lpr_fallback_at_the_breach_date() -> None:
    # No agreed rate: LPR when the breach began (1 Oct 2024: 3.35%) x 1.3 = 4.355% a year.
    # 500000 x 4.355% = 21775 a year; x 45/365 = 979875/365 = 2684.589 -> 2684.59
    result = late_payment_charge({}, LATE_45)

    assert result.amount == Decimal("2684.59")
    assert result.rule.key == "engagement.rule.lpr_breach_date"
    assert result.rule.params["rate"] == Decimal("3.35")
    (line,) = result.lines
    assert (line.first, line.last, line.days, line.rate) == (
        D(2024, 10, 1),
        D(2024, 11, 14),
        45,
        Decimal("4.355"),
    )


def test_the_lpr_fallback_day_by_day_across_an_lpr_change() -> None:
    # 1-20 Oct: 500000 x 3.35% x 1.3 x 20/365 = 435500/365 = 1193.1507 -> 1193.15
    # 21 Oct-14 Nov: 500000 x 3.10% x 1.3 x 25/365 = 503750/365 = 1380.1370 -> 1380.14
    # total 2573.29
    result = late_payment_charge({"lpr_basis": "daily"}, LATE_45)

    assert [(line.days, line.amount) for line in result.lines] == [
        (20, Decimal("1193.15")),
        (25, Decimal("1380.14")),
    ]
    assert result.amount == Decimal("2573.29")
    assert result.rule.key == "engagement.rule.lpr_daily"


def test_the_factor_and_the_day_count_are_parameters() -> None:
    # x 1.5: 500000 x 3.35% x 1.5 = 25125 a year; x 45/365 = 1130625/365 = 3097.6027 -> 3097.60
    assert late_payment_charge({"lpr_factor": "1.5"}, LATE_45).amount == Decimal("3097.60")
    # / 360: 21775 x 45/360 = 2721.875 -> 2721.88
    assert late_payment_charge({"day_count": 360}, LATE_45).amount == Decimal("2721.88")


def test_a_factor_outside_1_3_to_1_5_is_refused() -> None:
    with pytest.raises(InvalidBreach) as caught:
        late_payment_charge({"lpr_factor": "1.6"}, LATE_45)

    (error,) = caught.value.errors
    assert (error.loc, error.key) == ("terms.lpr_factor", "engagement.late.factor_range")


def test_an_sme_paid_late_by_a_large_enterprise_with_nothing_agreed_gets_005_a_day() -> None:
    # 保障中小企业款项支付条例 art. 15: 万分之五 a day. 500000 x 0.05% x 45 = 11250.00
    result = late_payment_charge(
        {"provider_is_sme": True, "payer_is_public_or_large": True, "signed_on": "2024-03-01"},
        LATE_45,
    )

    assert result.amount == Decimal("11250.00")
    assert result.rule.key == "engagement.rule.sme_default"


def test_an_sme_agreed_rate_below_the_lpr_at_signing_is_raised_to_it() -> None:
    # Agreed 2% a year: 500000 x 2% x 45/365 = 450000/365 = 1232.88.
    # Floor: LPR on the signing date 2024-03-01 = 3.45%: 500000 x 3.45% x 45/365
    # = 776250/365 = 2126.7123 -> 2126.71, which applies.
    terms = {
        "agreed": {
            "breach_type": "late_payment",
            "basis": "late_amount_percent",
            "rate": "2",
            "period": "per_annum",
        },
        "provider_is_sme": True,
        "payer_is_public_or_large": True,
        "signed_on": "2024-03-01",
    }
    result = late_payment_charge(terms, LATE_45)

    assert result.amount == Decimal("2126.71")
    assert result.rule.key == "engagement.rule.sme_floor"
    (warning,) = result.warnings
    assert warning.key == "engagement.warn.sme_floor"
    assert warning.params["agreed"] == Decimal("1232.88")

    # An agreed 0.05% a day is far above the floor and stands.
    terms["agreed"] = DAILY_005
    kept = late_payment_charge(terms, LATE_45)
    assert kept.amount == Decimal("11250.00")
    assert kept.notes[-1].key == "engagement.note.sme_floor_met"


def test_the_sme_regulation_does_not_apply_between_two_smes() -> None:
    result = late_payment_charge({"provider_is_sme": True}, LATE_45)

    assert result.amount == Decimal("2684.59")  # the LPR fallback
    assert [n.key for n in result.notes] == ["engagement.note.sme_not_applicable"]


def test_a_breach_before_the_lpr_reform_needs_an_agreed_rate() -> None:
    early = dict(LATE_45, due="2019-08-18", performed_on="2019-09-30")

    with pytest.raises(InvalidBreach) as caught:
        late_payment_charge({}, early)
    assert caught.value.key == "engagement.late.before_lpr"
    # From 2019-08-20 on it works: due 19 Aug, late from 20 Aug (4.25%) to 30 Sep, 42 days:
    # 500000 x 4.25% x 1.3 x 42/365 = 1160250/365 = 3178.767 -> 3178.77
    ok = late_payment_charge({}, dict(early, due="2019-08-19"))
    assert ok.amount == Decimal("3178.77")


def test_days_after_the_lpr_table_use_its_last_rate_and_say_so() -> None:
    # Due 2026-06-30, paid 2026-07-10: 10 days at 3.00% x 1.3 = 3.9%:
    # 500000 x 3.9% x 10/365 = 195000/365 = 534.2466 -> 534.25
    result = late_payment_charge({}, dict(LATE_45, due="2026-06-30", performed_on="2026-07-10"))

    assert result.amount == Decimal("534.25")
    assert [n.key for n in result.notes] == ["engagement.note.lpr_carried_forward"]
    assert "2025-10-20" in result.notes[0].render("en")


def test_partial_payments_reduce_the_base_day_by_day() -> None:
    # 100000 due Thu 2026-03-12 (10 days after signing Mon 2 March); 40000 paid 22 March,
    # 60000 paid 11 April. Overdue: 100000 for 10 days, then 60000 for 20 days.
    # 0.05% a day: 100000 x 0.05% x 10 = 500.00; 60000 x 0.05% x 20 = 600.00; total 1100.00
    schedule = build_schedule(
        {
            "fee": "100000",
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
    )
    status = apply_payments(
        schedule,
        [
            {"paid_on": "2026-03-22", "amount": "40000"},
            {"paid_on": "2026-04-11", "amount": "60000"},
        ],
        {"signed_on": "2026-03-02"},
        as_of=D(2026, 4, 30),
    ).status("all")
    breach = {
        "breach_type": "late_payment",
        "contract_fee": "100000",
        "due": status.due.date,
        "overdue": list(status.overdue_segments),
    }

    result = late_payment_charge({"agreed": DAILY_005}, breach)
    assert [(line.days, line.base, line.amount) for line in result.lines] == [
        (10, Decimal("100000.00"), Decimal("500.00")),
        (20, Decimal("60000.00"), Decimal("600.00")),
    ]
    assert result.amount == Decimal("1100.00")


# 300 000 CNY fee; late delivery charged 0.1% of the fee per calendar day after 5 days of
# grace, capped at 5% of the fee (15000).
LATE_DELIVERY = {
    "code": "5.1-delivery",
    "breach_type": "late_delivery",
    "basis": "contract_fee_percent",
    "rate": "0.1",
    "period": "per_calendar_day",
    "grace_days": 5,
    "cap": {"fee_percent": "5"},
}


def delivery(delivered: str) -> dict:
    return {
        "breach_type": "late_delivery",
        "contract_fee": "300000",
        "due": "2026-03-10",
        "performed_on": delivered,
    }


def test_a_delivery_within_the_grace_period_costs_nothing() -> None:
    # 15 March is 5 days after 10 March: all grace.
    result = compute(LATE_DELIVERY, delivery("2026-03-15"))

    assert (result.amount, result.late_days, result.chargeable_days) == (Decimal("0"), 5, 0)
    assert compute(LATE_DELIVERY, delivery("2026-03-16")).amount == Decimal("300.00")


def test_a_late_delivery_after_the_grace_period_and_under_the_cap() -> None:
    # 11 March - 30 April: 21 + 30 = 51 days late, 46 after the grace:
    # 300000 x 0.1% x 46 = 13800.00 (cap 15000 not reached)
    result = compute(LATE_DELIVERY, delivery("2026-04-30"))

    assert (result.late_days, result.chargeable_days) == (51, 46)
    assert (result.amount, result.capped) == (Decimal("13800.00"), False)
    (line,) = result.lines
    assert (line.first, line.last) == (D(2026, 3, 16), D(2026, 4, 30))


def test_a_late_delivery_is_capped() -> None:
    # 11 March - 20 May: 71 days late, 66 charged: 300000 x 0.1% x 66 = 19800 > 15000.
    result = compute(LATE_DELIVERY, delivery("2026-05-20"))

    assert (result.uncapped, result.amount, result.capped) == (
        Decimal("19800.00"),
        Decimal("15000.00"),
        True,
    )
    assert "engagement.note.capped" in [n.key for n in result.notes]


def test_a_rate_per_working_day_skips_holidays_and_counts_make_up_days() -> None:
    # Deliverable worth 50000, 0.2% per working day. Due Fri 2025-09-26, delivered Fri 10 Oct:
    # working days after the due date: Sun 28 Sep (调休), Mon 29, Tue 30, Thu 9 Oct, Fri 10
    # = 5 -> 50000 x 0.2% x 5 = 500.00. With 2 working days of grace (to Mon 29 Sep): 3 days,
    # 300.00.
    clause = {
        "breach_type": "late_delivery",
        "basis": "deliverable_value_percent",
        "rate": "0.2",
        "period": "per_working_day",
    }
    breach = {
        "breach_type": "late_delivery",
        "contract_fee": "300000",
        "deliverable_value": "50000",
        "due": "2025-09-26",
        "performed_on": "2025-10-10",
    }

    assert compute(clause, breach).amount == Decimal("500.00")
    graced = compute(dict(clause, grace_days=2), breach)
    assert (graced.amount, graced.chargeable_days, graced.late_days) == (Decimal("300.00"), 3, 14)


def test_a_penalty_above_1_3_times_the_estimated_loss_is_warned_not_reduced() -> None:
    # Results below standard: 10% of the 300000 fee, once = 30000. Estimated loss 20000:
    # 30000 / 20000 = 1.5 > 1.3 -> warning, amount unchanged.
    clause = {
        "breach_type": "below_standard",
        "basis": "contract_fee_percent",
        "rate": "10",
    }
    breach = {"breach_type": "below_standard", "contract_fee": "300000", "estimated_loss": "20000"}

    result = compute(clause, breach)
    assert result.amount == Decimal("30000.00")
    (warning,) = result.warnings
    assert (warning.key, warning.params["ratio"]) == (
        "engagement.warn.penalty_excessive",
        Decimal("1.50"),
    )
    assert "585" in warning.render("en")
    assert "第五百八十五条" in warning.render("zh-CN")
    # A loss of 25000 (x 1.3 = 32500 >= 30000): no warning.
    assert compute(clause, dict(breach, estimated_loss="25000")).warnings == ()
    # The warning uses the figure in statutory.yaml.
    assert compute(clause, breach).warnings[0].params["threshold"] == Decimal("1.3")


def test_a_fixed_amount_for_the_clients_lack_of_cooperation() -> None:
    clause = {"breach_type": "client_no_cooperation", "basis": "fixed_amount", "rate": "5000"}
    result = compute(clause, {"breach_type": "client_no_cooperation", "contract_fee": "300000"})

    assert result.amount == Decimal("5000.00")
    assert result.rule.render("en") == "5000 CNY (a fixed amount), charged once"


def test_a_clause_and_a_breach_that_do_not_match_are_refused() -> None:
    with pytest.raises(InvalidBreach) as caught:
        compute(LATE_DELIVERY, {"breach_type": "below_standard", "contract_fee": "300000"})

    assert {(e.loc, e.key) for e in caught.value.errors} == {
        ("breach.breach_type", "engagement.penalty.wrong_breach"),
        ("breach.due", "engagement.penalty.due_needed"),
        ("breach.as_of", "engagement.penalty.end_needed"),
    }


def test_the_lpr_table_holds_the_published_changes_in_order() -> None:
    table = default_lpr_table()
    changes = [(e.date, e.rate) for e in table.entries]

    assert changes[0] == (D(2019, 8, 20), Decimal("4.25"))
    assert (D(2020, 4, 20), Decimal("3.85")) in changes
    assert (D(2024, 10, 21), Decimal("3.10")) in changes
    assert changes == sorted(changes)
    assert table.entry_on(D(2024, 10, 20)).rate == Decimal("3.35")
    assert table.entry_on(D(2024, 10, 21)).rate == Decimal("3.10")
    assert table.entry_on(D(2022, 8, 21)).rate == Decimal("3.70")


def test_a_user_lpr_table_out_of_order_names_the_line() -> None:
    text = (
        "version: x\n"
        "source: test\n"
        "confirmed_through: 2020-01-01\n"
        "entries:\n"
        "  - {date: 2019-09-20, rate: '4.20'}\n"
        "  - {date: 2019-08-20, rate: '4.25'}\n"
    )
    with pytest.raises(DataFileError) as caught:
        load_lpr_table(text=text)

    (error,) = caught.value.errors
    assert (error.loc, error.key, error.line) == ("entries[1].date", "engagement.lpr.order", 6)


def test_statutory_figures_are_checked_when_loaded() -> None:
    rules = load_rules()
    assert rules.late_payment.lpr_fallback.applies_from == D(2019, 8, 20)
    assert rules.late_payment.sme.default_daily_rate == Decimal("0.05")

    from importlib import resources

    text = resources.files("memberlab.engagement").joinpath("statutory.yaml").read_text("utf-8")
    with pytest.raises(DataFileError) as caught:
        load_rules(text=text.replace('factor_default: "1.3"', 'factor_default: "1.6"'))
    assert caught.value.errors[0].key == "engagement.late.factor_range"


def test_a_once_charged_penalty_for_lateness_needs_lateness() -> None:
    # 5% of the fee once for late delivery: delivered on the due date -> nothing; a day late
    # -> 300000 x 5% = 15000.00.
    clause = {"breach_type": "late_delivery", "basis": "contract_fee_percent", "rate": "5"}

    on_time = compute(clause, delivery("2026-03-10"))
    assert on_time.amount == 0
    assert [n.key for n in on_time.notes] == ["engagement.note.not_late"]
    assert compute(clause, delivery("2026-03-11")).amount == Decimal("15000.00")


def test_dates_out_of_order_are_refused() -> None:
    with pytest.raises(InvalidBreach) as caught:
        compute(LATE_DELIVERY, dict(delivery("2026-04-30"), as_of="2026-04-01"))
    assert [(e.loc, e.key) for e in caught.value.errors] == [
        ("breach.performed_on", "engagement.penalty.after_as_of")
    ]

    segment = {"first": "2024-09-30", "last": "2024-10-10", "amount": "1000"}
    with pytest.raises(InvalidBreach) as caught:
        late_payment_charge({}, dict(LATE_45, overdue=[segment]))
    assert [(e.loc, e.key) for e in caught.value.errors] == [
        ("breach.overdue[0]", "engagement.penalty.segment_dates")
    ]
