"""Ledger tables, keyed by (member, sequence) so that bulk loads need no generated ids.

A member's ``ledger_entries`` and ``points_lots`` share one sequence (``member_states.next_seq``)
assigned by the rules, so the live ledger and the simulator number everything identically.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from memberlab.core.db import Base, BigId, TenantScoped, UtcDateTime
from memberlab.members.models import member_key


class MemberOwned(TenantScoped):
    """Mixin for a member's ledger rows, whose ``member_key()`` is their only key.

    ``tenant_id`` has no key of its own to ``tenants``: the member's implies it, and each
    key is one more check per row (a query on PostgreSQL), where a bulk import writes
    about six rows per purchase. (Other tables of a member's rows keep both.)
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(BigId, nullable=False)  # no key of its own: the member's implies it


class MemberState(MemberOwned, Base):
    """The rules' view of a member, persisted; balances are cached and checked by tests."""

    __tablename__ = "member_states"

    member_pk: Mapped[int] = mapped_column(BigId, primary_key=True)
    tier: Mapped[str] = mapped_column(String(64))
    tier_since: Mapped[datetime] = mapped_column(UtcDateTime())
    tier_at_review: Mapped[str | None] = mapped_column(String(64))
    last_review_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    as_of: Mapped[datetime | None] = mapped_column(UtcDateTime())
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    debt: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_growth: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_orders: Mapped[int] = mapped_column(Integer, default=0)
    cap_day: Mapped[str | None] = mapped_column(String(10))
    cap_day_points: Mapped[int] = mapped_column(BigInteger, default=0)
    cap_month: Mapped[str | None] = mapped_column(String(7))
    cap_month_points: Mapped[int] = mapped_column(BigInteger, default=0)
    bonus_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    plan_code: Mapped[str | None] = mapped_column(String(64))
    plan_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    next_seq: Mapped[int] = mapped_column(BigInteger, default=1)
    # when time alone next changes this member (None: unknown, i.e. now): jobs skip the rest
    next_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_member_states_tenant_tier", "tenant_id", "tier"),
        Index("ix_member_states_tenant_due", "tenant_id", "next_due_at"),
        member_key(),
    )


class LedgerEntry(MemberOwned, Base):
    """One transaction of a member's ledger: what happened, when, and why (``detail``)."""

    __tablename__ = "ledger_entries"

    member_pk: Mapped[int] = mapped_column(BigId)
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reference: Mapped[str | None] = mapped_column(String(128))
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    growth: Mapped[int] = mapped_column(BigInteger, default=0)
    spend: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # led by the tenant: what reads a tenant's whole ledger (analyses, exports) searches
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "member_pk", "seq"), member_key())


class Posting(MemberOwned, Base):
    """One movement of points from an account to another; never updated, never deleted."""

    __tablename__ = "postings"

    member_pk: Mapped[int] = mapped_column(BigId)
    entry_seq: Mapped[int] = mapped_column(BigInteger)
    leg: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(24))
    destination: Mapped[str] = mapped_column(String(24))
    amount: Mapped[int] = mapped_column(BigInteger)
    lot_seq: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    # led by the tenant: what reads a tenant's postings (the liability) searches
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "member_pk", "entry_seq", "leg"),
        member_key(),
    )


class PointsLot(MemberOwned, Base):
    """Points earned together; ``remaining`` is what is left of them (never below zero)."""

    __tablename__ = "points_lots"

    member_pk: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    earned_at: Mapped[datetime] = mapped_column(UtcDateTime())
    available_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(48))
    released: Mapped[bool] = mapped_column(Boolean)
    reference: Mapped[str | None] = mapped_column(String(128))
    noticed: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_points_lots_tenant_expires", "tenant_id", "expires_at"),
        member_key(),
    )


class Order(MemberOwned, Base):
    """A purchase as posted, with what each line earned (``record``) for returns."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id"),
        Index("ix_orders_tenant_member", "tenant_id", "member_pk"),
        Index("ix_orders_tenant_at", "tenant_id", "occurred_at"),
        member_key(),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(128))
    member_pk: Mapped[int] = mapped_column(BigId)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    channel: Mapped[str] = mapped_column(String(32))
    store: Mapped[str | None] = mapped_column(String(64))
    amount_paid: Mapped[int] = mapped_column(BigInteger)
    gross: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    growth_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    entry_seq: Mapped[int] = mapped_column(BigInteger)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)


class OrderReturn(MemberOwned, Base):
    """A return, referring to its order by the client's order id (no generated ids, for bulk)."""

    __tablename__ = "order_returns"
    __table_args__ = (
        UniqueConstraint("tenant_id", "return_id"),
        Index("ix_order_returns_tenant_order", "tenant_id", "order_id"),
        member_key(),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    return_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str] = mapped_column(String(128))
    member_pk: Mapped[int] = mapped_column(BigId)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    entry_seq: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    growth_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_returned: Mapped[int] = mapped_column(BigInteger, default=0)


class IdempotencyRecord(TenantScoped, Base):
    """The first answer to a write, kept so that the same key gets the same answer."""

    __tablename__ = "idempotency_records"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer, default=0)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    # tenant_id is part of the primary key: declared here to override the mixin's column
    tenant_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )


class ImportRun(TenantScoped, Base):
    """One run of a bulk import: which file, how far it got."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(500))
    file_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    applied: Mapped[int] = mapped_column(BigInteger, default=0)
    skipped: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")


class TierChange(MemberOwned, Base):
    """A member's tier changed (upgrade, review, return): the history tier analyses read."""

    __tablename__ = "tier_changes"
    __table_args__ = (
        Index("ix_tier_changes_tenant_at", "tenant_id", "at"),
        Index("ix_tier_changes_tenant_member", "tenant_id", "member_pk"),
        member_key(),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_pk: Mapped[int] = mapped_column(BigId)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    from_tier: Mapped[str] = mapped_column(String(64))
    to_tier: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
