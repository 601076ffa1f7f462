"""The engagement's time-based work: reminders pushed to the client's systems.

``run_jobs`` is a function of ``as_of``, like the ledger's and the experience's jobs (the
server's scheduler runs it every hour; ``memberlab jobs run --as-of`` runs it by hand). For
each engagement not completed, it computes the status on the tenant's working-day calendar
on the tenant's local day of ``as_of`` and, for every item falling due within the reminder
window (``status.reminders``: instalments, deliverables, acceptance windows, training,
standards' periods), writes one ``engagement.reminder`` event to the webhook outbox.

Each reminder is sent once: it is keyed by the item and its due day (``engagement_reminders``),
so running the job twice for the same day, or every day of the window, sends nothing twice.
An item whose due day changes (an agreed change moving a milestone) is reminded again. A
reminder no webhook endpoint subscribes to is not marked sent (``waiting``): it goes out on
the first run after an endpoint subscribes, if it is still due.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from memberlab.core.db import session_tenant
from memberlab.core.tenants import get_tenant
from memberlab.engagement import service
from memberlab.engagement.models import Engagement, ReminderSent
from memberlab.engagement.status import Reminder, reminders
from memberlab.programs.rules import Notice
from memberlab.webhooks import service as webhooks

REMINDER_DAYS = 7  # the window: what falls due within a week of the run
EVENT_TYPE = "engagement.reminder"


@dataclass
class ReminderRun:
    as_of: dt.datetime
    day: dt.date  # the tenant's local day of ``as_of``
    engagements: int = 0
    sent: int = 0  # reminders sent by this run
    already_sent: int = 0  # due in the window, but sent by an earlier run
    waiting: int = 0  # due, but no webhook endpoint takes them yet: sent once one does
    queued: int = 0  # outbox rows written (one per subscribed endpoint)
    items: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "day": self.day.isoformat(),
            "engagements": self.engagements,
            "sent": self.sent,
            "already_sent": self.already_sent,
            "waiting": self.waiting,
            "queued": self.queued,
            "items": self.items,
        }


def reminder_key(reminder: Reminder) -> str:
    return f"{reminder.kind}:{reminder.subject}:{reminder.on.isoformat()}"


def run_jobs(session: Session, *, as_of: dt.datetime, days: int = REMINDER_DAYS) -> ReminderRun:
    """Send the reminders of every open engagement of the session's tenant due by ``as_of``."""
    tenant_id = session_tenant(session)
    zone = get_tenant(session, tenant_id).timezone
    day = as_of.astimezone(ZoneInfo(zone)).date()
    run = ReminderRun(as_of=as_of, day=day)
    engagements = session.scalars(
        select(Engagement).where(Engagement.status != "completed").order_by(Engagement.id)
    ).all()
    for engagement in engagements:
        run.engagements += 1
        spec = service.terms(session, engagement)
        found = service.status(session, engagement, day)
        due = reminders(spec, found, days=days)
        if not due:
            continue
        sent = set(
            session.scalars(
                select(ReminderSent.key).where(ReminderSent.engagement_pk == engagement.id)
            )
        )
        for reminder in due:
            key = reminder_key(reminder)
            if key in sent:
                run.already_sent += 1
                continue
            queued = webhooks.enqueue(
                session,
                tenant_id=tenant_id,
                member_id=None,
                notices=[Notice(EVENT_TYPE, as_of, _payload(engagement, reminder, day))],
                now=as_of,
            )
            if not queued:  # nobody to tell yet: not marked sent, so it goes out later
                run.waiting += 1
                continue
            session.add(
                ReminderSent(
                    engagement_pk=engagement.id,
                    key=key,
                    kind=reminder.kind,
                    subject=reminder.subject,
                    side=reminder.side,
                    due_on=reminder.on,
                    as_of=day,
                    sent_at=as_of,
                    queued=queued,
                )
            )
            sent.add(key)
            run.sent += 1
            run.queued += queued
            run.items.append(
                {
                    "contract_number": engagement.contract_number,
                    "kind": reminder.kind,
                    "subject": reminder.subject,
                    "on": reminder.on.isoformat(),
                }
            )
    session.flush()
    return run


def _payload(engagement: Engagement, reminder: Reminder, day: dt.date) -> dict[str, object]:
    message = reminder.message()
    return {
        "contract_number": engagement.contract_number,
        "kind": reminder.kind,
        "subject": reminder.subject,
        "side": reminder.side,  # who must act: provider or client
        "due": reminder.on.isoformat(),
        "days_left": (reminder.on - day).days,
        "message": {"zh-CN": message.render("zh-CN"), "en": message.render("en")},
    }


def sent_reminders(session: Session, engagement: Engagement) -> list[ReminderSent]:
    return list(
        session.scalars(
            select(ReminderSent)
            .where(ReminderSent.engagement_pk == engagement.id)
            .order_by(ReminderSent.due_on, ReminderSent.id)
        )
    )
