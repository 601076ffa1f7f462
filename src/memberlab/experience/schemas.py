"""What the experience API takes and gives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from memberlab.experience.surveys import SurveyStatus


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TouchpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    stage: str
    stage_name: str
    name: str
    active: bool


class RulesOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    contact_cap_days: int
    case_due_hours: int
    detractor_max_nps: int
    low_csat_max: int
    case_window_days: int


class SurveyOut(BaseModel):
    code: str
    kind: str
    status: str
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class StatusChange(_Input):
    status: SurveyStatus


class InvitationCreate(_Input):
    member_id: Annotated[str, Field(min_length=1, max_length=64)]
    touchpoint: Annotated[str | None, Field(max_length=64)] = None
    order_id: Annotated[str | None, Field(max_length=128)] = None
    respect_contact_cap: bool = True


class InvitationOut(BaseModel):
    id: int
    survey: str
    member_id: str
    url: str
    language: str
    expires_at: datetime


class TriggerRunOut(BaseModel):
    as_of: datetime
    invited: dict[str, int]
    skipped_contact_cap: int
    skipped_sample: int
    cases_opened: int


class JobsRunIn(_Input):
    as_of: datetime | None = None


class CaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    member_id: str | None
    reason: str
    status: str
    touchpoint: str | None
    store: str | None
    opened_at: datetime
    due_at: datetime
    overdue: bool
    assignee: str | None
    nps: int | None
    csat: int | None
    comment: str | None
    resolution: str | None
    closed_at: datetime | None
    gesture: dict[str, Any] | None
    resurvey_nps: int | None
    notes: list[dict[str, Any]]


class CasePage(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None


class AssignIn(_Input):
    assignee: Annotated[str, Field(min_length=1, max_length=64)]


class NoteIn(_Input):
    text: Annotated[str, Field(min_length=1, max_length=4000)]


class CloseIn(_Input):
    resolution: Annotated[str, Field(min_length=1, max_length=4000)]
    gesture_points: Annotated[int | None, Field(gt=0, le=1_000_000)] = None
    gesture_coupon: Annotated[str | None, Field(min_length=1, max_length=64)] = None


class CaseMeasuresOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    opened: int
    closed: int
    open: int
    overdue: int
    deadline_met_rate: float | None
    recovery_rate: float | None
    recovered: int
    followed_detractors: int
    median_hours_to_close: float | None


class ScoreRow(BaseModel):
    group: dict[str, Any]
    n: int
    value: float | None
    low: float | None
    high: float | None
    too_small: bool


class ScoresOut(BaseModel):
    metric: str
    by: list[str]
    rows: list[ScoreRow]


class ScoreEstimateOut(BaseModel):
    metric: str
    n: int
    value: float
    low: float
    high: float
    too_small: bool


class ScoreChangeOut(BaseModel):
    metric: str
    before: ScoreEstimateOut
    after: ScoreEstimateOut
    difference: float
    low: float
    high: float
    p_value: float
    significant: bool


class AspectOut(BaseModel):
    aspect: str
    name_zh: str
    name_en: str
    mentions: int
    share_negative: float
    mean_sentiment: float
    mean_nps: float | None
    keywords: list[str]
    quotes: list[str]


class DiagnosisOut(BaseModel):
    weights: list[dict[str, Any]] = Field(
        description="Per touchpoint and rated attribute: n, r2, weight and share of R^2 with "
        "bootstrap intervals, rank."
    )
    skipped: list[str] = Field(description="Touchpoints that could not be analysed, and why.")
    aspects: list[dict[str, Any]] = Field(
        description="Comment aspects behind detractors: rates, lift, excess detractors, q value."
    )
    pain_points: list[dict[str, Any]] = Field(
        description="Touchpoint x aspect, ranked: volume, negativity, NPS and churn gaps, quotes."
    )


class ExperienceValueOut(BaseModel):
    segments: list[dict[str, Any]]
    members: int
    answers: int
    window_days: int
    churn_days: int
    spend_gap: float | None
    value_per_point: float | None
    low: float | None
    high: float | None
