"""Idempotent writes: the same key with the same request gets the first answer.

A write runs first and then stores its answer under its key, and commits, in one go: the
answer's row is a plain INSERT *sent* with the write's own statements and the COMMIT (on
PostgreSQL one round trip for them all, see ``core.fastsql``), where claiming the key first
and storing the answer last took two statements and the commit a round trip of its own.
When the key is already stored, or is being stored by a concurrent duplicate (the insert
waits for that transaction to end), the unique key fails the commit; this write's work is
rolled back and the stored answer replayed. A key reused with a different request is a 409
conflict.

A duplicate may fail before it reaches the insert, because the first write's effects are
already in the store: its order id is taken, the points it would redeem are spent. So
when a write fails, the key is looked up too, and a stored answer wins over the error.

So ``replay_or_run`` ends its caller's transaction: an idempotent write is the last thing
its unit of work does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from memberlab.core.db import session_tenant
from memberlab.core.errors import Conflict
from memberlab.core.fastsql import FastStatement
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


# Built once: every write stores its answer with it.
_STORE = FastStatement(IdempotencyRecord.__table__.insert())


def replay_or_run(
    session: Session,
    *,
    scope: str,
    key: str,
    payload: Any,
    now: datetime,
    run: Callable[[], tuple[int, dict[str, Any]]],
) -> Answer:
    """Return the stored answer for ``(scope, key)``, or run the write, store its answer
    and commit."""
    tenant_id = session_tenant(session)
    digest = request_hash(payload)
    try:
        status_code, body = run()
        record = {
            "tenant_id": tenant_id,
            "scope": scope,
            "key": key,
            "request_hash": digest,
            "status_code": status_code,
            "response": body,
            "created_at": now,
        }
        connection = session.connection()
        if connection.in_nested_transaction():
            # in a savepoint (the tests' sessions do this): a key found taken only at the
            # RELEASE would leave the whole transaction failed, as SQLAlchemy does not roll
            # back a savepoint whose release failed; so the answer is stored now
            _STORE.run(connection, record)
        else:
            _STORE.send(connection, record)
        session.commit()
    except Exception as failure:
        try:
            answer = _first_answer(session, tenant_id, scope, key, digest)
        except SQLAlchemyError:  # the store itself fails: the write's own error says more
            raise failure from None
        if answer is None:
            raise
        return answer
    return Answer(status_code, body)


def _first_answer(
    session: Session, tenant_id: int, scope: str, key: str, digest: str
) -> Answer | None:
    """The stored answer for the key, after rolling this write back (None: none stored)."""
    session.rollback()
    record = _stored(session, tenant_id, scope, key)
    return None if record is None else _check(record, digest, scope, key)
