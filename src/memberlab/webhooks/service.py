"""Webhooks: events are written to the outbox in the transaction that caused them, and
delivered after commit by ``deliver_due``: signed with HMAC-SHA256, retried with exponential
back-off, and marked failed (visible in the API and CLI) after the last attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from memberlab.core.db import Database
from memberlab.core.errors import FieldError, InvalidInput, NotFound
from memberlab.core.fastsql import FastStatement
from memberlab.core.models import Tenant
from memberlab.core.tenant_cache import StampedCache
from memberlab.programs.rules import Notice
from memberlab.webhooks.models import OutboxEvent, WebhookEndpoint

EVENT_TYPES = (
    "tier.changed",
    "points.earned",
    "points.expiring",
    "redemption",
    "plan.purchased",
    "survey.invitation",  # a link to send to the member (SMS, WeChat, e-mail)
    "case.opened",  # an unhappy answer to follow up
    "engagement.reminder",  # something of a consulting engagement falls due soon
)
MAX_ATTEMPTS = 8
SIGNATURE_HEADER = "X-MemberLab-Signature"


class EndpointNotFound(NotFound):
    key = "webhooks.not_found"


def create_endpoint(
    session: Session, *, url: str, event_types: list[str], now: datetime
) -> WebhookEndpoint:
    errors = []
    if not url.startswith(("http://", "https://")):
        errors.append(FieldError("url", "webhooks.v.url", {"value": url}))
    for index, kind in enumerate(event_types):
        if kind not in EVENT_TYPES:
            errors.append(
                FieldError(
                    f"event_types[{index}]",
                    "core.v.choice",
                    {"expected": ", ".join(EVENT_TYPES), "value": kind},
                )
            )
    if errors:
        raise InvalidInput(errors=errors)
    endpoint = WebhookEndpoint(
        url=url,
        secret="whsec_" + secrets.token_urlsafe(24),
        event_types=event_types,
        active=True,
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def deactivate(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise EndpointNotFound(endpoint_id=endpoint_id)
    endpoint.active = False
    session.flush()
    return endpoint


_endpoints = WebhookEndpoint.__table__
_outbox = OutboxEvent.__table__
_tenants = Tenant.__table__
# the tenant's active endpoints, kept per process (``core.tenant_cache``): one row with no
# endpoint when there is none, so that the answer "none" carries the stamp too
_ACTIVE_ENDPOINTS: StampedCache[list[tuple[int, list[str]]]] = StampedCache(
    FastStatement(
        select(_tenants.c.config_stamp, _endpoints.c.id, _endpoints.c.event_types)
        .select_from(
            _tenants.outerjoin(
                _endpoints,
                (_endpoints.c.tenant_id == _tenants.c.id) & _endpoints.c.active.is_(True),
            )
        )
        .where(_tenants.c.id == bindparam("tenant_id"))
        .order_by(_endpoints.c.id)
    ),
    lambda rows: [(row.id, row.event_types) for row in rows if row.id is not None],
)
_INSERT_EVENTS = FastStatement(_outbox.insert())


def enqueue(
    session: Session,
    *,
    tenant_id: int,
    member_id: str | None,
    notices: list[Notice],
    now: datetime,
) -> int:
    """Write one outbox row per (notice, subscribed endpoint). Returns how many.

    ``member_id`` is None for events about no member (an engagement's reminder)."""
    if not notices:
        return 0
    # prebuilt statements on the connection: this runs with nearly every purchase
    connection = session.connection()
    endpoints = _ACTIVE_ENDPOINTS.get(session, tenant_id)
    if not endpoints:
        return 0
    rows = []
    for notice in notices:
        payload = {
            "type": notice.kind,
            "member_id": member_id,
            "at": notice.at.isoformat(),
            "data": notice.payload,
        }
        dedupe = (
            f"{notice.kind}:{member_id}:{notice.at.isoformat()}:"
            + hashlib.sha256(
                json.dumps(notice.payload, sort_keys=True, default=str).encode()
            ).hexdigest()[:16]
        )
        for endpoint_id, kinds in endpoints:
            if kinds and notice.kind not in kinds:
                continue
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "endpoint_id": endpoint_id,
                    "event_type": notice.kind,
                    "dedupe_key": dedupe,
                    "payload": payload,
                    "created_at": now,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                }
            )
    if rows:
        _INSERT_EVENTS.send_many(connection, rows)
    return len(rows)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at 6 h."""
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 6 * 3600))


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0


Sender = Callable[[str, bytes, dict[str, str]], int]


def http_sender(timeout: float = 5.0) -> Sender:
    def send(url: str, body: bytes, headers: dict[str, str]) -> int:
        return httpx.post(url, content=body, headers=headers, timeout=timeout).status_code

    return send


def deliver_due(
    database: Database, *, now: datetime, send: Sender | None = None, limit: int = 100
) -> DeliveryReport:
    """Deliver the outbox rows that are due, each in its own short transaction."""
    send = send or http_sender()
    report = DeliveryReport()
    with database.session(platform=True) as session:
        due = (
            session.execute(
                select(OutboxEvent.id)
                .where(OutboxEvent.status == "pending", OutboxEvent.next_attempt_at <= now)
                .order_by(OutboxEvent.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
    for event_id in due:
        with database.session(platform=True) as session:
            event = session.get(OutboxEvent, event_id, with_for_update=True)
            if event is None or event.status != "pending":
                continue
            endpoint = session.get(WebhookEndpoint, event.endpoint_id)
            body = json.dumps({"id": event.id, **event.payload}, ensure_ascii=False).encode()
            stamp = str(int(now.timestamp()))
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(endpoint.secret if endpoint else "", stamp, body),
                "X-MemberLab-Event": event.event_type,
            }
            event.attempts += 1
            try:
                status = send(endpoint.url, body, headers) if endpoint else 0
                error = None if 200 <= status < 300 else f"HTTP {status}"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            if error is None:
                event.status, event.delivered_at, event.last_error = "delivered", now, None
                report.delivered += 1
            elif event.attempts >= MAX_ATTEMPTS:
                event.status, event.last_error = "failed", error
                report.failed += 1
            else:
                event.next_attempt_at = now + backoff(event.attempts)
                event.last_error = error
                report.retried += 1
    return report


def list_events(
    session: Session, *, status: str | None = None, limit: int = 100
) -> list[OutboxEvent]:
    query = select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxEvent.status == status)
    return list(session.scalars(query))


def retry(session: Session, event_id: int, *, now: datetime) -> OutboxEvent:
    event = session.get(OutboxEvent, event_id)
    if event is None:
        raise EndpointNotFound(endpoint_id=event_id)
    event.status, event.attempts, event.next_attempt_at = "pending", 0, now
    session.flush()
    return event


def payload_of(event: OutboxEvent) -> dict[str, Any]:
    return {"id": event.id, **event.payload}
