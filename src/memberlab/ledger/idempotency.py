"""Idempotent writes: the same key with the same request gets the first answer.

A write first claims its key (inserting the record in the same transaction as the write,
``ON CONFLICT DO NOTHING``). A concurrent duplicate blocks on the unique key until the first
commits, then inserts nothing, and ``replay_or_run`` returns the stored answer. A key reused with a
different request is a 409 conflict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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


def _claim_statement(insert: Callable[..., Any]) -> FastStatement:
    return FastStatement(insert(_records).on_conflict_do_nothing().returning(_records.c.key))


# Built once: the claim runs before every write (PostgreSQL and SQLite both have ON CONFLICT).
_CLAIM = {
    "postgresql": _claim_statement(postgresql_insert),
    "sqlite": _claim_statement(sqlite_insert),
}
_ANSWER = FastStatement(
    update(_records).where(
        _records.c.tenant_id == bindparam("b_tenant_id"),
        _records.c.scope == bindparam("b_scope"),
        _records.c.key == bindparam("b_key"),
    )
)


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
    # Claim the key in one statement. A concurrent claim of the same key waits for the
    # first transaction and then inserts nothing; either way a stored answer is replayed.
    connection = session.connection()
    claim = _CLAIM[connection.dialect.name]
    row = {
        "tenant_id": tenant_id,
        "scope": scope,
        "key": key,
        "request_hash": digest,
        "status_code": 0,
        "response": None,
        "created_at": now,
    }
    if claim.first(connection, row) is None:
        record = _stored(session, tenant_id, scope, key)
        if record is None:  # pragma: no cover - a conflicting row cannot vanish
            raise IdempotencyConflict(scope=scope, idempotency_key=key)
        return _check(record, digest, scope, key)
    status_code, body = run()
    _ANSWER.run(
        connection,
        {
            "b_tenant_id": tenant_id,
            "b_scope": scope,
            "b_key": key,
            "status_code": status_code,
            "response": body,
        },
    )
    return Answer(status_code, body)
