"""One scheduler leads among several server processes: the lock's holder, until it lets go."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from memberlab.core.db import create_db_engine
from memberlab.core.leadership import Leadership


def test_only_one_process_leads_until_it_lets_go(engine: Engine) -> None:
    # two server workers on the same store (each Leadership stands for one process)
    first, second = Leadership(engine), Leadership(engine)

    assert first.acquire() is True
    assert second.acquire() is False
    assert first.acquire() is True  # asking again while leading changes nothing

    first.release()
    assert second.acquire() is True
    assert first.acquire() is False
    second.release()


def test_leaders_of_different_stores_do_not_meet(engine: Engine, tmp_path: Path) -> None:
    other = create_db_engine(f"sqlite:///{tmp_path / 'other.db'}")
    here, there = Leadership(engine), Leadership(other)
    try:
        assert here.acquire() is True
        assert there.acquire() is True
    finally:
        here.release()
        there.release()
        other.dispose()


def test_named_locks_are_separate(engine: Engine) -> None:
    scheduler = Leadership(engine, name="memberlab.scheduler")
    reminders = Leadership(engine, name="memberlab.other")
    try:
        assert scheduler.acquire() is True
        assert reminders.acquire() is True
    finally:
        scheduler.release()
        reminders.release()


def test_an_in_memory_database_is_led_by_its_own_process() -> None:
    memory = create_db_engine("sqlite://")
    leadership = Leadership(memory)
    assert leadership.acquire() is True
    assert Leadership(memory).acquire() is True  # nobody else can open it
    leadership.release()
    memory.dispose()
