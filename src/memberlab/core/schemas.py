"""API shapes for tenants, keys and the caller."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TenantCreate(_Input):
    slug: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
    name_zh: Annotated[str, Field(min_length=1, max_length=200)]
    name_en: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: str = "Asia/Shanghai"
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    language: Literal["zh-CN", "en"] = "zh-CN"


class Tenant(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name_zh: str
    name_en: str
    timezone: str
    currency: str
    language: str
    created_at: datetime


class KeyCreate(_Input):
    role: Literal["admin", "operator", "analyst", "app"]
    name: Annotated[str, Field(max_length=200)] = ""


class Key(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tenant_id: int | None
    role: str
    name: str
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class IssuedKey(BaseModel):
    id: int
    role: str
    tenant_id: int | None
    secret: str = Field(description="The key itself. Shown only in this response.")


class TenantWithKey(BaseModel):
    tenant: Tenant
    admin_key: IssuedKey


class Me(BaseModel):
    key_id: int | None
    role: str
    tenant: Tenant | None
