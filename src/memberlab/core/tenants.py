"""Tenants and API keys: creation, listing, revocation and authentication.

``api_keys`` is deliberately not tenant-scoped (platform keys have no tenant, and a key is
looked up by its hash before its tenant is known), so every query here names the tenant.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from memberlab.core.access import TENANT_ROLES, Principal, Role
from memberlab.core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from memberlab.core.fastsql import FastStatement
from memberlab.core.models import ApiKey, Tenant

KEY_PREFIX = "ml_"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class TenantNotFound(NotFound):
    key = "core.tenant.not_found"


class ApiKeyNotFound(NotFound):
    key = "core.key.not_found"


def hash_key(secret: str) -> str:
    # Keys are 256-bit random tokens, so a plain SHA-256 is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    """A freshly made key: the only moment the secret exists outside its holder."""

    id: int
    tenant_id: int | None
    role: Role
    secret: str
    prefix: str


def create_tenant(
    session: Session,
    *,
    slug: str,
    name_zh: str,
    name_en: str,
    timezone: str = "Asia/Shanghai",
    currency: str = "CNY",
    language: str = "zh-CN",
    now: datetime,
) -> Tenant:
    if not _SLUG.fullmatch(slug):
        raise InvalidInput("core.tenant.bad_slug", slug=slug)
    if session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise Conflict("core.tenant.exists", slug=slug)
    tenant = Tenant(
        slug=slug,
        name_zh=name_zh,
        name_en=name_en,
        timezone=timezone,
        currency=currency,
        language=language,
        created_at=now,
    )
    session.add(tenant)
    session.flush()
    return tenant


def get_tenant(session: Session, ref: str | int) -> Tenant:
    """A tenant by id or slug (a text ``ref`` is a slug first: slugs may be all digits)."""
    tenant = None
    if isinstance(ref, str):
        tenant = session.scalar(select(Tenant).where(Tenant.slug == ref))
    if tenant is None and (isinstance(ref, int) or ref.isdecimal()):
        tenant = session.scalar(select(Tenant).where(Tenant.id == int(ref)))
    if tenant is None:
        raise TenantNotFound(tenant=str(ref))
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.id)))


def create_key(
    session: Session,
    *,
    role: Role,
    tenant_id: int | None,
    name: str = "",
    created_by: str = "",
    now: datetime,
) -> IssuedKey:
    if role is Role.PLATFORM:
        if tenant_id is not None:
            raise InvalidInput("core.key.platform_has_no_tenant")
    elif role in TENANT_ROLES and tenant_id is None:
        raise InvalidInput("core.key.tenant_required", role=role.value)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = secret[: len(KEY_PREFIX) + 6]
    key = ApiKey(
        tenant_id=tenant_id,
        role=role.value,
        name=name,
        prefix=prefix,
        key_hash=hash_key(secret),
        created_at=now,
        created_by=created_by,
    )
    session.add(key)
    session.flush()
    return IssuedKey(id=key.id, tenant_id=tenant_id, role=role, secret=secret, prefix=prefix)


def list_keys(session: Session, *, tenant_id: int | None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    query = (
        query.where(ApiKey.tenant_id.is_(None))
        if tenant_id is None
        else query.where(ApiKey.tenant_id == tenant_id)
    )
    return list(session.scalars(query))


def revoke_key(session: Session, *, key_id: int, tenant_id: int | None, now: datetime) -> ApiKey:
    """Revoke a key of ``tenant_id`` (``None``: a platform key). Revoking twice is a no-op."""
    query = select(ApiKey).where(ApiKey.id == key_id)
    query = (
        query.where(ApiKey.tenant_id.is_(None))
        if tenant_id is None
        else query.where(ApiKey.tenant_id == tenant_id)
    )
    key = session.scalar(query)
    if key is None:
        raise ApiKeyNotFound(key_id=key_id)
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
    return key


_keys = ApiKey.__table__
_tenants = Tenant.__table__
# Every API request runs this: one prebuilt ``FastStatement``, which also reads the tenant's
# time zone (the ledger needs it) and configuration stamp (``core.tenant_cache``), so no
# second query is made for them.
_KEY_BY_HASH = FastStatement(
    select(
        _keys.c.id,
        _keys.c.role,
        _keys.c.tenant_id,
        _keys.c.name,
        _keys.c.revoked_at,
        _tenants.c.timezone,
        _tenants.c.config_stamp,
    )
    .select_from(_keys.outerjoin(_tenants, _tenants.c.id == _keys.c.tenant_id))
    .where(_keys.c.key_hash == bindparam("key_hash"))
)


def authenticate(session: Session, secret: str) -> Principal:
    """The principal a bearer key stands for; unknown and revoked keys are refused alike."""
    if not secret.startswith(KEY_PREFIX):
        raise Unauthenticated("core.auth.unknown_key")
    key = _KEY_BY_HASH.first(session.connection(), {"key_hash": hash_key(secret)})
    if key is None:
        raise Unauthenticated("core.auth.unknown_key")
    if key.revoked_at is not None:
        raise Unauthenticated("core.auth.revoked_key")
    return Principal(
        key_id=key.id,
        role=Role(key.role),
        tenant_id=key.tenant_id,
        name=key.name,
        timezone=key.timezone,
        config_stamp=key.config_stamp,
    )
