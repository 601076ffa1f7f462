"""A member's ledger as rows, without a database: what the rules hold and produce, in the
ledger tables' columns (``store`` and the bulk importer write them; the importer's worker
processes import only this and the rules, not SQLAlchemy).
"""

from __future__ import annotations

from collections.abc import Sequence
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


# The columns of ``orders`` that hold an order's own facts, in ``rules.OrderRecord``'s order.
# Its stored record (``order_to_json``) leaves them out: the order's row has them.
ORDER_HEAD = ("order_id", "occurred_at", "channel", "store", "amount_paid", "gross", "points_used")

# An order line in a stored record is a list of these, in ``rules.LineRecord``'s order; the
# last four only once something of the line has been returned. (``order_from_json`` reads
# both by position: tests/ledger/test_rows.py checks that they follow the dataclasses.)
LINE_FIELDS = ("sku", "category", "quantity", "amount", "paid", "points", "growth")
LINE_RETURN_FIELDS = ("returned_quantity", "points_reversed", "growth_reversed", "paid_returned")


def order_to_json(order: rules.OrderRecord) -> dict[str, Any]:
    """What ``orders.record`` keeps of an order, besides its own columns (``ORDER_HEAD``):
    what each line earned and had returned, for returns and the export.

    Compact, as there is one per order: written out in full (every field, lines as objects)
    it took 508 bytes an order, a third of the database after a million purchases, and
    writing those bytes about a tenth of a bulk import's CPU. Values at their defaults are
    left out. ``order_from_json`` reads this and the full form of earlier versions."""
    lines = []
    for line in order.lines:
        values: list[Any] = [
            line.sku,
            line.category,
            line.quantity,
            line.amount,
            line.paid,
            line.points,
            line.growth,
        ]
        returned = (
            line.returned_quantity,
            line.points_reversed,
            line.growth_reversed,
            line.paid_returned,
        )
        if any(returned):
            values += returned
        lines.append(values)
    data: dict[str, Any] = {
        "lines": lines,
        "lot_seq": order.lot_seq,
        "points": order.points,
        "bonus_points": order.bonus_points,
        "growth_order": order.growth_order,
    }
    if order.bonus_code is not None:
        data["bonus_code"] = order.bonus_code
    if order.points_refunded:
        data["points_refunded"] = order.points_refunded
    if order.bonus_reversed:
        data["bonus_reversed"] = True
    if order.growth_order_reversed:
        data["growth_order_reversed"] = True
    if order.spend_reversed:
        data["spend_reversed"] = order.spend_reversed
    return data


def order_head(row: Any) -> tuple[Any, ...]:
    """An order row's (ORM object or result row) ``ORDER_HEAD`` values."""
    return tuple(getattr(row, name) for name in ORDER_HEAD)


def order_from_json(data: dict[str, Any], head: Sequence[Any]) -> rules.OrderRecord:
    """The order whose row has the ``ORDER_HEAD`` values ``head`` and ``data`` as its record.

    Also reads the full form that versions before 2026-11-28 stored (every field of the
    order, its head included, and lines as objects)."""
    if "order_id" in data:  # the full form
        values = dict(data)
        values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
        values["lines"] = [rules.LineRecord(**line) for line in values["lines"]]
        return rules.OrderRecord(**values)
    return rules.OrderRecord(
        *head,
        [rules.LineRecord(*line) for line in data["lines"]],
        data["lot_seq"],
        data["points"],
        data["bonus_points"],
        data.get("bonus_code"),
        data["growth_order"],
        data.get("points_refunded", 0),
        data.get("bonus_reversed", False),
        data.get("growth_order_reversed", False),
        data.get("spend_reversed", 0),
    )
