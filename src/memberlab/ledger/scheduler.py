"""The server's scheduler: runs the time-based jobs of every tenant and delivers webhooks.

Jobs are functions of ``as_of`` and idempotent, so running them every hour (and after a
restart, at once) is safe: each run brings every member up to the present.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from memberlab.core.app_state import AppState
from memberlab.core.leadership import Leadership
from memberlab.core.tenants import list_tenants
from memberlab.engagement.jobs import run_jobs as run_engagement_jobs
from memberlab.experience.jobs import run_jobs as run_experience_jobs
from memberlab.ledger.jobs import run_jobs
from memberlab.ledger.service import LedgerContext
from memberlab.programs.service import NoActiveProgram
from memberlab.webhooks.service import deliver_due

log = logging.getLogger("memberlab.scheduler")


class Scheduler:
    def __init__(
        self,
        state: AppState,
        *,
        jobs_every: timedelta = timedelta(hours=1),
        webhooks_every: timedelta = timedelta(seconds=5),
    ) -> None:
        self.state = state
        self.jobs_every = jobs_every
        self.webhooks_every = webhooks_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # with several server processes, only the one holding this runs jobs and deliveries
        self.leadership = Leadership(state.database.engine)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="memberlab-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.leadership.release()

    def run_jobs_once(self) -> None:
        now = self.state.clock()
        with self.state.database.session(platform=True) as session:
            tenants = [(t.id, t.timezone) for t in list_tenants(session)]
        for tenant_id, zone in tenants:
            try:
                with self.state.database.session(tenant_id=tenant_id) as session:
                    ctx = LedgerContext(
                        session, tenant_id, now, self.state.vault, "scheduler", zone
                    )
                    report = run_jobs(ctx, as_of=now)
                log.info("jobs for tenant %s: %s", tenant_id, report.model_dump())
            except NoActiveProgram:
                pass
            except Exception:
                log.exception("jobs failed for tenant %s", tenant_id)
            try:
                with self.state.database.session(tenant_id=tenant_id) as session:
                    invited = run_experience_jobs(
                        session, as_of=now, base_url=self.state.settings.resolved_public_url
                    )
                log.info("experience jobs for tenant %s: %s", tenant_id, invited.model_dump())
            except Exception:
                log.exception("experience jobs failed for tenant %s", tenant_id)
            try:
                with self.state.database.session(tenant_id=tenant_id) as session:
                    reminded = run_engagement_jobs(session, as_of=now)
                log.info("engagement reminders for tenant %s: %s", tenant_id, reminded.summary())
            except Exception:
                log.exception("engagement reminders failed for tenant %s", tenant_id)

    def _loop(self) -> None:
        next_jobs = self.state.clock()
        while not self._stop.is_set():
            now = self.state.clock()
            try:
                leading = self.leadership.acquire()
            except Exception:
                log.exception("could not ask for the scheduler's leadership")
                leading = False
            if not leading:  # another server process runs the jobs; ask again next tick
                self._stop.wait(self.webhooks_every.total_seconds())
                continue
            if now >= next_jobs:
                self.run_jobs_once()
                next_jobs = now + self.jobs_every
            try:
                deliver_due(self.state.database, now=now)
            except Exception:
                log.exception("webhook delivery failed")
            self._stop.wait(self.webhooks_every.total_seconds())
