"""Answering a survey through its link: checking every answer, storing it once.

The public page posts a form (question id -> value; a multiple choice sends one value per
option ticked). Everything is checked before anything is written; then, in one
transaction, the invitation is marked answered with a conditional update (so two posts of
the same link, even at the same instant on two servers, store one answer), the answer is
stored, and an unhappy answer opens a follow-up case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from memberlab.core.db import Database
from memberlab.core.errors import Conflict, FieldError, InvalidInput
from memberlab.experience import cases
from memberlab.experience.invitations import find_by_token
from memberlab.experience.models import Survey, SurveyInvitation, SurveyResponse
from memberlab.experience.surveys import (
    RATING_ATTRIBUTES,
    SCALES,
    QuestionType,
    SurveyDefinition,
    definition_of,
)


class LinkUsed(Conflict):
    key = "experience.link_used"


class LinkExpired(Conflict):
    key = "experience.link_expired"


def tenant_of_link(database: Database, token: str) -> int:
    """The tenant a link belongs to: the one lookup made without a tenant (the page has no key)."""
    with database.session(platform=True) as session:
        return find_by_token(session, token).tenant_id


@dataclass(frozen=True)
class OpenLink:
    invitation: SurveyInvitation
    survey: Survey
    definition: SurveyDefinition


def open_link(session: Session, token: str, *, now: datetime) -> OpenLink:
    """The link's survey, for the page; refuses a used or expired link."""
    invitation = find_by_token(session, token)
    if invitation.answered_at is not None:
        raise LinkUsed()
    if invitation.expires_at <= now:
        raise LinkExpired(expired=invitation.expires_at.isoformat(timespec="minutes"))
    survey = session.get(Survey, invitation.survey_pk)
    assert survey is not None  # a foreign key
    if invitation.opened_at is None:
        invitation.opened_at = now
        session.flush()
    return OpenLink(invitation, survey, definition_of(survey))


def _integer(raw: str, low: int, high: int) -> int | None:
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return value if low <= value <= high else None


def check_answers(
    definition: SurveyDefinition, form: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Every question's answer, typed; ``InvalidInput`` naming each bad or missing one."""
    errors: list[FieldError] = []
    answers: dict[str, Any] = {}
    for question in definition.questions:
        values = [v for v in form.get(question.id, []) if v is not None]
        given = [v for v in values if v.strip()]
        if not given:
            if question.is_required:
                errors.append(FieldError(question.id, "experience.v.answer_required"))
            continue
        kind = question.type
        if kind in SCALES:
            low, high = SCALES[kind]
            value = _integer(given[0], low, high) if len(given) == 1 else None
            if value is None:
                errors.append(
                    FieldError(
                        question.id,
                        "experience.v.score_range",
                        {"value": ", ".join(given)[:50], "low": low, "high": high},
                    )
                )
                continue
            answers[question.id] = value
        elif kind in (QuestionType.SINGLE, QuestionType.MULTIPLE):
            codes = {o.code for o in question.options}
            unknown = [v for v in given if v not in codes]
            if unknown or (kind is QuestionType.SINGLE and len(given) > 1):
                errors.append(
                    FieldError(
                        question.id,
                        "experience.v.option_unknown",
                        {"value": ", ".join(unknown or given)[:80], "expected": ", ".join(codes)},
                    )
                )
                continue
            answers[question.id] = given[0] if kind is QuestionType.SINGLE else sorted(set(given))
        else:  # free text
            text = "\n".join(v.strip() for v in given)
            if len(text) > question.max_length:
                errors.append(
                    FieldError(
                        question.id,
                        "experience.v.text_too_long",
                        {"length": len(text), "max": question.max_length},
                    )
                )
                continue
            answers[question.id] = text
    if errors:
        raise InvalidInput(errors=errors)
    return answers


def submit(
    session: Session, token: str, form: Mapping[str, Sequence[str]], *, now: datetime
) -> SurveyResponse:
    """Store the answer to a link; one answer per link, whatever happens."""
    link = open_link(session, token, now=now)
    answers = check_answers(link.definition, form)
    invitation = link.invitation
    marked = session.execute(
        update(SurveyInvitation)
        .where(SurveyInvitation.id == invitation.id, SurveyInvitation.answered_at.is_(None))
        .values(answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkUsed()
    response = SurveyResponse(
        response_id=f"L{invitation.id}",
        member_pk=invitation.member_pk,
        order_id=invitation.order_id,
        responded_at=now,
        survey=link.survey.kind,
        touchpoint=invitation.touchpoint,
        channel=invitation.channel,
        store=invitation.store,
        language=invitation.language,
        source="link",
        created_at=now,
        survey_pk=link.survey.id,
        invitation_pk=invitation.id,
        answers=answers,
    )
    texts = []
    for question in link.definition.questions:
        value = answers.get(question.id)
        if value is None:
            continue
        if question.type in (QuestionType.NPS, QuestionType.CSAT, QuestionType.CES):
            setattr(response, question.type.value, value)
        elif question.type is QuestionType.RATING and question.attribute in RATING_ATTRIBUTES:
            setattr(response, f"rating_{question.attribute}", value)
        elif question.type is QuestionType.TEXT:
            texts.append(value)
    response.comment = "\n".join(texts) or None
    session.add(response)
    session.flush()
    if invitation.case_pk is None:  # a re-survey after a case does not open another
        cases.open_for_response(session, response, now=now)
    return response


def answered(session: Session, invitation_pk: int) -> SurveyResponse | None:
    return session.scalar(
        select(SurveyResponse).where(SurveyResponse.invitation_pk == invitation_pk)
    )
