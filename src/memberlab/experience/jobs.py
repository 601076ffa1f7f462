"""The experience's time-based work, a function of ``as_of`` like the ledger's jobs (the
server's scheduler runs it every hour; ``memberlab cx jobs`` and ``POST
/api/v1/experience/jobs`` run it by hand). Running it twice for the same moment changes
nothing: invitations and cases are keyed by the event that caused them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from memberlab.experience import cases, invitations
from memberlab.experience.schemas import TriggerRunOut


def run_jobs(session: Session, *, as_of: datetime, base_url: str) -> TriggerRunOut:
    """The experience's time-based work: invitations by trigger, cases for imported answers."""
    run = invitations.run_triggers(session, as_of=as_of, base_url=base_url)
    opened = cases.open_recent(session, as_of=as_of)
    return TriggerRunOut(
        as_of=as_of,
        invited=run.invited,
        skipped_contact_cap=run.skipped_cap,
        skipped_sample=run.skipped_sample,
        cases_opened=opened,
    )
