"""The points liability: what is outstanding, when it expires, and how it moved each month."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.ledger.models import PointsLot, Posting
from memberlab.ledger.schemas import FlowMonth, LiabilityMonth, LiabilityReport
from memberlab.ledger.service import program_at
from memberlab.programs import rules

_ONE_US = timedelta(microseconds=1)
_FLOW_COLUMNS = {
    rules.ISSUED: "issued",
    rules.REDEEMED: "redeemed",
    rules.PAYMENT: "paid_with_points",
    rules.EXPIRED: "expired",
    rules.RETURNED: "returned",
    rules.ADJUSTMENT: "adjusted",
}


def liability(session: Session, *, as_of: datetime) -> LiabilityReport:
    """Outstanding points by expiry month (from lots) and monthly flows (from postings).

    ``outstanding_points`` is computed from postings (the books) and ``member_balances``
    from the members' cached balances: the two are equal when the ledger is sound.
    """
    _, program = program_at(session, as_of)
    value = program.points.value_per_point

    by_month: dict[str, int] = defaultdict(int)
    lots = session.execute(
        select(PointsLot.expires_at, func.sum(PointsLot.remaining))
        .where(PointsLot.remaining > 0)
        .group_by(PointsLot.expires_at)
    )
    for expires_at, remaining in lots:
        month = (
            "never"
            if expires_at is None
            else rules.local(program, expires_at - _ONE_US).strftime("%Y-%m")
        )
        by_month[month] += int(remaining)

    flows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    outstanding = 0
    postings = session.execute(
        select(Posting.at, Posting.source, Posting.destination, Posting.amount).where(
            Posting.at <= as_of
        )
    )
    for at, source, destination, amount in postings:
        into_member = destination in rules.MEMBER_ACCOUNTS
        out_of_member = source in rules.MEMBER_ACCOUNTS
        if into_member == out_of_member:
            continue  # between a member's own accounts (a release), or not a member's at all
        month = rules.local(program, at).strftime("%Y-%m")
        signed = amount if into_member else -amount
        outstanding += signed
        account = source if into_member else destination
        column = _FLOW_COLUMNS.get(account)
        if column in ("paid_with_points", "redeemed", "expired", "returned"):
            flows[month][column] -= signed  # shown as positive outflows (refunds net off)
        elif column is not None:
            flows[month][column] += signed
    balances = (
        session.scalar(
            select(func.coalesce(func.sum(MemberStateRow.available + MemberStateRow.pending), 0))
        )
        or 0
    )
    return LiabilityReport(
        as_of=as_of,
        currency=program.currency,
        value_per_point=value,
        outstanding_points=outstanding,
        outstanding_value=(Decimal(outstanding) * value).quantize(Decimal("0.01")),
        member_balances=int(balances),
        by_expiry_month=[
            LiabilityMonth(month=m, points=p, value=(Decimal(p) * value).quantize(Decimal("0.01")))
            for m, p in sorted(by_month.items())
        ],
        flows=[
            FlowMonth(
                month=m,
                **{
                    c: flows[m].get(c, 0)
                    for c in (
                        "issued",
                        "redeemed",
                        "paid_with_points",
                        "expired",
                        "returned",
                        "adjusted",
                    )
                },
            )
            for m in sorted(flows)
        ],
    )
