"""Single-use survey links, and the triggers that send them.

A link is ``<public url>/s/<token>``: the token is random (128 bits), only its SHA-256 is
stored, and an answer marks the invitation answered in the same transaction as the answer,
so a link is answered at most once whatever the members' phones do.

Triggers run as a job of ``as_of`` (``run_triggers``), like the ledger's jobs: running it
twice for the same moment invites nobody twice, because each trigger event has a dedupe
key (the survey and the order, or the survey, member and period). Who is asked:

- sampling is decided by a hash of the survey and the event, so a rerun makes the same
  choice and no random state is kept;
- the contact cap: nobody is invited by an automatic trigger if any survey invited them in
  the last ``contact_cap_days`` days (a re-survey after a closed case is exempt: it was
  promised to the member);
- members who said no (``consents.surveys`` false), or are erased or closed, are never asked.

Each invitation is also written to the webhook outbox as ``survey.invitation`` (with the
link), for the client's SMS or WeChat system to deliver.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from memberlab.core.errors import Conflict, NotFound
from memberlab.core.i18n import normalise_language
from memberlab.core.tokens import new_token, token_hash
from memberlab.experience import journey
from memberlab.experience.models import Survey, SurveyInvitation
from memberlab.experience.surveys import (
    SurveyDefinition,
    SurveyStatus,
    TriggerEvent,
    definition_of,
    get_survey,
)
from memberlab.ledger.models import Order
from memberlab.members.models import Member
from memberlab.programs.rules import Notice
from memberlab.webhooks import service as webhooks

LINK_PATH = "/s/"


class InvitationNotFound(NotFound):
    key = "experience.link_unknown"


def sampled(rate: float, *parts: str) -> bool:
    """A stable pseudo-random choice with probability ``rate`` for this event."""
    if rate >= 1:
        return True
    if rate <= 0:
        return False
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def may_ask(member: Member) -> bool:
    return (
        member.status == "active"
        and member.erased_at is None
        and ((member.consents or {}).get("surveys", True) is not False)
    )


@dataclass
class Issued:
    invitation: SurveyInvitation
    url: str  # shown once: only the token's hash is kept


def issue(
    session: Session,
    *,
    survey: Survey,
    member: Member,
    trigger: str,
    dedupe_key: str,
    now: datetime,
    base_url: str,
    valid_days: int,
    touchpoint: str | None = None,
    channel: str | None = None,
    store: str | None = None,
    order_id: str | None = None,
    case_pk: int | None = None,
    language: str | None = None,
) -> Issued:
    """Write one invitation and its outbox event; the caller checks dedupe, cap and sampling."""
    token = new_token()
    lang = normalise_language(language or member.language) or "zh-CN"
    invitation = SurveyInvitation(
        survey_pk=survey.id,
        member_pk=member.id,
        token_hash=token_hash(token),
        dedupe_key=dedupe_key,
        trigger=trigger,
        touchpoint=touchpoint,
        channel=channel,
        store=store,
        order_id=order_id,
        case_pk=case_pk,
        language=lang,
        created_at=now,
        expires_at=now + timedelta(days=valid_days),
    )
    session.add(invitation)
    session.flush()
    url = f"{base_url}{LINK_PATH}{token}"
    webhooks.enqueue(
        session,
        tenant_id=member.tenant_id,
        member_id=member.member_id,
        notices=[
            Notice(
                "survey.invitation",
                now,
                {
                    "survey": survey.code,
                    "invitation": invitation.id,
                    "url": url,
                    "language": lang,
                    "expires_at": invitation.expires_at.isoformat(),
                    "trigger": trigger,
                    "order_id": order_id,
                },
            )
        ],
        now=now,
    )
    return Issued(invitation, url)


def last_invited(session: Session, member_pks: list[int]) -> dict[int, datetime]:
    """When each member was last invited, by any survey."""
    found: dict[int, datetime] = {}
    for start in range(0, len(member_pks), 1000):
        chunk = member_pks[start : start + 1000]
        rows = session.execute(
            select(SurveyInvitation.member_pk, func.max(SurveyInvitation.created_at))
            .where(SurveyInvitation.member_pk.in_(chunk))
            .group_by(SurveyInvitation.member_pk)
        ).all()
        found.update(dict(rows))
    return found


def invite_manually(
    session: Session,
    *,
    survey_code: str,
    member: Member,
    now: datetime,
    base_url: str,
    touchpoint: str | None = None,
    order_id: str | None = None,
    respect_cap: bool = True,
) -> Issued:
    """A link for one member, asked for by a person (API or CLI; retries are the caller's
    Idempotency-Key's business)."""
    survey = get_survey(session, survey_code)
    if survey.status != SurveyStatus.ACTIVE.value:
        raise Conflict("experience.survey_not_active", code=survey.code, status=survey.status)
    if not may_ask(member):
        raise Conflict("experience.member_opted_out", member_id=member.member_id)
    cap = journey.rules(session).contact_cap_days
    last = last_invited(session, [member.id]).get(member.id)
    if respect_cap and cap and last is not None and last > now - timedelta(days=cap):
        raise Conflict(
            "experience.contact_cap",
            member_id=member.member_id,
            last=last.isoformat(timespec="minutes"),
            days=cap,
        )
    definition = definition_of(survey)
    return issue(
        session,
        survey=survey,
        member=member,
        trigger="manual",
        dedupe_key=f"{survey.code}:manual:{member.member_id}:{secrets.token_hex(8)}",
        now=now,
        base_url=base_url,
        valid_days=definition.link_valid_days,
        touchpoint=touchpoint,
        order_id=order_id,
    )


# --- the trigger job ---------------------------------------------------------------------------


@dataclass
class TriggerRun:
    as_of: datetime
    invited: dict[str, int] = field(default_factory=dict)  # survey code -> invitations
    skipped_cap: int = 0
    skipped_sample: int = 0
    urls: list[str] = field(default_factory=list)


def run_triggers(session: Session, *, as_of: datetime, base_url: str) -> TriggerRun:
    """Invite for every active survey's purchase and periodic triggers due by ``as_of``."""
    run = TriggerRun(as_of=as_of)
    cap = timedelta(days=journey.rules(session).contact_cap_days)
    surveys = session.scalars(
        select(Survey).where(Survey.status == SurveyStatus.ACTIVE.value).order_by(Survey.id)
    ).all()
    asked_at: dict[int, datetime] = {}  # this run's invitations, for the cap
    for survey in surveys:
        definition = definition_of(survey)
        for trigger in definition.triggers:
            if trigger.event is TriggerEvent.PURCHASE:
                _after_purchases(session, survey, definition, trigger, run, cap, asked_at, base_url)
            elif trigger.event is TriggerEvent.PERIODIC:
                _periodic(session, survey, definition, trigger, run, cap, asked_at, base_url)
    return run


def _capped(
    session: Session, member_pk: int, at: datetime, cap: timedelta, asked_at: dict[int, datetime]
) -> bool:
    if not cap:
        return False
    if member_pk not in asked_at:
        last = last_invited(session, [member_pk]).get(member_pk)
        if last is not None:
            asked_at[member_pk] = last
    last = asked_at.get(member_pk)
    return last is not None and last > at - cap


def _already(session: Session, key: str) -> bool:
    return (
        session.scalar(select(SurveyInvitation.id).where(SurveyInvitation.dedupe_key == key))
        is not None
    )


def _after_purchases(
    session: Session,
    survey: Survey,
    definition: SurveyDefinition,
    trigger,
    run: TriggerRun,
    cap: timedelta,
    asked_at: dict[int, datetime],
    base_url: str,
) -> None:
    """Purchases whose delay has passed by ``as_of`` and whose link would still be fresh."""
    delay = timedelta(hours=trigger.delay_hours)
    newest = run.as_of - delay
    oldest = max(newest - timedelta(days=definition.link_valid_days), survey.updated_at - delay)
    query = (
        select(Order, Member)
        .join(Member, Member.id == Order.member_pk)
        .where(Order.occurred_at > oldest, Order.occurred_at <= newest)
        .order_by(Order.occurred_at, Order.id)
    )
    if trigger.touchpoints:
        query = query.where(Order.channel.in_(trigger.touchpoints))
    for order, member in session.execute(query).all():
        key = f"{survey.code}:purchase:{order.order_id}"
        if not may_ask(member) or _already(session, key):
            continue
        if not sampled(trigger.sampling_rate, survey.code, order.order_id):
            run.skipped_sample += 1
            continue
        at = order.occurred_at + delay
        if _capped(session, member.id, at, cap, asked_at):
            run.skipped_cap += 1
            continue
        issued = issue(
            session,
            survey=survey,
            member=member,
            trigger="purchase",
            dedupe_key=key,
            now=at,
            base_url=base_url,
            valid_days=definition.link_valid_days,
            touchpoint=order.channel,
            channel=order.channel,
            store=order.store,
            order_id=order.order_id,
        )
        asked_at[member.id] = at
        run.invited[survey.code] = run.invited.get(survey.code, 0) + 1
        run.urls.append(issued.url)


def _periodic(
    session: Session,
    survey: Survey,
    definition: SurveyDefinition,
    trigger,
    run: TriggerRun,
    cap: timedelta,
    asked_at: dict[int, datetime],
    base_url: str,
) -> None:
    """Relationship surveys: each member once per period of ``every_days``, sampled."""
    every = trigger.every_days or 365
    period = int(run.as_of.timestamp() // (every * 86_400))
    members = session.scalars(
        select(Member).where(Member.enrolled_at <= run.as_of).order_by(Member.id)
    ).all()
    for member in members:
        key = f"{survey.code}:periodic:{member.member_id}:{period}"
        if not may_ask(member):
            continue
        if not sampled(trigger.sampling_rate, survey.code, member.member_id, str(period)):
            run.skipped_sample += 1
            continue
        if _already(session, key):
            continue
        if _capped(session, member.id, run.as_of, cap, asked_at):
            run.skipped_cap += 1
            continue
        issued = issue(
            session,
            survey=survey,
            member=member,
            trigger="periodic",
            dedupe_key=key,
            now=run.as_of,
            base_url=base_url,
            valid_days=definition.link_valid_days,
            touchpoint="membership",
        )
        asked_at[member.id] = run.as_of
        run.invited[survey.code] = run.invited.get(survey.code, 0) + 1
        run.urls.append(issued.url)


def find_by_token(session: Session, token: str) -> SurveyInvitation:
    """The invitation of a link (any tenant: the public page has no key)."""
    invitation = session.scalar(
        select(SurveyInvitation).where(SurveyInvitation.token_hash == token_hash(token))
    )
    if invitation is None:
        raise InvitationNotFound()
    return invitation
