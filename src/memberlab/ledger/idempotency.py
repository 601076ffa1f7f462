"""Idempotent writes: the same key with the same request gets the first answer.

A write runs first and then stores its answer under its key, in the same transaction
(``INSERT ... ON CONFLICT DO NOTHING``): one statement per write, where claiming the key
first and storing the answer last took two. When the key is already stored, or is being
stored by a concurrent duplicate (the insert waits for that transaction to end), this
write's work is rolled back and the stored answer replayed. A key reused with a different
request is a 409 conflict.

A duplicate may fail before it reaches the insert, because the first write's effects are
already in the store: its order id is taken, the points it would redeem are spent. So
when a write fails, the key is looked up too, and a stored answer wins over the error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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


_records = IdempotencyRecord.__table__


def _store_statement(insert: Callable[..., Any]) -> FastStatement:
    return FastStatement(insert(_records).on_conflict_do_nothing().returning(_records.c.key))


# Built once: every write stores its answer (PostgreSQL and SQLite both have ON CONFLICT).
_STORE = {
    "postgresql": _store_statement(postgresql_insert),
    "sqlite": _store_statement(sqlite_insert),
}


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
    try:
        status_code, body = run()
        connection = session.connection()
        stored = _STORE[connection.dialect.name].first(
            connection,
            {
                "tenant_id": tenant_id,
                "scope": scope,
                "key": key,
                "request_hash": digest,
                "status_code": status_code,
                "response": body,
                "created_at": now,
            },
        )
    except Exception as failure:
        try:
            answer = _first_answer(session, tenant_id, scope, key, digest)
        except SQLAlchemyError:  # the store itself fails: the write's own error says more
            raise failure from None
        if answer is None:
            raise
        return answer
    if stored is None:
        answer = _first_answer(session, tenant_id, scope, key, digest)
        if answer is None:  # pragma: no cover - a conflicting row cannot vanish
            raise IdempotencyConflict(scope=scope, idempotency_key=key)
        return answer
    return Answer(status_code, body)


def _first_answer(
    session: Session, tenant_id: int, scope: str, key: str, digest: str
) -> Answer | None:
    """The stored answer for the key, after rolling this write back (None: none stored)."""
    session.rollback()
    record = _stored(session, tenant_id, scope, key)
    return None if record is None else _check(record, digest, scope, key)
