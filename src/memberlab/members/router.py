"""HTTP routes for members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from memberlab.core.access import Permission
from memberlab.core.tenants import get_tenant
from memberlab.core.web import RequestContext, requires
from memberlab.members import service
from memberlab.members.schemas import Member, MemberCreate, MemberPage, MemberStatus, MemberUpdate

router = APIRouter(prefix="/members", tags=["members"])


def _ctx(ctx: RequestContext) -> service.MemberContext:
    tenant = get_tenant(ctx.session, ctx.tenant_id)
    return service.MemberContext(vault=ctx.state.vault, timezone=tenant.timezone)


@router.post("", response_model=Member, status_code=status.HTTP_201_CREATED, summary="Enrol")
def enrol(
    body: MemberCreate, ctx: Annotated[RequestContext, requires(Permission.MEMBERS_WRITE)]
) -> Member:
    member_ctx = _ctx(ctx)
    member = service.enrol(ctx.session, body, ctx=member_ctx, now=ctx.now)
    return service.view(
        ctx.session, member, ctx=member_ctx, reveal=ctx.principal.can(Permission.MEMBERS_PII)
    )


@router.get("", response_model=MemberPage, summary="Search members (personal data masked)")
def search(
    ctx: Annotated[RequestContext, requires(Permission.MEMBERS_READ)],
    member_id: str | None = None,
    external_id: str | None = None,
    mobile: str | None = None,
    tag: str | None = None,
    status: MemberStatus | None = None,
    cursor: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MemberPage:
    member_ctx = _ctx(ctx)
    found = service.search(
        ctx.session,
        ctx=member_ctx,
        member_id=member_id,
        external_id=external_id,
        mobile=mobile,
        tag=tag,
        status=status,
        after=cursor,
        limit=limit,
    )
    items = [service.view(ctx.session, m, ctx=member_ctx, reveal=False) for m in found]
    next_cursor = str(found[-1].id) if len(found) == limit else None
    return MemberPage(items=items, next_cursor=next_cursor)


@router.get("/{member_id}", response_model=Member, summary="One member")
def get(
    member_id: str, ctx: Annotated[RequestContext, requires(Permission.MEMBERS_READ)]
) -> Member:
    member_ctx = _ctx(ctx)
    member = service.get(ctx.session, member_id)
    return service.view(
        ctx.session, member, ctx=member_ctx, reveal=ctx.principal.can(Permission.MEMBERS_PII)
    )


@router.patch("/{member_id}", response_model=Member, summary="Change a member's profile")
def update(
    member_id: str,
    body: MemberUpdate,
    ctx: Annotated[RequestContext, requires(Permission.MEMBERS_WRITE)],
) -> Member:
    member_ctx = _ctx(ctx)
    member = service.update(ctx.session, member_id, body, ctx=member_ctx, now=ctx.now)
    return service.view(
        ctx.session, member, ctx=member_ctx, reveal=ctx.principal.can(Permission.MEMBERS_PII)
    )


@router.post("/{member_id}/erase", response_model=Member, summary="Erase personal data (PIPL/GDPR)")
def erase(
    member_id: str, ctx: Annotated[RequestContext, requires(Permission.MEMBERS_ERASE)]
) -> Member:
    member = service.erase(ctx.session, member_id, now=ctx.now)
    return service.view(ctx.session, member, ctx=_ctx(ctx), reveal=False)
