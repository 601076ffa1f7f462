"""The engagement store: each engagement, its versions (the terms), what happened (events),
and the evidence, kept in a hash chain; the links to the needs questionnaire, the tenant's
holiday override, and the reminders sent."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from memberlab.core.db import Base, BigId, TenantScoped, UtcDateTime


class Engagement(TenantScoped, Base):
    """One contract with one client, identified by its contract number."""

    __tablename__ = "engagements"
    __table_args__ = (UniqueConstraint("tenant_id", "contract_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    contract_number: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft|signed|completed
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


class EngagementVersion(TenantScoped, Base):
    """The terms as agreed at one time; never changed (a change makes the next version)."""

    __tablename__ = "engagement_versions"
    __table_args__ = (UniqueConstraint("engagement_pk", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    engagement_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("engagements.id", ondelete="RESTRICT")
    )
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)  # "original", or the change request agreed
    change_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


class EngagementEvent(TenantScoped, Base):
    """Something that happened: signing, a payment, a submission, an acceptance, ...

    ``key`` makes recording idempotent (the same key with the same content is the same
    event; with other content, a conflict)."""

    __tablename__ = "engagement_events"
    __table_args__ = (
        UniqueConstraint("engagement_pk", "key"),
        Index("ix_engagement_events_engagement_day", "engagement_pk", "happened_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    engagement_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("engagements.id", ondelete="RESTRICT")
    )
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    happened_on: Mapped[date] = mapped_column(Date)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_by: Mapped[str] = mapped_column(String(64))
    evidence_seq: Mapped[int | None] = mapped_column(Integer)


class EvidenceItem(TenantScoped, Base):
    """A file that proves performance, chained: ``chain_hash`` covers this item's file hash
    and metadata and the previous item's ``chain_hash``, so no item can be changed, removed
    or slipped in without breaking every later link."""

    __tablename__ = "evidence_items"
    __table_args__ = (UniqueConstraint("engagement_pk", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    engagement_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("engagements.id", ondelete="RESTRICT")
    )
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(300))
    file_name: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    stored_path: Mapped[str] = mapped_column(String(500))  # relative to the evidence folder
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    uploaded_by: Mapped[str] = mapped_column(String(64))
    previous_hash: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))


class CalendarOverride(TenantScoped, Base):
    """A tenant's holiday table over the built-in one (same form as ``holidays_cn.yaml``).

    Uploads are kept: the one in force has no ``removed_at``; a new upload or a removal
    closes it, so every calendar version a computed date names can still be read back."""

    __tablename__ = "engagement_calendar_overrides"
    __table_args__ = (Index("ix_engagement_calendar_overrides_tenant", "tenant_id", "removed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(Text)  # where the table comes from (a notice, a policy)
    dated: Mapped[date] = mapped_column(Date)  # the table's date (its ``compiled``, or upload)
    file_name: Mapped[str | None] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    calendar_version: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    uploaded_by: Mapped[str] = mapped_column(String(64))
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    removed_by: Mapped[str | None] = mapped_column(String(64))


class QuestionnaireLink(TenantScoped, Base):
    """A public link to the needs questionnaire, answered once (``/q/<token>``).

    Only the token's SHA-256 is kept. The questionnaire is stored with the link, so the
    answers are checked against the questions the client was shown."""

    __tablename__ = "engagement_questionnaire_links"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        Index("ix_engagement_questionnaire_links_engagement", "tenant_id", "engagement_pk"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    engagement_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("engagements.id", ondelete="RESTRICT")
    )
    token_hash: Mapped[str] = mapped_column(String(64))
    questionnaire: Mapped[dict[str, Any]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # a newer link replaced it
    event_pk: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("engagement_events.id", ondelete="RESTRICT")
    )


class ReminderSent(TenantScoped, Base):
    """A reminder written to the webhook outbox, once per item and due day (``key``)."""

    __tablename__ = "engagement_reminders"
    __table_args__ = (UniqueConstraint("engagement_pk", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    engagement_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("engagements.id", ondelete="RESTRICT")
    )
    key: Mapped[str] = mapped_column(String(200))  # <kind>:<subject>:<due day>
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(16))
    due_on: Mapped[date] = mapped_column(Date)
    as_of: Mapped[date] = mapped_column(Date)  # the day of the run that sent it
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime())
    queued: Mapped[int] = mapped_column(Integer)  # outbox rows written (one per endpoint)
