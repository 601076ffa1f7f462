"""HTTP routes for webhook endpoints and the outbox."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from memberlab.core.access import Permission
from memberlab.core.web import RequestContext, requires
from memberlab.webhooks import service
from memberlab.webhooks.schemas import Endpoint, EndpointCreate, EndpointWithSecret, Event

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Manage = Annotated[RequestContext, requires(Permission.WEBHOOKS_MANAGE)]


@router.post(
    "",
    response_model=EndpointWithSecret,
    status_code=201,
    summary="Subscribe an endpoint (its signing secret is shown once)",
)
def create(body: EndpointCreate, ctx: Manage) -> EndpointWithSecret:
    endpoint = service.create_endpoint(
        ctx.session, url=body.url, event_types=body.event_types, now=ctx.now
    )
    return EndpointWithSecret.model_validate(endpoint)


@router.get("", response_model=list[Endpoint], summary="List endpoints")
def list_endpoints(ctx: Manage) -> list[Endpoint]:
    return [Endpoint.model_validate(e) for e in service.list_endpoints(ctx.session)]


@router.delete("/{endpoint_id}", response_model=Endpoint, summary="Stop sending to an endpoint")
def deactivate(endpoint_id: int, ctx: Manage) -> Endpoint:
    return Endpoint.model_validate(service.deactivate(ctx.session, endpoint_id))


@router.get("/events", response_model=list[Event], summary="Outbox events, newest first")
def events(
    ctx: Manage,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Event]:
    return [
        Event.model_validate(e)
        for e in service.list_events(ctx.session, status=status, limit=limit)
    ]


@router.post("/events/{event_id}/retry", response_model=Event, summary="Try a failed event again")
def retry(event_id: int, ctx: Manage) -> Event:
    return Event.model_validate(service.retry(ctx.session, event_id, now=ctx.now))
