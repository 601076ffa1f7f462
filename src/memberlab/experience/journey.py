"""The member's journey: stages and touchpoints, and the tenant's rules for asking and
following up. Every tenant starts with the defaults below and may change them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.experience.models import ExperienceSettings, JourneyStage, Touchpoint

# (code, 中文, English)
DEFAULT_STAGES = (
    ("buy", "购买", "Buying"),
    ("fulfil", "履约", "Fulfilment"),
    ("service", "服务", "Service"),
    ("loyalty", "会员", "Membership"),
)
# (code, stage, 中文, English); channel codes of purchases are touchpoint codes too
DEFAULT_TOUCHPOINTS = (
    ("store", "buy", "门店", "Store"),
    ("mini_program", "buy", "小程序", "Mini-program"),
    ("app", "buy", "APP", "App"),
    ("delivery", "fulfil", "外卖配送", "Delivery"),
    ("service_centre", "service", "客服", "Service centre"),
    ("after_sales", "service", "售后", "After-sales"),
    ("membership", "loyalty", "会员权益", "Membership benefits"),
)


@dataclass(frozen=True)
class Rules:
    contact_cap_days: int = 30
    case_due_hours: int = 48
    detractor_max_nps: int = 6
    low_csat_max: int = 2
    case_window_days: int = 7


class SettingsUpdate(BaseModel):
    """What a tenant may change; every field optional."""

    model_config = ConfigDict(extra="forbid")

    contact_cap_days: int | None = Field(None, ge=0, le=3650)
    case_due_hours: int | None = Field(None, ge=1, le=24 * 60)
    detractor_max_nps: int | None = Field(None, ge=0, le=10)
    low_csat_max: int | None = Field(None, ge=0, le=5)
    case_window_days: int | None = Field(None, ge=0, le=3650)


def ensure_defaults(session: Session) -> None:
    """Give the tenant of ``session`` the default journey and rules if it has none yet."""
    if session.scalar(select(JourneyStage.id).limit(1)) is None:
        stages = {}
        for position, (code, zh, en) in enumerate(DEFAULT_STAGES):
            stage = JourneyStage(code=code, name_zh=zh, name_en=en, position=position)
            session.add(stage)
            stages[code] = stage
        session.flush()
        for position, (code, stage_code, zh, en) in enumerate(DEFAULT_TOUCHPOINTS):
            session.add(
                Touchpoint(
                    code=code,
                    stage_pk=stages[stage_code].id,
                    name_zh=zh,
                    name_en=en,
                    position=position,
                    active=True,
                )
            )
        session.flush()


def rules(session: Session) -> Rules:
    row = session.scalar(select(ExperienceSettings))
    if row is None:
        return Rules()
    return Rules(
        contact_cap_days=row.contact_cap_days,
        case_due_hours=row.case_due_hours,
        detractor_max_nps=row.detractor_max_nps,
        low_csat_max=row.low_csat_max,
        case_window_days=row.case_window_days,
    )


def update_rules(session: Session, change: SettingsUpdate, *, now: datetime) -> Rules:
    current = rules(session)
    merged = Rules(**{**current.__dict__, **change.model_dump(exclude_none=True)})
    row = session.scalar(select(ExperienceSettings))
    if row is None:
        row = ExperienceSettings(updated_at=now, **merged.__dict__)
        session.add(row)
    else:
        for name, value in merged.__dict__.items():
            setattr(row, name, value)
        row.updated_at = now
    session.flush()
    return merged


@dataclass(frozen=True)
class TouchpointView:
    code: str
    stage: str
    stage_name: str
    name: str
    active: bool


def touchpoints(session: Session, lang: str) -> list[TouchpointView]:
    ensure_defaults(session)
    zh = lang.startswith("zh")
    rows = session.execute(
        select(Touchpoint, JourneyStage)
        .join(JourneyStage, JourneyStage.id == Touchpoint.stage_pk)
        .order_by(JourneyStage.position, Touchpoint.position)
    ).all()
    return [
        TouchpointView(
            code=tp.code,
            stage=stage.code,
            stage_name=stage.name_zh if zh else stage.name_en,
            name=tp.name_zh if zh else tp.name_en,
            active=tp.active,
        )
        for tp, stage in rows
    ]


def touchpoint_names(session: Session, lang: str) -> dict[str, str]:
    return {view.code: view.name for view in touchpoints(session, lang)}


class TouchpointInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    stage: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name_zh: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=64)
    active: bool = True


def save_touchpoint(session: Session, body: TouchpointInput) -> TouchpointView:
    """Add a touchpoint or rename/move/deactivate one (codes stay: answers refer to them)."""
    ensure_defaults(session)
    stage = session.scalar(select(JourneyStage).where(JourneyStage.code == body.stage))
    if stage is None:
        known = ", ".join(
            session.scalars(select(JourneyStage.code).order_by(JourneyStage.position))
        )
        raise InvalidInput(
            errors=[FieldError("stage", "core.v.choice", {"value": body.stage, "expected": known})]
        )
    row = session.scalar(select(Touchpoint).where(Touchpoint.code == body.code))
    if row is None:
        last = session.scalar(select(Touchpoint.position).order_by(Touchpoint.position.desc()))
        row = Touchpoint(code=body.code, position=(last or 0) + 1)
        session.add(row)
    row.stage_pk = stage.id
    row.name_zh = body.name_zh
    row.name_en = body.name_en
    row.active = body.active
    session.flush()
    return TouchpointView(body.code, stage.code, stage.name_en, body.name_en, body.active)
