"""Payment schedules: a fee split into instalments, their due dates, payments and arrears.

A schedule is built from the fee, its currency and tax rate, and instalments each given as
a portion of the fee (a percentage) or an amount. Amounts are exact to the fen (the
currency's minor unit): every portion is rounded half up, and the last portion-based
instalment takes what rounding left over, so the instalments add up to the fee exactly.
Instalments that do not add up to the fee are refused.

Each instalment falls due on a trigger (``signing``, ``milestone_accepted`` of a milestone
code, a fixed ``date``, or the ``invoice`` for it) plus an offset in working days or calendar
days, computed on the working-day calendar (:mod:`memberlab.engagement.calendar`): the
founding contract's "合同签订后N个工作日内" is ``trigger=signing, offset=N,
offset_unit=working_days``. Until the trigger happens the due date is ``None``.

Payments are applied in date order, to the instalment they name or, when they name none,
to the earliest due. The status of each instalment gives what was paid, what is outstanding,
the day it was settled, the days overdue as of a date, and the overdue balance day by day
(:class:`OverdueSegment`), which late-payment charges are computed on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.money import minor_digits
from memberlab.core.validation import field_errors
from memberlab.engagement.calendar import ComputedDate, WorkingCalendar, default_calendar
from memberlab.engagement.messages import Message, msg

__all__ = [
    "AppliedPayment",
    "DayUnit",
    "Events",
    "Instalment",
    "InstalmentSpec",
    "InstalmentStatus",
    "InvalidPayments",
    "InvalidSchedule",
    "OverdueSegment",
    "Payment",
    "PaymentSchedule",
    "ScheduleSpec",
    "ScheduleStatus",
    "Trigger",
    "apply_payments",
    "build_schedule",
    "due_date",
    "quantum",
]


class InvalidSchedule(InvalidInput):
    key = "engagement.schedule.invalid"


class InvalidPayments(InvalidInput):
    key = "engagement.payments.invalid"


class Trigger(StrEnum):
    SIGNING = "signing"
    MILESTONE_ACCEPTED = "milestone_accepted"
    DATE = "date"
    INVOICE = "invoice"


class DayUnit(StrEnum):
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"


def quantum(currency: str) -> Decimal:
    """The smallest amount of ``currency``: ``Decimal("0.01")`` for CNY."""
    return Decimal(1).scaleb(-minor_digits(currency))


def _round(value: Decimal, currency: str) -> Decimal:
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def _too_precise(value: Decimal, currency: str) -> bool:
    return value != value.quantize(quantum(currency))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- specification ----------------------------------------------------------------------------


class InstalmentSpec(_Strict):
    """One instalment as the contract states it."""

    code: str = Field(min_length=1, max_length=64)
    portion: Decimal | None = Field(default=None, gt=0, le=100, description="percent of fee")
    amount: Decimal | None = Field(default=None, gt=0)
    trigger: Trigger
    milestone: str | None = None
    trigger_date: dt.date | None = None
    offset: int = Field(default=0, ge=0, le=3660)
    offset_unit: DayUnit = DayUnit.WORKING_DAYS


class ScheduleSpec(_Strict):
    """The fee and how it is paid. ``tax_rate`` is a percentage (6 for 6 % VAT)."""

    fee: Decimal = Field(gt=0)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    tax_rate: Decimal = Field(ge=0, le=100)
    tax_included: bool = True
    instalments: list[InstalmentSpec] = Field(min_length=1)


class Instalment(BaseModel):
    """An instalment with its exact amounts: ``amount`` is its share of the fee, ``tax`` the
    tax on it (inside ``amount`` when the fee includes tax), ``payable`` what the client pays.
    """

    model_config = ConfigDict(frozen=True)

    code: str
    trigger: Trigger
    milestone: str | None = None
    trigger_date: dt.date | None = None
    offset: int
    offset_unit: DayUnit
    portion: Decimal | None = None
    amount: Decimal
    tax: Decimal
    payable: Decimal


class PaymentSchedule(BaseModel):
    model_config = ConfigDict(frozen=True)

    fee: Decimal
    currency: str
    tax_rate: Decimal
    tax_included: bool
    total_tax: Decimal
    total_payable: Decimal
    instalments: tuple[Instalment, ...]

    def instalment(self, code: str) -> Instalment:
        for instalment in self.instalments:
            if instalment.code == code:
                return instalment
        raise InvalidInput(
            errors=[
                FieldError("instalment", "engagement.payments.unknown_instalment", {"value": code})
            ]
        )


def build_schedule(spec: ScheduleSpec | Mapping[str, Any]) -> PaymentSchedule:
    """Exact instalment amounts for ``spec``; ``InvalidSchedule`` lists every problem."""
    if not isinstance(spec, ScheduleSpec):
        try:
            spec = ScheduleSpec.model_validate(spec)
        except ValidationError as exc:
            raise InvalidSchedule(errors=field_errors(exc.errors(), model=ScheduleSpec)) from None
    errors = _check(spec)
    if errors:
        raise InvalidSchedule(errors=errors)
    currency = spec.currency
    amounts = [_share(spec.fee, item, currency) for item in spec.instalments]
    portion_rows = [i for i, item in enumerate(spec.instalments) if item.portion is not None]
    if portion_rows:
        absorber = portion_rows[-1]
        amounts[absorber] += spec.fee - sum(amounts, Decimal(0))

    rate = spec.tax_rate
    divisor = (100 + rate) if spec.tax_included else Decimal(100)
    total_tax = _round(spec.fee * rate / divisor, currency)
    taxes = [_round(amount * rate / divisor, currency) for amount in amounts]
    taxes[-1] = total_tax - sum(taxes[:-1], Decimal(0))

    instalments = tuple(
        Instalment(
            code=item.code,
            trigger=item.trigger,
            milestone=item.milestone,
            trigger_date=item.trigger_date,
            offset=item.offset,
            offset_unit=item.offset_unit,
            portion=item.portion,
            amount=amount,
            tax=tax,
            payable=amount if spec.tax_included else amount + tax,
        )
        for item, amount, tax in zip(spec.instalments, amounts, taxes, strict=True)
    )
    return PaymentSchedule(
        fee=spec.fee,
        currency=currency,
        tax_rate=rate,
        tax_included=spec.tax_included,
        total_tax=total_tax,
        total_payable=spec.fee if spec.tax_included else spec.fee + total_tax,
        instalments=instalments,
    )


def _share(fee: Decimal, item: InstalmentSpec, currency: str) -> Decimal:
    """An instalment's amount before the last one absorbs the rounding."""
    if item.amount is not None:
        return item.amount
    assert item.portion is not None  # one of the two, checked by _check
    return _round(fee * item.portion / 100, currency)


def _check(spec: ScheduleSpec) -> list[FieldError]:
    errors: list[FieldError] = []
    currency = spec.currency
    try:
        minor_digits(currency)
    except Exception:  # babel raises different errors for an unknown code
        return [FieldError("currency", "engagement.schedule.currency", {"value": currency})]
    if _too_precise(spec.fee, currency):
        errors.append(
            FieldError(
                "fee", "engagement.schedule.precision", {"value": spec.fee, "currency": currency}
            )
        )
    seen: set[str] = set()
    for i, item in enumerate(spec.instalments):
        at = f"instalments[{i}]"
        if item.code in seen:
            errors.append(
                FieldError(f"{at}.code", "engagement.schedule.duplicate_code", {"value": item.code})
            )
        seen.add(item.code)
        if (item.portion is None) == (item.amount is None):
            errors.append(FieldError(at, "engagement.schedule.portion_or_amount", {}))
        if item.amount is not None and _too_precise(item.amount, currency):
            errors.append(
                FieldError(
                    f"{at}.amount",
                    "engagement.schedule.precision",
                    {"value": item.amount, "currency": currency},
                )
            )
        if item.trigger is Trigger.MILESTONE_ACCEPTED and not item.milestone:
            errors.append(FieldError(f"{at}.milestone", "engagement.schedule.milestone_needed", {}))
        if item.trigger is not Trigger.MILESTONE_ACCEPTED and item.milestone:
            errors.append(
                FieldError(
                    f"{at}.milestone",
                    "engagement.schedule.milestone_unused",
                    {"trigger": item.trigger.value},
                )
            )
        if item.trigger is Trigger.DATE and item.trigger_date is None:
            errors.append(FieldError(f"{at}.trigger_date", "engagement.schedule.date_needed", {}))
        if item.trigger is not Trigger.DATE and item.trigger_date is not None:
            errors.append(
                FieldError(
                    f"{at}.trigger_date",
                    "engagement.schedule.date_unused",
                    {"trigger": item.trigger.value},
                )
            )
    if errors:
        return errors
    portions = sum(
        (item.portion for item in spec.instalments if item.portion is not None), Decimal(0)
    )
    amounts = sum((item.amount for item in spec.instalments if item.amount is not None), Decimal(0))
    total = spec.fee * portions / 100 + amounts
    if total != spec.fee:
        errors.append(
            FieldError(
                "instalments",
                "engagement.schedule.not_fee",
                {
                    "total": _round(total, currency),
                    "fee": spec.fee,
                    "portions": portions.normalize(),
                    "amounts": amounts,
                    "currency": currency,
                },
            )
        )
    return errors


# --- due dates ----------------------------------------------------------------------------------


class Events(_Strict):
    """What has happened on the engagement: signing, accepted milestones, invoices received
    (by instalment code)."""

    signed_on: dt.date | None = None
    milestones_accepted: dict[str, dt.date] = {}
    invoices: dict[str, dt.date] = {}


def _trigger_date(instalment: Instalment, events: Events) -> dt.date | None:
    match instalment.trigger:
        case Trigger.SIGNING:
            return events.signed_on
        case Trigger.MILESTONE_ACCEPTED:
            return events.milestones_accepted.get(instalment.milestone or "")
        case Trigger.DATE:
            return instalment.trigger_date
        case Trigger.INVOICE:
            return events.invoices.get(instalment.code)
    return None  # pragma: no cover - every trigger is matched above


def _trigger_note(instalment: Instalment, on: dt.date) -> Message:
    what = msg(
        f"engagement.trigger.{instalment.trigger.value}", milestone=instalment.milestone or ""
    )
    return msg("engagement.note.trigger", trigger=what, date=on.isoformat())


def due_date(
    instalment: Instalment, events: Events, calendar: WorkingCalendar | None = None
) -> ComputedDate | None:
    """When ``instalment`` falls due, or ``None`` while its trigger has not happened."""
    start = _trigger_date(instalment, events)
    if start is None:
        return None
    calendar = calendar or default_calendar()
    if instalment.offset_unit is DayUnit.WORKING_DAYS:
        computed = calendar.add_working_days(start, instalment.offset)
    else:
        computed = calendar.add_calendar_days(start, instalment.offset)
    return computed.model_copy(
        update={"notes": (_trigger_note(instalment, start), *computed.notes)}
    )


# --- payments -----------------------------------------------------------------------------------


class Payment(_Strict):
    """Money received. ``instalment`` names the instalment it pays; without it, the payment
    goes to the earliest due."""

    paid_on: dt.date
    amount: Decimal = Field(gt=0)
    instalment: str | None = None
    reference: str | None = None


class AppliedPayment(BaseModel):
    model_config = ConfigDict(frozen=True)

    paid_on: dt.date
    amount: Decimal
    reference: str | None = None


class OverdueSegment(BaseModel):
    """``amount`` was overdue on every day from ``first`` to ``last``, both included."""

    model_config = ConfigDict(frozen=True)

    first: dt.date
    last: dt.date
    amount: Decimal

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


State = Literal["awaiting_trigger", "not_due", "due", "overdue", "paid", "paid_late"]


class InstalmentStatus(BaseModel):
    """One instalment as of a date.

    ``days_overdue`` counts calendar days after the due date: up to ``as_of`` while money is
    outstanding, up to the day it was settled when it was paid late. The due date itself is
    not late; a payment made on day D covers D (interest runs up to and including the day of
    payment).
    """

    model_config = ConfigDict(frozen=True)

    code: str
    payable: Decimal
    paid: Decimal
    outstanding: Decimal
    overpaid: Decimal
    due: ComputedDate | None
    state: State
    settled_on: dt.date | None = None
    days_overdue: int = 0
    overdue_segments: tuple[OverdueSegment, ...] = ()
    payments: tuple[AppliedPayment, ...] = ()


class ScheduleStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    as_of: dt.date
    currency: str
    instalments: tuple[InstalmentStatus, ...]
    total_payable: Decimal
    total_paid: Decimal
    total_outstanding: Decimal
    unallocated: Decimal
    warnings: tuple[Message, ...] = ()

    @property
    def overdue(self) -> tuple[InstalmentStatus, ...]:
        """The instalments with money outstanding after their due date."""
        return tuple(s for s in self.instalments if s.state == "overdue")

    def status(self, code: str) -> InstalmentStatus:
        for status in self.instalments:
            if status.code == code:
                return status
        raise KeyError(code)


def apply_payments(
    schedule: PaymentSchedule,
    payments: Sequence[Payment | Mapping[str, Any]],
    events: Events | Mapping[str, Any],
    *,
    as_of: dt.date,
    calendar: WorkingCalendar | None = None,
) -> ScheduleStatus:
    """Apply ``payments`` to ``schedule`` and report each instalment as of ``as_of``.

    A payment above what its instalment still owes is kept as ``overpaid`` on it, with a
    warning; an unassigned payment above everything owed is kept as ``unallocated``, with a
    warning. A payment dated after ``as_of`` or naming an unknown instalment is refused.
    """
    calendar = calendar or default_calendar()
    if not isinstance(events, Events):
        events = Events.model_validate(events)
    parsed, errors = _parse_payments(schedule, payments, as_of)
    if errors:
        raise InvalidPayments(errors=errors)

    currency = schedule.currency
    codes = [i.code for i in schedule.instalments]
    dues = {i.code: due_date(i, events, calendar) for i in schedule.instalments}
    remaining = {i.code: i.payable for i in schedule.instalments}
    applied: dict[str, list[AppliedPayment]] = {code: [] for code in codes}
    overpaid = {code: Decimal(0) for code in codes}
    settled: dict[str, dt.date] = {}
    unallocated = Decimal(0)
    warnings: list[Message] = []

    def pay(code: str, payment: Payment, amount: Decimal) -> None:
        remaining[code] -= amount
        applied[code].append(
            AppliedPayment(paid_on=payment.paid_on, amount=amount, reference=payment.reference)
        )
        if remaining[code] == 0 and code not in settled:
            settled[code] = payment.paid_on

    def earliest_due(index: int) -> tuple[dt.date, int]:
        due = dues[codes[index]]
        return (due.date if due is not None else dt.date.max, index)

    order = sorted(range(len(codes)), key=earliest_due)
    for payment in sorted(parsed, key=lambda p: p.paid_on):
        if payment.instalment is not None:
            code = payment.instalment
            amount = min(payment.amount, remaining[code])
            if amount > 0:
                pay(code, payment, amount)
            excess = payment.amount - amount
            if excess > 0:
                overpaid[code] += excess
                warnings.append(
                    msg(
                        "engagement.warn.overpaid",
                        instalment=code,
                        date=payment.paid_on.isoformat(),
                        excess=excess,
                        currency=currency,
                    )
                )
            continue
        left = payment.amount
        for index in order:
            code = codes[index]
            if left == 0:
                break
            amount = min(left, remaining[code])
            if amount > 0:
                pay(code, payment, amount)
                left -= amount
        if left > 0:
            unallocated += left
            warnings.append(
                msg(
                    "engagement.warn.unallocated",
                    date=payment.paid_on.isoformat(),
                    excess=left,
                    currency=currency,
                )
            )

    statuses = tuple(
        _status(
            instalment,
            dues[instalment.code],
            applied[instalment.code],
            remaining[instalment.code],
            overpaid[instalment.code],
            settled.get(instalment.code),
            as_of,
        )
        for instalment in schedule.instalments
    )
    total_paid = sum((s.paid for s in statuses), Decimal(0))
    return ScheduleStatus(
        as_of=as_of,
        currency=currency,
        instalments=statuses,
        total_payable=schedule.total_payable,
        total_paid=total_paid,
        total_outstanding=sum((s.outstanding for s in statuses), Decimal(0)),
        unallocated=unallocated,
        warnings=tuple(warnings),
    )


def _parse_payments(
    schedule: PaymentSchedule, payments: Sequence[Payment | Mapping[str, Any]], as_of: dt.date
) -> tuple[list[Payment], list[FieldError]]:
    parsed: list[Payment] = []
    errors: list[FieldError] = []
    codes = {i.code for i in schedule.instalments}
    for i, raw in enumerate(payments):
        at = f"payments[{i}]"
        if isinstance(raw, Payment):
            payment = raw
        else:
            try:
                payment = Payment.model_validate(raw)
            except ValidationError as exc:
                for error in field_errors(exc.errors(), model=Payment):
                    errors.append(FieldError(f"{at}.{error.loc}", error.key, error.params))
                continue
        if payment.paid_on > as_of:
            errors.append(
                FieldError(
                    f"{at}.paid_on",
                    "engagement.payments.after_as_of",
                    {"value": payment.paid_on.isoformat(), "as_of": as_of.isoformat()},
                )
            )
        if payment.instalment is not None and payment.instalment not in codes:
            errors.append(
                FieldError(
                    f"{at}.instalment",
                    "engagement.payments.unknown_instalment",
                    {"value": payment.instalment},
                )
            )
        if _too_precise(payment.amount, schedule.currency):
            errors.append(
                FieldError(
                    f"{at}.amount",
                    "engagement.schedule.precision",
                    {"value": payment.amount, "currency": schedule.currency},
                )
            )
        parsed.append(payment)
    return parsed, errors


def _status(
    instalment: Instalment,
    due: ComputedDate | None,
    applied: list[AppliedPayment],
    outstanding: Decimal,
    overpaid: Decimal,
    settled_on: dt.date | None,
    as_of: dt.date,
) -> InstalmentStatus:
    paid = instalment.payable - outstanding
    segments: tuple[OverdueSegment, ...] = ()
    days_overdue = 0
    state: State
    if due is None:
        state = "paid" if outstanding == 0 else "awaiting_trigger"
    else:
        end = settled_on if settled_on is not None else as_of
        segments = _overdue_segments(instalment.payable, due.date, end, applied)
        if outstanding == 0:
            state = "paid"
            if settled_on is not None and settled_on > due.date:
                state = "paid_late"
                days_overdue = (settled_on - due.date).days
        elif as_of > due.date:
            state = "overdue"
            days_overdue = (as_of - due.date).days
        else:
            state = "due" if as_of == due.date else "not_due"
    return InstalmentStatus(
        code=instalment.code,
        payable=instalment.payable,
        paid=paid,
        outstanding=outstanding,
        overpaid=overpaid,
        due=due,
        state=state,
        settled_on=settled_on,
        days_overdue=days_overdue,
        overdue_segments=segments,
        payments=tuple(applied),
    )


def _overdue_segments(
    payable: Decimal, due: dt.date, end: dt.date, applied: list[AppliedPayment]
) -> tuple[OverdueSegment, ...]:
    """The overdue balance from the day after ``due`` to ``end``, split at each payment.

    The balance on day X is what was still owed after the payments made before X: a payment
    on day P counts as made at the end of P.
    """
    first_late = due + dt.timedelta(days=1)
    if end < first_late:
        return ()

    def balance(day: dt.date) -> Decimal:
        return payable - sum((p.amount for p in applied if p.paid_on < day), Decimal(0))

    boundaries = sorted({p.paid_on + dt.timedelta(days=1) for p in applied})
    boundaries = [b for b in boundaries if first_late < b <= end]
    segments: list[OverdueSegment] = []
    start = first_late
    for boundary in [*boundaries, end + dt.timedelta(days=1)]:
        amount = balance(start)
        if amount > 0 and boundary > start:
            segments.append(
                OverdueSegment(first=start, last=boundary - dt.timedelta(days=1), amount=amount)
            )
        start = boundary
    return tuple(segments)
