"""Survey responses, whether answered on our pages or imported from other survey tools."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memberlab.core.db import Base, BigId, TenantScoped, UtcDateTime


class SurveyResponse(TenantScoped, Base):
    """One answered survey: scores, ratings per attribute, a comment, and what it is about."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        UniqueConstraint("tenant_id", "response_id"),
        Index("ix_survey_responses_tenant_time", "tenant_id", "responded_at"),
        Index("ix_survey_responses_tenant_member", "tenant_id", "member_pk"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    response_id: Mapped[str] = mapped_column(String(64))
    member_pk: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("members.id", ondelete="SET NULL")
    )
    order_id: Mapped[str | None] = mapped_column(String(128))
    responded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    survey: Mapped[str] = mapped_column(String(32), default="transactional")
    touchpoint: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(32))
    store: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    nps: Mapped[int | None] = mapped_column(Integer)
    csat: Mapped[int | None] = mapped_column(Integer)
    ces: Mapped[int | None] = mapped_column(Integer)
    rating_speed: Mapped[int | None] = mapped_column(Integer)
    rating_staff: Mapped[int | None] = mapped_column(Integer)
    rating_product_quality: Mapped[int | None] = mapped_column(Integer)
    rating_value: Mapped[int | None] = mapped_column(Integer)
    rating_app_usability: Mapped[int | None] = mapped_column(Integer)
    rating_cleanliness: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="import")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
