"""API shapes for stored programs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ProgramVersionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    version: int
    sha256: str
    created_at: datetime
    created_by: str


class ProgramVersionDetail(ProgramVersionSummary):
    definition: dict[str, Any] = Field(description="The validated, normalised program.")


class LoadedProgram(BaseModel):
    version: ProgramVersionSummary
    created: bool = Field(description="False when identical content was already stored.")


class ValidationReport(BaseModel):
    valid: bool
    code: str | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)


class ActivationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effective_from: datetime | None = Field(
        default=None, description="When the version takes effect; now when not given."
    )


class Activation(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version_id: int
    effective_from: datetime
    activated_at: datetime
    activated_by: str


class ActiveProgram(BaseModel):
    activation: Activation
    version: ProgramVersionDetail


class Change(BaseModel):
    path: str
    before: Any
    after: Any
