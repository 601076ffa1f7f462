"""``replay_or_run``: a write runs, then stores its answer under its key; a key already
stored makes the write roll back and the first answer come back instead."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import TenantWithKeys, make_tenant
from memberlab.core.app_state import AppState
from memberlab.ledger.idempotency import Answer, IdempotencyConflict, replay_or_run
from memberlab.ledger.models import IdempotencyRecord


@pytest.fixture
def acme(state: AppState) -> TenantWithKeys:
    return make_tenant(state)


def write(state: AppState, tenant: TenantWithKeys, payload: Any, run: Any) -> Answer:
    with state.database.session(tenant_id=tenant.tenant.id) as session:
        return replay_or_run(
            session, scope="test", key="k-1", payload=payload, now=state.clock(), run=run(session)
        )


def leaves_a_mark(state: AppState, name: str, answer: dict[str, Any]) -> Any:
    """A write that stores a row of its own (under another scope) and answers ``answer``."""

    def bind(session: Session) -> Any:
        def run() -> tuple[int, dict[str, Any]]:
            session.add(
                IdempotencyRecord(
                    scope="mark",
                    key=name,
                    request_hash="",
                    status_code=0,
                    created_at=state.clock(),
                )
            )
            session.flush()
            return 201, answer

        return run

    return bind


def fails(session: Session) -> Any:
    def run() -> tuple[int, dict[str, Any]]:
        raise RuntimeError("nothing left to redeem")

    return run


def marks(state: AppState, tenant: TenantWithKeys) -> list[str]:
    with state.database.session(tenant_id=tenant.tenant.id) as session:
        return list(
            session.scalars(select(IdempotencyRecord.key).where(IdempotencyRecord.scope == "mark"))
        )


def test_the_first_write_runs_and_its_answer_is_stored(
    state: AppState, acme: TenantWithKeys
) -> None:
    answer = write(state, acme, {"n": 1}, leaves_a_mark(state, "first", {"ok": 1}))

    assert answer == Answer(201, {"ok": 1})
    assert marks(state, acme) == ["first"]


def test_the_same_key_and_body_replays_the_first_answer_and_writes_nothing(
    state: AppState, acme: TenantWithKeys
) -> None:
    write(state, acme, {"n": 1}, leaves_a_mark(state, "first", {"ok": 1}))

    again = write(state, acme, {"n": 1}, leaves_a_mark(state, "second", {"ok": 2}))

    assert again == Answer(201, {"ok": 1}, replayed=True)
    assert marks(state, acme) == ["first"]


def test_a_retry_that_would_now_fail_still_gets_the_first_answer(
    state: AppState, acme: TenantWithKeys
) -> None:
    # e.g. a redemption retried after it spent the points it asks for
    write(state, acme, {"n": 1}, leaves_a_mark(state, "first", {"ok": 1}))

    assert write(state, acme, {"n": 1}, fails) == Answer(201, {"ok": 1}, replayed=True)


def test_a_failing_write_with_a_new_key_raises_its_own_error(
    state: AppState, acme: TenantWithKeys
) -> None:
    with pytest.raises(RuntimeError, match="nothing left"):
        write(state, acme, {"n": 1}, fails)

    with state.database.session(tenant_id=acme.tenant.id) as session:
        assert session.scalars(select(IdempotencyRecord)).all() == []


def test_the_same_key_with_another_body_is_a_conflict_and_writes_nothing(
    state: AppState, acme: TenantWithKeys
) -> None:
    write(state, acme, {"n": 1}, leaves_a_mark(state, "first", {"ok": 1}))

    with pytest.raises(IdempotencyConflict):
        write(state, acme, {"n": 2}, leaves_a_mark(state, "second", {"ok": 2}))
    with pytest.raises(IdempotencyConflict):
        write(state, acme, {"n": 2}, fails)
    assert marks(state, acme) == ["first"]
