"""Stored programs: immutable versions and their activations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memberlab.core.db import Base, BigId, TenantConfiguration, TenantScoped, UtcDateTime


class ProgramVersion(TenantScoped, Base):
    """One loaded program file. Never updated: a change is a new version."""

    __tablename__ = "program_versions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", "version"),
        UniqueConstraint("tenant_id", "code", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200), default="")


class ProgramActivation(TenantScoped, TenantConfiguration, Base):
    """From ``effective_from`` on, ``version`` is the tenant's live program."""

    __tablename__ = "program_activations"
    __table_args__ = (
        Index("ix_program_activations_tenant_effective", "tenant_id", "effective_from"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("program_versions.id", ondelete="RESTRICT"), index=True
    )
    effective_from: Mapped[datetime] = mapped_column(UtcDateTime())
    activated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    activated_by: Mapped[str] = mapped_column(String(200), default="")
