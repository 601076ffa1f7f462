"""Member profiles. Personal fields are sealed by the vault (see ``core.pii``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memberlab.core.db import Base, BigId, TenantScoped, UtcDateTime


def member_key(*, ondelete: str = "RESTRICT") -> ForeignKeyConstraint:
    """``(tenant_id, member_pk)`` references ``members (tenant_id, id)``: for a table of
    rows that belong to a member.

    One key says both whose tenant and which member, so the database refuses a row that
    names another tenant's member. A row whose ``member_pk`` is null is not checked.
    """
    return ForeignKeyConstraint(
        ["tenant_id", "member_pk"], ["members.tenant_id", "members.id"], ondelete=ondelete
    )


class Member(TenantScoped, Base):
    __tablename__ = "members"
    __table_args__ = (
        # what every row of a member references (``member_key``)
        Index("ix_members_tenant_id_id", "tenant_id", "id", unique=True),
        UniqueConstraint("tenant_id", "member_id"),
        UniqueConstraint("tenant_id", "external_id"),
        UniqueConstraint("tenant_id", "mobile_index"),
        Index("ix_members_tenant_enrolled", "tenant_id", "enrolled_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(128))
    # Personal data: sealed values, a lookup index and a masked form for lists.
    mobile_sealed: Mapped[str | None] = mapped_column(Text)
    mobile_index: Mapped[str | None] = mapped_column(String(64))
    mobile_masked: Mapped[str | None] = mapped_column(String(32))
    name_sealed: Mapped[str | None] = mapped_column(Text)
    birthday_sealed: Mapped[str | None] = mapped_column(Text)
    # Birthday month and day stay in clear: the birthday bonus needs them, the year does not.
    birthday_month_day: Mapped[str | None] = mapped_column(String(5))
    gender: Mapped[str | None] = mapped_column(String(8))
    city: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(8))
    enrolled_at: Mapped[datetime] = mapped_column(UtcDateTime())
    enrol_channel: Mapped[str | None] = mapped_column(String(32))
    enrol_store: Mapped[str | None] = mapped_column(String(64))
    consents: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class MemberTag(TenantScoped, Base):
    __tablename__ = "member_tags"

    member_pk: Mapped[int] = mapped_column(BigId, primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (
        Index("ix_member_tags_tenant_tag", "tenant_id", "tag"),
        member_key(ondelete="CASCADE"),
    )
