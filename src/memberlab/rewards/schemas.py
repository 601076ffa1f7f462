"""API shapes for the reward catalog, redemptions and coupons."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class CatalogItem(BaseModel):
    code: str
    name: str
    type: str
    points_cost: int
    stock: int | None
    issued: int
    left: int | None
    per_member_limit: int | None
    valid_from: date | None
    valid_until: date | None
    available: bool


class RedemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(ge=1, le=100)] = 1


class CouponView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    reward_code: str
    value: Decimal
    min_spend: Decimal
    issued_at: datetime
    valid_until: datetime
    status: str
    used_at: datetime | None
    used_order_id: str | None


class RedemptionResult(BaseModel):
    member_id: str
    reward: str
    quantity: int
    points: int
    available: int
    coupons: list[CouponView]
