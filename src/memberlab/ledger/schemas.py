"""API shapes for purchases, returns, points, adjustments, bonuses, paid plans and jobs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Amount = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=4)]
Text64 = Annotated[str, Field(min_length=1, max_length=64)]
Ref = Annotated[str, Field(min_length=1, max_length=128)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LineIn(_Input):
    sku: Text64
    category: Text64 = "other"
    quantity: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    amount: Amount = Field(description="Line amount after line discounts, in the currency.")


class PurchaseCreate(_Input):
    member_id: Text64
    order_id: Ref = Field(description="The client's order id: the idempotency key.")
    occurred_at: datetime
    channel: Text64
    store: Text64 | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]
    amount_paid: Amount | None = Field(
        default=None, description="Money paid; default: lines - discount - points used."
    )
    discount: Amount = Decimal(0)
    points_used: Annotated[int, Field(ge=0)] = 0
    coupon_code: Text64 | None = None
    mobile: Annotated[str, Field(max_length=32)] | None = Field(
        default=None, description="For enrolment on first purchase."
    )


class RuleLine(BaseModel):
    rule: str
    points: int


class Balances(BaseModel):
    available: int
    pending: int
    debt: int


class PurchaseResult(BaseModel):
    order_id: str
    member_id: str
    enrolled: bool
    points_earned: int
    points_pending: bool
    points_used: int
    growth_earned: int
    tier_before: str
    tier_after: str
    coupon_code: str | None
    explanation: list[RuleLine]
    balances: Balances


class ReturnLineIn(_Input):
    line: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Index of the order line (0-based)."
    )
    sku: Text64 | None = Field(default=None, description="Or the SKU of the line.")
    quantity: Annotated[int, Field(ge=1)] = 1


class ReturnCreate(_Input):
    return_id: Ref = Field(description="The client's return id: the idempotency key.")
    order_id: Ref
    occurred_at: datetime
    lines: list[ReturnLineIn] | None = Field(
        default=None, description="Lines returned; omitted: everything not yet returned."
    )


class ReturnResult(BaseModel):
    return_id: str
    order_id: str
    member_id: str
    points_reversed: int
    points_refunded: int
    growth_reversed: int
    debt: int
    tier_before: str
    tier_after: str
    balances: Balances


class LotView(BaseModel):
    seq: int
    source: str
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    amount: int
    remaining: int
    released: bool


class EntryView(BaseModel):
    seq: int
    kind: str
    at: datetime
    reference: str | None
    points: int
    growth: int
    balance: int = Field(description="Points (available + pending - debt) after this entry.")
    detail: dict[str, Any]


class PointsView(BaseModel):
    member_id: str
    tier: str
    tier_name: str
    tier_since: datetime
    growth_value: int = Field(description="Lifetime growth value.")
    qualifying: str = Field(description="The tier measure over its window now.")
    next_tier: str | None
    next_tier_name: str | None = Field(description="The next tier's name, in the language asked.")
    to_next_tier: str | None
    balances: Balances
    points_value: Decimal = Field(description="Available points in money.")
    plan: str | None
    plan_until: datetime | None
    lots: list[LotView]
    last_entries: list[EntryView]


class AdjustmentCreate(_Input):
    points: int = Field(description="Positive to give, negative to take.")
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class BonusCreate(_Input):
    type: Literal["review", "referral"]
    reference: Ref


class PlanPurchaseCreate(_Input):
    plan: Text64


class EntryResult(BaseModel):
    member_id: str
    entry: EntryView
    balances: Balances


class JobsRun(_Input):
    as_of: datetime | None = None


class JobsReport(BaseModel):
    as_of: datetime
    members: int
    released: int
    expired: int
    expired_points: int
    reviews: int
    tier_changes: int
    birthday_bonuses: int
    notices: int
    engagement_reminders: dict[str, Any] | None = Field(
        default=None,
        description="The engagements' reminders sent by the same run "
        "(sent, already_sent, waiting, items).",
    )


class LiabilityMonth(BaseModel):
    month: str
    points: int
    value: Decimal


class FlowMonth(BaseModel):
    month: str
    issued: int
    redeemed: int
    paid_with_points: int
    expired: int
    returned: int
    adjusted: int


class LiabilityReport(BaseModel):
    as_of: datetime
    currency: str
    value_per_point: Decimal
    outstanding_points: int
    outstanding_value: Decimal
    member_balances: int = Field(description="Sum of member balances: equals outstanding_points.")
    by_expiry_month: list[LiabilityMonth]
    flows: list[FlowMonth]
