"""HTTP routes for tenants (platform keys), API keys (tenant admins) and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from memberlab.core import tenants as tenant_service
from memberlab.core.access import Permission, Role
from memberlab.core.schemas import (
    IssuedKey,
    Key,
    KeyCreate,
    Me,
    Tenant,
    TenantCreate,
    TenantWithKey,
)
from memberlab.core.web import RequestContext, requires

router = APIRouter()


@router.get("/me", response_model=Me, tags=["access"], summary="Who am I")
def me(ctx: Annotated[RequestContext, requires(None, tenant=False)]) -> Me:
    tenant = (
        Tenant.model_validate(tenant_service.get_tenant(ctx.session, ctx.principal.tenant_id))
        if ctx.principal.tenant_id is not None
        else None
    )
    return Me(key_id=ctx.principal.key_id, role=ctx.principal.role.value, tenant=tenant)


@router.post(
    "/tenants",
    response_model=TenantWithKey,
    status_code=status.HTTP_201_CREATED,
    tags=["tenants"],
    summary="Create a tenant and its first admin key (platform keys only)",
)
def create_tenant(
    body: TenantCreate,
    ctx: Annotated[RequestContext, requires(Permission.TENANTS_MANAGE, tenant=False)],
) -> TenantWithKey:
    tenant = tenant_service.create_tenant(ctx.session, **body.model_dump(), now=ctx.now)
    issued = tenant_service.create_key(
        ctx.session,
        role=Role.ADMIN,
        tenant_id=tenant.id,
        name="admin",
        created_by=ctx.principal.actor,
        now=ctx.now,
    )
    return TenantWithKey(
        tenant=Tenant.model_validate(tenant),
        admin_key=IssuedKey(
            id=issued.id, role=issued.role.value, tenant_id=tenant.id, secret=issued.secret
        ),
    )


@router.get(
    "/tenants", response_model=list[Tenant], tags=["tenants"], summary="List tenants (platform)"
)
def list_tenants(
    ctx: Annotated[RequestContext, requires(Permission.TENANTS_MANAGE, tenant=False)],
) -> list[Tenant]:
    return [Tenant.model_validate(t) for t in tenant_service.list_tenants(ctx.session)]


@router.get("/keys", response_model=list[Key], tags=["access"], summary="List this tenant's keys")
def list_keys(ctx: Annotated[RequestContext, requires(Permission.KEYS_MANAGE)]) -> list[Key]:
    return [
        Key.model_validate(k)
        for k in tenant_service.list_keys(ctx.session, tenant_id=ctx.tenant_id)
    ]


@router.post(
    "/keys",
    response_model=IssuedKey,
    status_code=status.HTTP_201_CREATED,
    tags=["access"],
    summary="Create a key for this tenant (shown once)",
)
def create_key(
    body: KeyCreate, ctx: Annotated[RequestContext, requires(Permission.KEYS_MANAGE)]
) -> IssuedKey:
    issued = tenant_service.create_key(
        ctx.session,
        role=Role(body.role),
        tenant_id=ctx.tenant_id,
        name=body.name,
        created_by=ctx.principal.actor,
        now=ctx.now,
    )
    return IssuedKey(
        id=issued.id, role=issued.role.value, tenant_id=issued.tenant_id, secret=issued.secret
    )


@router.delete("/keys/{key_id}", response_model=Key, tags=["access"], summary="Revoke a key")
def revoke_key(
    key_id: int, ctx: Annotated[RequestContext, requires(Permission.KEYS_MANAGE)]
) -> Key:
    key = tenant_service.revoke_key(
        ctx.session, key_id=key_id, tenant_id=ctx.tenant_id, now=ctx.now
    )
    return Key.model_validate(key)
