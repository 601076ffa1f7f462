"""API shapes for members: ``MemberCreate``, ``MemberUpdate``, ``Member`` (detail) and lists."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MemberId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Tag = Annotated[str, Field(min_length=1, max_length=64)]
ShortText = Annotated[str, Field(min_length=1, max_length=100)]


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MemberFields(_Input):
    external_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    mobile: Annotated[str, Field(max_length=32)] | None = Field(
        default=None, description="Mainland numbers without +86, others in international form."
    )
    name: ShortText | None = None
    birthday: date | None = None
    gender: Gender | None = None
    city: ShortText | None = None
    language: Literal["zh-CN", "en"] | None = None
    enrol_channel: Annotated[str, Field(max_length=32)] | None = None
    enrol_store: Annotated[str, Field(max_length=64)] | None = None
    consents: dict[Annotated[str, Field(max_length=64)], bool] | None = None
    tags: list[Tag] | None = None


class MemberCreate(MemberFields):
    member_id: MemberId | None = Field(
        default=None, description="The member number; generated when not given."
    )
    enrolled_at: datetime | None = Field(
        default=None, description="When the member joined; now when not given."
    )


class MemberUpdate(MemberFields):
    """Only the fields present are changed; ``null`` clears a field."""

    status: MemberStatus | None = None


class Member(BaseModel):
    member_id: str
    external_id: str | None
    mobile: str | None = Field(description="Masked unless the key may see personal data.")
    name: str | None
    birthday: date | None
    gender: str | None
    city: str | None
    language: str | None
    enrolled_at: datetime
    enrol_channel: str | None
    enrol_store: str | None
    consents: dict[str, bool]
    tags: list[str]
    status: str
    erased: bool
    created_at: datetime
    updated_at: datetime


class MemberPage(BaseModel):
    items: list[Member]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
