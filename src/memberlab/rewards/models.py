"""Reward stock, redemptions and coupons."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memberlab.core.db import Base, BigId, TenantScoped, UtcDateTime
from memberlab.members.models import member_key


class RewardStock(TenantScoped, Base):
    """How many of a catalog reward have been issued (the catalog itself is in the program)."""

    __tablename__ = "reward_stock"

    reward_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    issued: Mapped[int] = mapped_column(BigInteger, default=0)
    tenant_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )


class Redemption(TenantScoped, Base):
    __tablename__ = "redemptions"
    __table_args__ = (
        Index("ix_redemptions_member_reward", "tenant_id", "member_pk", "reward_code"),
        member_key(),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_pk: Mapped[int] = mapped_column(BigId)
    reward_code: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)
    unit_cost: Mapped[int] = mapped_column(BigInteger, default=0)
    entry_seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reference: Mapped[str] = mapped_column(String(200))


class Coupon(TenantScoped, Base):
    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        Index("ix_coupons_tenant_member", "tenant_id", "member_pk"),
        member_key(),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64))
    member_pk: Mapped[int] = mapped_column(BigId)
    reward_code: Mapped[str] = mapped_column(String(64))
    redemption_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("redemptions.id", ondelete="RESTRICT")
    )
    value: Mapped[int] = mapped_column(BigInteger)
    min_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), default="issued")
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    used_order_id: Mapped[str | None] = mapped_column(String(128))
