"""Penalties (违约金) and late-payment charges, as configurable data.

A :class:`PenaltyClause` is what the contract says for one kind of breach: the founding
contract names four (乙方 late delivery, results below the agreed standard, 甲方 late payment,
甲方 not cooperating) and a penalty of "服务费用的__%". A clause has a basis (a fixed amount,
a percentage of the contract fee, of the late amount, or of the affected deliverable's
value), a rate charged once or per day (calendar day, working day, or per annum accruing
daily), an optional cap (an amount and/or a percentage of the fee) and a grace period.
:func:`compute` applies a clause to a :class:`Breach` and returns the amount with a
line-by-line breakdown.

Late payment (:func:`late_payment_charge`) uses the agreed clause when there is one.
With none, the statutory fallback:

- **LPR x factor.** 最高人民法院关于审理买卖合同纠纷案件适用法律问题的解释 (法释〔2012〕8号 as
  amended by 法释〔2020〕17号) art. 18 para. 4: where no late-payment penalty was agreed, the
  loss for a breach on or after 2019-08-20 may be computed on the one-year LPR "at the time the
  breach occurred" plus 30-50 %; service contracts apply it by reference (Civil Code art. 646).
  The factor is a parameter in [1.3, 1.5], default 1.3 (the floor of the range, what courts
  award unless the creditor shows more). It is that interpretation, not the private-lending
  rules (民间借贷规定, whose 4x LPR is an interest ceiling), that sets this fallback.
- **Which LPR.** ``lpr_basis="breach_date"`` (the default, following the text) uses the LPR in
  force on the first day of delay for the whole period. ``lpr_basis="daily"`` uses, for each
  day, the LPR in force on that day, so a period across an LPR change is split at the change;
  some courts compute that way ("同期LPR"). Both accrue daily.
- **Day count.** Interest at an annual rate accrues ``rate / day_count`` a day. Chinese courts
  mostly divide by 365 (some by 360, after the PBOC's old rule for bank interest); the default
  is 365 and ``day_count`` takes 360.
- **SME provider** (保障中小企业款项支付条例, 国务院令第728号 art. 15, kept in the 2025 revision,
  国务院令第802号): when 机关、事业单位 or a 大型企业 pays a small or medium-sized enterprise
  late, an agreed rate may not be below the one-year LPR on the day the contract was signed
  (the issue's "at least the LPR at signing": a floor under the agreed rate), and where no rate
  was agreed the interest is 0.05 % a day (万分之五). The regulation binds only those payers;
  an SME paid late by another SME falls under the general rules, with a note.

Penalties are never reduced here. When one exceeds the estimated loss by more than 30 %
(Civil Code art. 585 para. 2; 法释〔2023〕13号 art. 65 para. 2: a court "may generally find"
it excessive), the result carries a warning and the amount unchanged.

Money is exact: each breakdown line is rounded half up to the fen, and the total is the sum
of the lines (then capped). All the figures above live in ``statutory.yaml`` and
``lpr.yaml``, dated and with their sources.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from itertools import groupby
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.validation import field_errors
from memberlab.engagement._datafile import DataFileError, parse_data_file, problem
from memberlab.engagement.calendar import WorkingCalendar, default_calendar
from memberlab.engagement.instalments import OverdueSegment, quantum
from memberlab.engagement.messages import Message, msg

__all__ = [
    "Basis",
    "Breach",
    "BreachType",
    "BreakdownLine",
    "Cap",
    "InvalidBreach",
    "LatePaymentTerms",
    "LprEntry",
    "LprTable",
    "PenaltyClause",
    "PenaltyResult",
    "RatePeriod",
    "StatutoryRules",
    "compute",
    "default_lpr_table",
    "default_rules",
    "late_payment_charge",
    "load_lpr_table",
    "load_rules",
]


class InvalidBreach(InvalidInput):
    key = "engagement.penalty.invalid"


class BreachType(StrEnum):
    LATE_DELIVERY = "late_delivery"
    BELOW_STANDARD = "below_standard"
    LATE_PAYMENT = "late_payment"
    CLIENT_NO_COOPERATION = "client_no_cooperation"


class Basis(StrEnum):
    FIXED_AMOUNT = "fixed_amount"
    CONTRACT_FEE_PERCENT = "contract_fee_percent"
    LATE_AMOUNT_PERCENT = "late_amount_percent"
    DELIVERABLE_VALUE_PERCENT = "deliverable_value_percent"


class RatePeriod(StrEnum):
    ONCE = "once"
    PER_CALENDAR_DAY = "per_calendar_day"
    PER_WORKING_DAY = "per_working_day"
    PER_ANNUM = "per_annum"  # an annual rate accruing daily: base x rate x days / day_count


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cap(_Strict):
    """The most a clause can charge: an amount, a percentage of the fee, or the lower of both."""

    amount: Decimal | None = Field(default=None, ge=0)
    fee_percent: Decimal | None = Field(default=None, ge=0)


class PenaltyClause(_Strict):
    """One penalty clause. ``rate`` is the amount itself for ``fixed_amount`` and a percentage
    for every other basis (``0.05`` with ``per_calendar_day`` is 万分之五 a day).

    ``grace_days`` are the first days after the due date that are not charged: calendar days,
    or working days when the rate is per working day. A breach wholly inside the grace period
    costs nothing, even for a rate charged once.
    """

    code: str = ""
    breach_type: BreachType
    basis: Basis
    rate: Decimal = Field(ge=0)
    period: RatePeriod = RatePeriod.ONCE
    day_count: Literal[360, 365] = 365
    cap: Cap | None = None
    grace_days: int = Field(default=0, ge=0)
    source: str | None = None


class Breach(_Strict):
    """The facts of one breach.

    ``due`` is when performance (delivery, payment, cooperation) was due; ``performed_on``
    when it happened, or None while it has not, in which case the breach runs to ``as_of``.
    For late payment, ``overdue`` (from :class:`~memberlab.engagement.instalments.
    InstalmentStatus`) gives the overdue balance day by day, partial payments included;
    without it, ``late_amount`` was overdue for the whole period.
    """

    breach_type: BreachType
    contract_fee: Decimal = Field(gt=0)
    currency: str = "CNY"
    due: dt.date | None = None
    performed_on: dt.date | None = None
    as_of: dt.date | None = None
    late_amount: Decimal | None = Field(default=None, gt=0)
    overdue: list[OverdueSegment] = []
    deliverable_value: Decimal | None = Field(default=None, gt=0)
    estimated_loss: Decimal | None = Field(default=None, gt=0)


class BreakdownLine(BaseModel):
    """One line of a computation: ``base`` x ``rate`` over ``days`` (when it is per day)."""

    model_config = ConfigDict(frozen=True)

    label: Message
    first: dt.date | None = None
    last: dt.date | None = None
    days: int | None = None
    base: Decimal | None = None
    rate: Decimal | None = None
    amount: Decimal


class PenaltyResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: str
    rule: Message
    uncapped: Decimal
    capped: bool = False
    late_days: int = 0
    chargeable_days: int = 0
    lines: tuple[BreakdownLine, ...] = ()
    warnings: tuple[Message, ...] = ()
    notes: tuple[Message, ...] = ()


# --- dated data: LPR table and statutory figures ----------------------------------------------


class LprEntry(_Strict):
    date: dt.date
    rate: Decimal = Field(gt=0, lt=100)


class LprTable(_Strict):
    """The one-year LPR by the date each value took effect (see ``lpr.yaml``)."""

    name: str = "cn-lpr-1y"
    version: str
    source: str
    tenor: str = "1Y"
    confirmed_through: dt.date
    entries: list[LprEntry] = Field(min_length=1)

    def entry_on(self, day: dt.date) -> LprEntry:
        """The fixing in force on ``day``: the last one published on or before it."""
        found = None
        for entry in self.entries:
            if entry.date > day:
                break
            found = entry
        if found is None:
            raise InvalidInput(
                "engagement.lpr.before_table",
                date=day.isoformat(),
                first=self.entries[0].date.isoformat(),
            )
        return found

    def carried_forward(self, day: dt.date) -> bool:
        return day > self.confirmed_through


class LprFallbackRule(_Strict):
    applies_from: dt.date
    factor_min: Decimal
    factor_max: Decimal
    factor_default: Decimal
    source: str


class SmeRule(_Strict):
    applies_from: dt.date
    default_daily_rate: Decimal
    source: str


class LatePaymentRules(_Strict):
    lpr_fallback: LprFallbackRule
    sme: SmeRule
    day_count_default: Literal[360, 365] = 365


class PenaltyExcessRule(_Strict):
    threshold: Decimal = Field(gt=1)
    source: str


class StatutoryRules(_Strict):
    version: str
    late_payment: LatePaymentRules
    penalty_excess: PenaltyExcessRule


def _read(name: str) -> str:
    return resources.files("memberlab.engagement").joinpath(name).read_text(encoding="utf-8")


def load_lpr_table(path: str | Path | None = None, *, text: str | None = None) -> LprTable:
    """The LPR table from ``lpr.yaml``, or from a user's file of the same form."""
    source = "lpr.yaml" if path is None else Path(path).name
    if text is None:
        text = _read("lpr.yaml") if path is None else Path(path).read_text(encoding="utf-8")
    table, node = parse_data_file(text, LprTable, source=source)
    errors = [
        problem(
            node,
            ("entries", i + 1, "date"),
            "engagement.lpr.order",
            date=later.date.isoformat(),
            previous=earlier.date.isoformat(),
        )
        for i, (earlier, later) in enumerate(zip(table.entries, table.entries[1:], strict=False))
        if later.date <= earlier.date
    ]
    if errors:
        raise DataFileError(file=source, errors=errors)
    return table


@lru_cache(maxsize=1)
def default_lpr_table() -> LprTable:
    return load_lpr_table()


def load_rules(path: str | Path | None = None, *, text: str | None = None) -> StatutoryRules:
    """The statutory figures from ``statutory.yaml``, or from a user's file of the same form."""
    source = "statutory.yaml" if path is None else Path(path).name
    if text is None:
        text = _read("statutory.yaml") if path is None else Path(path).read_text(encoding="utf-8")
    rules, node = parse_data_file(text, StatutoryRules, source=source)
    fallback = rules.late_payment.lpr_fallback
    if not fallback.factor_min <= fallback.factor_default <= fallback.factor_max:
        raise DataFileError(
            file=source,
            errors=[
                problem(
                    node,
                    ("late_payment", "lpr_fallback", "factor_default"),
                    "engagement.late.factor_range",
                    value=fallback.factor_default,
                    low=fallback.factor_min,
                    high=fallback.factor_max,
                )
            ],
        )
    return rules


@lru_cache(maxsize=1)
def default_rules() -> StatutoryRules:
    return load_rules()


# --- computing --------------------------------------------------------------------------------


def _round(value: Decimal, currency: str) -> Decimal:
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    for offset in range((last - first).days + 1):
        yield first + dt.timedelta(days=offset)


def _validated(model: type[BaseModel], value: Any, prefix: str) -> Any:
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors = field_errors(exc.errors(), model=model)
        raise InvalidBreach(
            errors=[
                FieldError(f"{prefix}.{e.loc}" if e.loc else prefix, e.key, e.params)
                for e in errors
            ]
        ) from None


def _end(breach: Breach) -> dt.date | None:
    if breach.performed_on is not None:
        return breach.performed_on
    if breach.overdue:
        return max(segment.last for segment in breach.overdue)
    return breach.as_of


def _check_breach(clause: PenaltyClause, breach: Breach) -> None:
    errors: list[FieldError] = []
    if clause.breach_type != breach.breach_type:
        errors.append(
            FieldError(
                "breach.breach_type",
                "engagement.penalty.wrong_breach",
                {"value": breach.breach_type.value, "expected": clause.breach_type.value},
            )
        )
    if (
        clause.basis is Basis.LATE_AMOUNT_PERCENT
        and breach.late_amount is None
        and not breach.overdue
    ):
        errors.append(FieldError("breach.late_amount", "engagement.penalty.base_needed", {}))
    if clause.basis is Basis.DELIVERABLE_VALUE_PERCENT and breach.deliverable_value is None:
        errors.append(FieldError("breach.deliverable_value", "engagement.penalty.base_needed", {}))
    per_day = clause.period is not RatePeriod.ONCE
    if (per_day or breach.overdue) and breach.due is None:
        errors.append(FieldError("breach.due", "engagement.penalty.due_needed", {}))
    errors.extend(_date_errors(breach, end_needed=per_day or breach.due is not None))
    if errors:
        raise InvalidBreach(errors=errors)


def _date_errors(breach: Breach, *, end_needed: bool) -> list[FieldError]:
    """Dates out of order, or missing where the breach is measured in days."""
    errors: list[FieldError] = []
    if end_needed and _end(breach) is None:
        errors.append(FieldError("breach.as_of", "engagement.penalty.end_needed", {}))
    if breach.performed_on and breach.as_of and breach.performed_on > breach.as_of:
        errors.append(
            FieldError(
                "breach.performed_on",
                "engagement.penalty.after_as_of",
                {"value": breach.performed_on.isoformat(), "as_of": breach.as_of.isoformat()},
            )
        )
    if breach.due is not None:
        for i, segment in enumerate(breach.overdue):
            if segment.first <= breach.due or segment.last < segment.first:
                errors.append(
                    FieldError(
                        f"breach.overdue[{i}]",
                        "engagement.penalty.segment_dates",
                        {
                            "first": segment.first.isoformat(),
                            "last": segment.last.isoformat(),
                            "due": breach.due.isoformat(),
                        },
                    )
                )
    return errors


def _base_on(clause: PenaltyClause, breach: Breach) -> Callable[[dt.date], Decimal]:
    """The amount the rate applies to, day by day."""
    if clause.basis is Basis.CONTRACT_FEE_PERCENT:
        return lambda _day: breach.contract_fee
    if clause.basis is Basis.DELIVERABLE_VALUE_PERCENT:
        return lambda _day: breach.deliverable_value or Decimal(0)  # required, checked
    if clause.basis is Basis.LATE_AMOUNT_PERCENT:
        if breach.overdue:
            return lambda day: _segment_amount(breach.overdue, day)
        return lambda _day: breach.late_amount or Decimal(0)  # required, checked
    return lambda _day: Decimal(1)  # fixed amount: the rate is the amount


def _once_base(clause: PenaltyClause, breach: Breach) -> Decimal:
    """The base of a rate charged once; for a late amount paid in parts, the largest balance."""
    if clause.basis is Basis.LATE_AMOUNT_PERCENT and breach.late_amount is None:
        return max(segment.amount for segment in breach.overdue)
    return _base_on(clause, breach)(breach.due or dt.date.min)


def _segment_amount(segments: list[OverdueSegment], day: dt.date) -> Decimal:
    for segment in segments:
        if segment.first <= day <= segment.last:
            return segment.amount
    return Decimal(0)


def _late_days(breach: Breach) -> list[dt.date]:
    """Every day of delay: after ``due`` up to the end, or the days the overdue segments cover."""
    if breach.due is None:
        return []
    if breach.overdue:
        return sorted({d for s in breach.overdue for d in _days(s.first, s.last)})
    end = _end(breach)
    if end is None or end <= breach.due:
        return []
    return list(_days(breach.due + dt.timedelta(days=1), end))


def compute(
    clause: PenaltyClause | Mapping[str, Any],
    breach: Breach | Mapping[str, Any],
    *,
    calendar: WorkingCalendar | None = None,
    rules: StatutoryRules | None = None,
) -> PenaltyResult:
    """Apply ``clause`` to ``breach``: the amount, its breakdown, notes and warnings."""
    clause = _validated(PenaltyClause, clause, "clause")
    breach = _validated(Breach, breach, "breach")
    _check_breach(clause, breach)
    calendar = calendar or default_calendar()
    rules = rules or default_rules()
    currency = breach.currency
    notes: list[Message] = []

    late = _late_days(breach)
    chargeable = _after_grace(clause, breach, late, calendar)
    if clause.period is RatePeriod.PER_WORKING_DAY:
        chargeable = [d for d in chargeable if calendar.is_working_day(d)]
        unpublished = sorted(
            {d.year for d in chargeable if not calendar.year_status(d.year).published}
        )
        if unpublished:
            notes.append(
                msg("engagement.note.penalty_provisional", years=[str(y) for y in unpublished])
            )
    if late and clause.grace_days:
        notes.append(msg("engagement.note.grace", days=clause.grace_days, unit=_grace_unit(clause)))

    base_on = _base_on(clause, breach)
    lines: list[BreakdownLine] = []
    rule = msg(
        f"engagement.rule.penalty.{clause.period.value}",
        basis=msg(f"engagement.basis.{clause.basis.value}"),
        rate=_rate_text(clause, currency),
    )
    if clause.period is RatePeriod.ONCE:
        if breach.due is not None and not late:
            notes.append(msg("engagement.note.not_late", due=breach.due.isoformat()))
        elif late and not chargeable:
            notes.append(msg("engagement.note.within_grace"))
        else:
            lines.append(_line(clause, _once_base(clause, breach), None, None, None, currency))
    else:
        for base, run in _runs(chargeable, base_on):
            lines.append(_line(clause, base, run[0], run[-1], len(run), currency))

    uncapped = sum((line.amount for line in lines), Decimal(0))
    amount, capped = _apply_cap(clause, breach, uncapped, currency)
    if capped:
        notes.append(
            msg("engagement.note.capped", uncapped=uncapped, cap=amount, currency=currency)
        )
    return PenaltyResult(
        amount=amount,
        currency=currency,
        rule=rule,
        uncapped=uncapped,
        capped=capped,
        late_days=len(late),
        chargeable_days=len(chargeable),
        lines=tuple(lines),
        warnings=tuple(_excess_warning(amount, breach, rules)),
        notes=tuple(notes),
    )


def _rate_text(clause: PenaltyClause, currency: str) -> str:
    if clause.basis is Basis.FIXED_AMOUNT:
        return f"{clause.rate} {currency}"
    return f"{clause.rate}%"


def _grace_unit(clause: PenaltyClause) -> Message:
    working = clause.period is RatePeriod.PER_WORKING_DAY
    return msg("engagement.unit.working_days" if working else "engagement.unit.calendar_days")


def _after_grace(
    clause: PenaltyClause, breach: Breach, late: list[dt.date], calendar: WorkingCalendar
) -> list[dt.date]:
    if not clause.grace_days or breach.due is None:
        return late
    if clause.period is RatePeriod.PER_WORKING_DAY:
        grace_end = calendar.add_working_days(breach.due, clause.grace_days).date
    else:
        grace_end = breach.due + dt.timedelta(days=clause.grace_days)
    return [d for d in late if d > grace_end]


def _runs(
    days: list[dt.date], base_on: Callable[[dt.date], Decimal]
) -> Iterator[tuple[Decimal, list[dt.date]]]:
    """Chargeable days grouped into runs with the same base, in date order.

    Per working day, a run passes over the rest days between its working days.
    """
    for base, group in groupby(days, key=base_on):
        yield base, list(group)


def _line(
    clause: PenaltyClause,
    base: Decimal,
    first: dt.date | None,
    last: dt.date | None,
    days: int | None,
    currency: str,
) -> BreakdownLine:
    count = Decimal(days or 1)
    if clause.basis is Basis.FIXED_AMOUNT:
        raw = clause.rate * count
        shown_base = None
    elif clause.period is RatePeriod.PER_ANNUM:
        raw = base * clause.rate / 100 * count / clause.day_count
        shown_base = base
    else:
        raw = base * clause.rate / 100 * count
        shown_base = base
    label = msg(
        "engagement.line.days" if days else "engagement.line.once",
        days=days or 0,
        first=first.isoformat() if first else "",
        last=last.isoformat() if last else "",
    )
    return BreakdownLine(
        label=label,
        first=first,
        last=last,
        days=days,
        base=shown_base,
        rate=clause.rate,
        amount=_round(raw, currency),
    )


def _apply_cap(
    clause: PenaltyClause, breach: Breach, amount: Decimal, currency: str
) -> tuple[Decimal, bool]:
    if clause.cap is None:
        return amount, False
    limits = []
    if clause.cap.amount is not None:
        limits.append(clause.cap.amount)
    if clause.cap.fee_percent is not None:
        limits.append(_round(breach.contract_fee * clause.cap.fee_percent / 100, currency))
    if limits and amount > min(limits):
        return min(limits), True
    return amount, False


def _excess_warning(amount: Decimal, breach: Breach, rules: StatutoryRules) -> list[Message]:
    loss = breach.estimated_loss
    threshold = rules.penalty_excess.threshold
    if loss is None or amount <= loss * threshold:
        return []
    return [
        msg(
            "engagement.warn.penalty_excessive",
            amount=amount,
            loss=loss,
            ratio=(amount / loss).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
            threshold=threshold,
            currency=breach.currency,
        )
    ]


# --- late payment -----------------------------------------------------------------------------


class LatePaymentTerms(_Strict):
    """What governs a late payment: the agreed clause if any, and the facts the statutory
    fallback needs. ``lpr_factor`` must lie in the range of ``statutory.yaml`` ([1.3, 1.5])."""

    agreed: PenaltyClause | None = None
    lpr_factor: Decimal | None = None
    lpr_basis: Literal["breach_date", "daily"] = "breach_date"
    day_count: Literal[360, 365] | None = None
    provider_is_sme: bool = False
    payer_is_public_or_large: bool = False
    signed_on: dt.date | None = None


def late_payment_charge(
    terms: LatePaymentTerms | Mapping[str, Any],
    breach: Breach | Mapping[str, Any],
    *,
    lpr: LprTable | None = None,
    rules: StatutoryRules | None = None,
    calendar: WorkingCalendar | None = None,
) -> PenaltyResult:
    """The charge for a late payment: agreed, SME regulation, or LPR x factor (see module)."""
    terms = _validated(LatePaymentTerms, terms, "terms")
    breach = _validated(Breach, breach, "breach")
    rules = rules or default_rules()
    lpr = lpr or default_lpr_table()
    statute = rules.late_payment
    factor = (
        terms.lpr_factor if terms.lpr_factor is not None else statute.lpr_fallback.factor_default
    )
    day_count = terms.day_count or statute.day_count_default
    errors: list[FieldError] = []
    if breach.breach_type is not BreachType.LATE_PAYMENT:
        errors.append(
            FieldError(
                "breach.breach_type",
                "engagement.penalty.wrong_breach",
                {"value": breach.breach_type.value, "expected": BreachType.LATE_PAYMENT.value},
            )
        )
    if not statute.lpr_fallback.factor_min <= factor <= statute.lpr_fallback.factor_max:
        errors.append(
            FieldError(
                "terms.lpr_factor",
                "engagement.late.factor_range",
                {
                    "value": factor,
                    "low": statute.lpr_fallback.factor_min,
                    "high": statute.lpr_fallback.factor_max,
                },
            )
        )
    if breach.due is None:
        errors.append(FieldError("breach.due", "engagement.penalty.due_needed", {}))
    if breach.late_amount is None and not breach.overdue:
        errors.append(FieldError("breach.late_amount", "engagement.penalty.base_needed", {}))
    errors.extend(_date_errors(breach, end_needed=True))
    if errors:
        raise InvalidBreach(errors=errors)
    assert breach.due is not None

    notes: list[Message] = []
    first_day = breach.due + dt.timedelta(days=1)
    sme = (
        terms.provider_is_sme
        and terms.payer_is_public_or_large
        and first_day >= statute.sme.applies_from
    )
    if terms.provider_is_sme and not sme:
        notes.append(msg("engagement.note.sme_not_applicable"))
    if sme and terms.signed_on is None:
        raise InvalidBreach(
            errors=[FieldError("terms.signed_on", "engagement.late.signed_on_needed", {})]
        )

    if terms.agreed is not None:
        agreed = terms.agreed.model_copy(update={"breach_type": BreachType.LATE_PAYMENT})
        result = compute(agreed, breach, calendar=calendar, rules=rules)
        if not sme:
            return result.model_copy(update={"notes": (*result.notes, *notes)})
        assert terms.signed_on is not None
        floor_entry = lpr.entry_on(terms.signed_on)
        floor = _interest(
            breach, lambda _day: floor_entry.rate, Decimal(1), day_count, lpr, carry_notes=False
        )
        floor_amount = sum((line.amount for line in floor), Decimal(0))
        if result.amount >= floor_amount:
            notes.append(
                msg(
                    "engagement.note.sme_floor_met",
                    rate=floor_entry.rate,
                    date=terms.signed_on.isoformat(),
                )
            )
            return result.model_copy(update={"notes": (*result.notes, *notes)})
        warning = msg(
            "engagement.warn.sme_floor",
            agreed=result.amount,
            floor=floor_amount,
            rate=floor_entry.rate,
            date=terms.signed_on.isoformat(),
            currency=breach.currency,
        )
        return _result(
            breach,
            floor,
            msg(
                "engagement.rule.sme_floor",
                rate=floor_entry.rate,
                date=terms.signed_on.isoformat(),
                day_count=day_count,
            ),
            rules,
            notes,
            extra_warnings=[warning],
        )

    if sme:
        daily = statute.sme.default_daily_rate
        lines = [
            BreakdownLine(
                label=msg(
                    "engagement.line.days",
                    days=s.days,
                    first=s.first.isoformat(),
                    last=s.last.isoformat(),
                ),
                first=s.first,
                last=s.last,
                days=s.days,
                base=s.amount,
                rate=daily,
                amount=_round(s.amount * daily / 100 * s.days, breach.currency),
            )
            for s in _segments(breach)
        ]
        return _result(breach, lines, msg("engagement.rule.sme_default", rate=daily), rules, notes)

    if first_day < statute.lpr_fallback.applies_from:
        raise InvalidBreach(
            "engagement.late.before_lpr",
            date=first_day.isoformat(),
            since=statute.lpr_fallback.applies_from.isoformat(),
        )
    if terms.lpr_basis == "breach_date":
        at_breach = lpr.entry_on(first_day)

        def rate_on(_day: dt.date) -> Decimal:
            return at_breach.rate

        rule = msg(
            "engagement.rule.lpr_breach_date",
            rate=at_breach.rate,
            date=at_breach.date.isoformat(),
            factor=factor,
            day_count=day_count,
        )
        if lpr.carried_forward(first_day):
            notes.append(
                msg(
                    "engagement.note.lpr_carried_forward",
                    rate=at_breach.rate,
                    confirmed=lpr.confirmed_through.isoformat(),
                    version=lpr.version,
                )
            )
        lines = _interest(breach, rate_on, factor, day_count, lpr, carry_notes=False)
    else:

        def rate_on(day: dt.date) -> Decimal:
            return lpr.entry_on(day).rate

        rule = msg("engagement.rule.lpr_daily", factor=factor, day_count=day_count)
        lines = _interest(breach, rate_on, factor, day_count, lpr, carry_notes=True, notes=notes)
    return _result(breach, lines, rule, rules, notes)


def _segments(breach: Breach) -> list[OverdueSegment]:
    if breach.overdue:
        return list(breach.overdue)
    assert breach.due is not None
    assert breach.late_amount is not None
    end = _end(breach)
    if end is None or end <= breach.due:
        return []
    return [
        OverdueSegment(first=breach.due + dt.timedelta(days=1), last=end, amount=breach.late_amount)
    ]


def _interest(
    breach: Breach,
    rate_on: Callable[[dt.date], Decimal],
    factor: Decimal,
    day_count: int,
    lpr: LprTable,
    *,
    carry_notes: bool,
    notes: list[Message] | None = None,
) -> list[BreakdownLine]:
    """Simple interest at an annual rate x factor, day by day, one line per run of days with
    the same balance and rate."""
    days = [(d, s.amount, rate_on(d)) for s in _segments(breach) for d in _days(s.first, s.last)]
    lines: list[BreakdownLine] = []
    carried: list[dt.date] = []
    for (amount, rate), group in groupby(days, key=lambda item: (item[1], item[2])):
        run = [d for d, _, _ in group]
        raw = amount * rate / 100 * factor * len(run) / day_count
        lines.append(
            BreakdownLine(
                label=msg(
                    "engagement.line.days",
                    days=len(run),
                    first=run[0].isoformat(),
                    last=run[-1].isoformat(),
                ),
                first=run[0],
                last=run[-1],
                days=len(run),
                base=amount,
                rate=rate * factor,
                amount=_round(raw, breach.currency),
            )
        )
        carried.extend(d for d in run if lpr.carried_forward(d))
    if carry_notes and carried and notes is not None:
        notes.append(
            msg(
                "engagement.note.lpr_carried_forward",
                rate=lpr.entries[-1].rate,
                confirmed=lpr.confirmed_through.isoformat(),
                version=lpr.version,
            )
        )
    return lines


def _result(
    breach: Breach,
    lines: list[BreakdownLine],
    rule: Message,
    rules: StatutoryRules,
    notes: list[Message],
    *,
    extra_warnings: list[Message] | None = None,
) -> PenaltyResult:
    amount = sum((line.amount for line in lines), Decimal(0))
    late = sum(line.days or 0 for line in lines)
    return PenaltyResult(
        amount=amount,
        currency=breach.currency,
        rule=rule,
        uncapped=amount,
        late_days=late,
        chargeable_days=late,
        lines=tuple(lines),
        warnings=(*(extra_warnings or []), *_excess_warning(amount, breach, rules)),
        notes=tuple(notes),
    )
