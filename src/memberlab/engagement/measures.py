"""Evaluation standards measured from the client's data in the store.

A standard whose ``kpi`` MemberLab measures is assessed from the data of its period
(inclusive local days), not typed in: the assessment records the value and what it rests
on. KPIs:

- ``nps``: % promoters (9-10) minus % detractors (0-6) of the answers in the period;
- ``csat``: % of CSAT answers of 4 or 5; ``ces``: the mean CES (1-7);
- ``repeat_rate``: % of the members who bought in the period who bought on two days or more;
- ``active_members``: members with a purchase in the period;
- ``churn_rate``: % of the members who bought in the 180 days before the period and not in it;
- ``case_deadline_met``: % of the follow-up cases closed in the period by their deadline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.experience.models import FollowUpCase

MEASURED = (
    "nps", "csat", "ces", "repeat_rate", "active_members", "churn_rate", "case_deadline_met",
)  # fmt: skip
CHURN_LOOKBACK_DAYS = 180


@dataclass(frozen=True)
class Measurement:
    kpi: str
    value: Decimal
    n: int  # answers, members or cases it rests on
    start: dt.date
    end: dt.date


def _two(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _none(kpi: str, start: dt.date, end: dt.date) -> InvalidInput:
    return InvalidInput(
        errors=[FieldError("standard", "engagement.measure.no_data", {
            "kpi": kpi, "start": start.isoformat(), "end": end.isoformat()})]
    )  # fmt: skip


def _days(frame: pl.DataFrame, column: str) -> pl.Expr:
    return pl.col(column).dt.date()


def measure(
    session: Session, kpi: str, *, start: dt.date, end: dt.date, timezone: str
) -> Measurement:
    """The KPI over ``start``..``end``; ``InvalidInput`` when it cannot be measured."""
    from memberlab.analytics.data import responses_from_store, transactions_from_store

    if kpi not in MEASURED:
        raise InvalidInput(
            errors=[FieldError("kpi", "engagement.measure.manual",
                               {"kpi": kpi, "measured": ", ".join(MEASURED)})]
        )  # fmt: skip
    if kpi in ("nps", "csat", "ces"):
        answers = responses_from_store(session, timezone=timezone)
        values = answers.filter(
            _days(answers, "responded_at").is_between(start, end) & pl.col(kpi).is_not_null()
        )[kpi]
        if values.len() == 0:
            raise _none(kpi, start, end)
        if kpi == "nps":
            value = 100 * (float((values >= 9).mean()) - float((values <= 6).mean()))
        elif kpi == "csat":
            value = 100 * float((values >= 4).mean())
        else:
            value = float(values.mean())  # type: ignore[arg-type]
        return Measurement(kpi, _two(value), values.len(), start, end)
    if kpi == "case_deadline_met":
        zone = ZoneInfo(timezone)
        after = dt.datetime.combine(start, dt.time.min, zone)
        before = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, zone)
        cases = session.scalars(
            select(FollowUpCase).where(
                FollowUpCase.closed_at >= after, FollowUpCase.closed_at < before
            )
        ).all()
        if not cases:
            raise _none(kpi, start, end)
        met = sum(1 for c in cases if c.closed_at and c.closed_at <= c.due_at)
        return Measurement(kpi, _two(100 * met / len(cases)), len(cases), start, end)
    purchases = transactions_from_store(session, timezone=timezone).filter(
        pl.col("kind") == "purchase"
    )
    days = purchases.select("member_id", day=_days(purchases, "occurred_at")).unique()
    period = days.filter(pl.col("day").is_between(start, end))
    buyers = period["member_id"].n_unique()
    if kpi == "churn_rate":
        earlier = days.filter(
            pl.col("day").is_between(start - dt.timedelta(days=CHURN_LOOKBACK_DAYS),
                                     start - dt.timedelta(days=1))
        )["member_id"].unique()  # fmt: skip
        if earlier.len() == 0:
            raise _none(kpi, start, end)
        stayed = earlier.is_in(period["member_id"].unique()).sum()
        return Measurement(kpi, _two(100 * (1 - stayed / earlier.len())), earlier.len(), start,
                           end)  # fmt: skip
    if buyers == 0:
        raise _none(kpi, start, end)
    if kpi == "active_members":
        return Measurement(kpi, Decimal(buyers), buyers, start, end)
    repeaters = period.group_by("member_id").len().filter(pl.col("len") >= 2).height
    return Measurement(kpi, _two(100 * repeaters / buyers), buyers, start, end)
