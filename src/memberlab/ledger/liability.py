"""The points liability: what is outstanding, when it expires, and how it moved each month."""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
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
    # only postings into or out of a member's accounts: not those between a member's own
    # (a release), nearly half of them
    into_members = Posting.destination.in_(rules.MEMBER_ACCOUNTS)
    out_of_members = Posting.source.in_(rules.MEMBER_ACCOUNTS)
    postings = session.execute(
        select(Posting.at, Posting.source, Posting.destination, Posting.amount).where(
            Posting.at <= as_of,
            or_(and_(into_members, ~out_of_members), and_(out_of_members, ~into_members)),
        )
    )
    month_of = LocalMonths(program.timezone)
    for at, source, destination, amount in postings:
        into_member = destination in rules.MEMBER_ACCOUNTS
        month = month_of(at)
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


class LocalMonths:
    """The local month (``2026-11``) of UTC instants in ``timezone``, by a binary search of
    the months met so far: a hundred times cheaper than converting and formatting each
    instant, which the liability would do for every posting."""

    def __init__(self, timezone: str) -> None:
        self.timezone, self.zone = timezone, ZoneInfo(timezone)
        self.starts: list[datetime] = []  # sorted UTC starts of the months met
        self.months: dict[datetime, tuple[datetime, str]] = {}  # start -> (end, label)

    def __call__(self, moment: datetime) -> str:
        i = bisect_right(self.starts, moment)
        if i:
            end, label = self.months[self.starts[i - 1]]
            if moment < end:
                return label
        return self._add(moment)

    def _add(self, moment: datetime) -> str:
        local = moment.astimezone(self.zone)
        first = date(local.year, local.month, 1)
        following = date(local.year + local.month // 12, local.month % 12 + 1, 1)
        start = rules.midnight_in(self.timezone, first)
        end = rules.midnight_in(self.timezone, following)
        label = f"{first.year:04d}-{first.month:02d}"
        self.months[start] = (end, label)
        insort(self.starts, start)
        return label
