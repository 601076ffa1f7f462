"""The customer-experience store: the journey's touchpoints, survey definitions, single-use
invitation links, answers (from our pages or imported from other tools) and the follow-up
cases that close the loop with unhappy members."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memberlab.core.db import Base, BigId, TenantScoped, UtcDateTime
from memberlab.members.models import member_key


class SurveyResponse(TenantScoped, Base):
    """One answered survey: scores, ratings per attribute, a comment, and what it is about."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        UniqueConstraint("tenant_id", "response_id"),
        Index("ix_survey_responses_tenant_time", "tenant_id", "responded_at"),
        Index("ix_survey_responses_tenant_member", "tenant_id", "member_pk"),
        member_key(),  # members are never deleted: erasure clears their personal data
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    response_id: Mapped[str] = mapped_column(String(64))
    member_pk: Mapped[int | None] = mapped_column(BigId)
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
    # answered on our page: the survey and the link; every answer by question id
    survey_pk: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("surveys.id", ondelete="RESTRICT")
    )
    invitation_pk: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("survey_invitations.id", ondelete="RESTRICT"), unique=True
    )
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class JourneyStage(TenantScoped, Base):
    """A stage of the member's journey (购买 / buying, 履约 / fulfilment, ...)."""

    __tablename__ = "journey_stages"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32))
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)


class Touchpoint(TenantScoped, Base):
    """Where the member meets the brand (门店 / store, 小程序 / mini-program, ...)."""

    __tablename__ = "touchpoints"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64))
    stage_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("journey_stages.id", ondelete="RESTRICT")
    )
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ExperienceSettings(TenantScoped, Base):
    """A tenant's rules for asking and following up, one row per tenant."""

    __tablename__ = "experience_settings"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    contact_cap_days: Mapped[int] = mapped_column(Integer)  # ask a member at most once in N days
    case_due_hours: Mapped[int] = mapped_column(Integer)
    detractor_max_nps: Mapped[int] = mapped_column(Integer)  # NPS at or below: a case
    low_csat_max: Mapped[int] = mapped_column(Integer)  # CSAT at or below: a case
    case_window_days: Mapped[int] = mapped_column(Integer)  # older imported answers: no case
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Survey(TenantScoped, Base):
    """A survey definition: questions in zh-CN and en, triggers, sampling."""

    __tablename__ = "surveys"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))  # transactional | relationship | follow_up
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | active | closed
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)  # SurveyDefinition, validated
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


class SurveyInvitation(TenantScoped, Base):
    """A single-use link to one survey for one member; answered at most once."""

    __tablename__ = "survey_invitations"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        UniqueConstraint("tenant_id", "dedupe_key"),
        Index("ix_survey_invitations_tenant_member_time", "tenant_id", "member_pk", "created_at"),
        member_key(),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    survey_pk: Mapped[int] = mapped_column(BigId, ForeignKey("surveys.id", ondelete="RESTRICT"))
    member_pk: Mapped[int] = mapped_column(BigId)
    token_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the link's token
    dedupe_key: Mapped[str] = mapped_column(String(200))  # one invitation per trigger event
    trigger: Mapped[str] = mapped_column(String(16))  # purchase | case_closed | periodic | manual
    touchpoint: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(32))
    store: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(128))
    case_pk: Mapped[int | None] = mapped_column(BigId)
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class FollowUpCase(TenantScoped, Base):
    """Closing the loop: an unhappy answer becomes a case with a deadline and an owner."""

    __tablename__ = "follow_up_cases"
    __table_args__ = (
        UniqueConstraint("tenant_id", "response_pk"),
        Index("ix_follow_up_cases_tenant_status_due", "tenant_id", "status", "due_at"),
        member_key(),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    response_pk: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("survey_responses.id", ondelete="RESTRICT")
    )
    member_pk: Mapped[int | None] = mapped_column(BigId)
    reason: Mapped[str] = mapped_column(String(16))  # detractor | low_csat | manual
    touchpoint: Mapped[str | None] = mapped_column(String(64))
    store: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    assignee: Mapped[str | None] = mapped_column(String(64))
    first_action_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolution: Mapped[str | None] = mapped_column(Text)
    gesture: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(64))
    resurvey_pk: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("survey_invitations.id", ondelete="SET NULL")
    )


class CaseNote(TenantScoped, Base):
    """What was done on a case, by whom and when (never edited)."""

    __tablename__ = "case_notes"
    __table_args__ = (Index("ix_case_notes_tenant_case", "tenant_id", "case_pk"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("follow_up_cases.id", ondelete="RESTRICT")
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    author: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # note | assign | status | gesture | close
    text: Mapped[str] = mapped_column(Text)
