"""A member's ledger as rows, without a database: what the rules hold and produce, in the
ledger tables' columns (``store`` and the bulk importer write them; the importer's worker
processes import only this and the rules, not SQLAlchemy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memberlab.programs import rules


@dataclass
class Loaded:
    """A member's rules state plus what is needed to write back only what changed."""

    member_pk: int
    state: rules.MemberState
    is_new: bool
    lots_before: dict[int, tuple[int, bool, bool]] = field(default_factory=dict)
    notice_days: int = 0  # the program's expiring-soon window, for ``next_due_at``


# a lot's columns besides tenant and member, in the order of ``rules.Lot``'s fields
LOT_FIELDS = (
    "seq",
    "earned_at",
    "available_at",
    "expires_at",
    "amount",
    "remaining",
    "source",
    "released",
    "reference",
    "noticed",
)


def state_row(
    tenant_id: int, member_pk: int, state: rules.MemberState, now: datetime, notice_days: int
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "member_pk": member_pk,
        "tier": state.tier,
        "tier_since": state.tier_since,
        "tier_at_review": state.tier_at_review,
        "last_review_at": state.last_review_at,
        "as_of": state.as_of,
        "available": state.available,
        "pending": state.pending,
        "debt": state.debt,
        "lifetime_growth": state.lifetime_growth,
        "lifetime_spend": state.lifetime_spend,
        "lifetime_orders": state.lifetime_orders,
        "cap_day": state.cap_day.isoformat() if state.cap_day else None,
        "cap_day_points": state.cap_day_points,
        "cap_month": f"{state.cap_month[0]:04d}-{state.cap_month[1]:02d}"
        if state.cap_month
        else None,
        "cap_month_points": state.cap_month_points,
        "bonus_counts": dict(state.bonus_counts),  # sent: read at the flush
        "plan_code": state.plan_code,
        "plan_until": state.plan_until,
        "next_seq": state.next_seq,
        "next_due_at": rules.due_at(state, notice_days),
        "updated_at": now,
    }


TIER_CHANGE_COLUMNS = ("tenant_id", "member_pk", "at", "from_tier", "to_tier", "reason")


def tier_changes(notices: list[rules.Notice]) -> list[tuple[datetime, str, str, str]]:
    """(at, from, to, reason) of every tier change among ``notices``."""
    return [
        (n.at, n.payload["from"], n.payload["to"], n.payload["reason"])
        for n in notices
        if n.kind == "tier.changed"
    ]


def order_to_json(order: rules.OrderRecord) -> dict[str, Any]:
    data = dict(order.__dict__)  # flat copy: asdict's deep copy is slow in bulk
    data["occurred_at"] = order.occurred_at.isoformat()
    data["lines"] = [dict(line.__dict__) for line in order.lines]
    return data


def order_from_json(data: dict[str, Any]) -> rules.OrderRecord:
    values = dict(data)
    values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
    values["lines"] = [rules.LineRecord(**line) for line in values["lines"]]
    return rules.OrderRecord(**values)
