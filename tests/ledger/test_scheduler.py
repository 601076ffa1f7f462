"""The server's scheduler: with several server processes, one leads and runs the jobs."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import Engine

from memberlab.core.app_state import AppState
from memberlab.core.db import Database
from memberlab.core.pii import PersonalDataVault
from memberlab.core.settings import Settings
from memberlab.ledger.scheduler import Scheduler


def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_one_of_two_server_processes_leads_and_the_other_takes_over(engine: Engine) -> None:
    # two schedulers on one store stand for `memberlab serve --workers 2`
    state = AppState(Settings(), Database(engine), PersonalDataVault(None))
    every = timedelta(milliseconds=50)
    first = Scheduler(state, webhooks_every=every, jobs_every=timedelta(hours=1))
    second = Scheduler(state, webhooks_every=every, jobs_every=timedelta(hours=1))
    first.start()
    try:
        assert _wait_for(lambda: first.leadership.held)
        second.start()
        time.sleep(0.3)  # several ticks of the second scheduler
        assert not second.leadership.held

        first.stop()  # the leading process ends
        assert _wait_for(lambda: second.leadership.held)
    finally:
        first.stop()
        second.stop()
