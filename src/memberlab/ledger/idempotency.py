"""Idempotent writes: the same key with the same request gets the first answer.

A write first claims its key (inserting the record in the same transaction as the write).
A concurrent duplicate blocks on the unique key until the first commits, then fails its
insert; ``replay_or_run`` then rolls back and returns the stored answer. A key reused with a
different request is a 409 conflict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from memberlab.core.db import session_tenant
from memberlab.core.errors import Conflict
from memberlab.ledger.models import IdempotencyRecord


class IdempotencyConflict(Conflict):
    key = "ledger.idempotency_conflict"


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def request_hash(payload: Any) -> str:
    text = json.dumps(
        payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _stored(session: Session, tenant_id: int, scope: str, key: str) -> IdempotencyRecord | None:
    return session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.tenant_id == tenant_id,
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
        )
    ).scalar_one_or_none()


def _check(record: IdempotencyRecord, digest: str, scope: str, key: str) -> Answer:
    if record.request_hash != digest:
        raise IdempotencyConflict(scope=scope, idempotency_key=key)
    return Answer(record.status_code, dict(record.response or {}), replayed=True)


def replay_or_run(
    session: Session,
    *,
    scope: str,
    key: str,
    payload: Any,
    now: datetime,
    run: Callable[[], tuple[int, dict[str, Any]]],
) -> Answer:
    """Return the stored answer for ``(scope, key)``, or run the write and store its answer."""
    tenant_id = session_tenant(session)
    digest = request_hash(payload)
    record = _stored(session, tenant_id, scope, key)
    if record is not None:
        return _check(record, digest, scope, key)
    try:
        with session.begin_nested():
            session.execute(
                insert(IdempotencyRecord),
                [
                    {
                        "tenant_id": tenant_id,
                        "scope": scope,
                        "key": key,
                        "request_hash": digest,
                        "status_code": 0,
                        "response": None,
                        "created_at": now,
                    }
                ],
            )
    except IntegrityError:
        # Someone else wrote this key meanwhile (and has committed): answer as they did.
        record = _stored(session, tenant_id, scope, key)
        if record is None:
            raise
        return _check(record, digest, scope, key)
    status_code, body = run()
    session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.tenant_id == tenant_id,
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
        )
        .values(status_code=status_code, response=body)
        .execution_options(synchronize_session=False)
    )
    return Answer(status_code, body)
