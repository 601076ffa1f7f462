"""Survey definitions: questions in zh-CN and en, triggers, sampling, link validity.

A survey is written as a file (YAML or JSON) or sent as JSON to the API::

    code: after_purchase
    kind: transactional            # transactional | relationship | follow_up
    title: {zh: 消费体验调查, en: How was your visit?}
    questions:
      - {id: nps, type: nps}       # standard wording in both languages when text is left out
      - {id: csat, type: csat}
      - {id: speed, type: rating, attribute: speed, text: {zh: 出品速度, en: Speed}}
      - id: reasons
        type: multiple
        text: {zh: 您最看重什么？, en: What matters most to you?}
        options:
          - {code: price, text: {zh: 价格, en: Price}}
          - {code: taste, text: {zh: 口味, en: Taste}}
      - {id: comment, type: text, required: false}
    triggers:
      - {event: purchase, touchpoints: [store, delivery], sampling_rate: 0.1, delay_hours: 2}
    link_valid_days: 7

Scales: NPS 0-10 ("how likely are you to recommend ..."), CSAT 1-5 (satisfied: 4-5),
CES 1-7 (agreement with "... made it easy for me", 7 = strongly agree), ratings 1-5.
A rating whose ``attribute`` is one of ``RATING_ATTRIBUTES`` is also stored in the answer's
``rating_<attribute>`` column, which the driver analysis reads.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from memberlab.core.errors import Conflict, FieldError, InvalidInput, NotFound
from memberlab.experience.models import Survey
from memberlab.programs.schema import LocalText
from memberlab.programs.validation import parse_document, validate_document

RATING_ATTRIBUTES = ("speed", "staff", "product_quality", "value", "app_usability", "cleanliness")
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7), "rating": (1, 5)}
SCORE_TYPES = ("nps", "csat", "ces")  # at most one of each per survey
MAX_COMMENT = 2000  # characters in a free-text answer

Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class QuestionType(StrEnum):
    NPS = "nps"
    CSAT = "csat"
    CES = "ces"
    RATING = "rating"
    SINGLE = "single"
    MULTIPLE = "multiple"
    TEXT = "text"


class Option(_Strict):
    code: Code
    text: LocalText


class Question(_Strict):
    id: Code
    type: QuestionType
    text: LocalText | None = None  # NPS, CSAT and CES have a standard wording
    required: bool | None = None  # default: scores required, the rest optional
    attribute: Code | None = None  # ratings: what is rated (speed, staff, ...)
    touchpoint: Code | None = None  # ratings: of which touchpoint (default: the link's)
    options: list[Option] = Field(default_factory=list)  # single and multiple choice
    max_length: Annotated[int, Field(ge=1, le=MAX_COMMENT)] = MAX_COMMENT  # text

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.type in SCORE_TYPES


class TriggerEvent(StrEnum):
    PURCHASE = "purchase"  # after a purchase at one of the touchpoints
    CASE_CLOSED = "case_closed"  # after a follow-up case is closed: did we fix it?
    PERIODIC = "periodic"  # relationship NPS: every member every N days, sampled


class Trigger(_Strict):
    event: TriggerEvent
    touchpoints: list[Code] = Field(default_factory=list)  # purchase: empty means all
    sampling_rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    delay_hours: Annotated[int, Field(ge=0, le=24 * 30)] = 0
    every_days: Annotated[int, Field(ge=1, le=3650)] | None = None  # periodic


class SurveyKind(StrEnum):
    TRANSACTIONAL = "transactional"
    RELATIONSHIP = "relationship"
    FOLLOW_UP = "follow_up"


class SurveyDefinition(_Strict):
    code: Code
    kind: SurveyKind = SurveyKind.TRANSACTIONAL
    title: LocalText
    intro: LocalText | None = None
    thanks: LocalText | None = None
    questions: list[Question]
    triggers: list[Trigger] = Field(default_factory=list)
    link_valid_days: Annotated[int, Field(ge=1, le=365)] = 7

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)


class SurveyStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    CLOSED = "closed"


# --- checking a definition -------------------------------------------------------------------


def _semantic_errors(survey: SurveyDefinition) -> list[FieldError]:
    errors: list[FieldError] = []
    if not survey.questions:
        errors.append(FieldError("questions", "experience.v.no_questions"))
    ids = Counter(q.id for q in survey.questions)
    types = Counter(q.type for q in survey.questions if q.type in SCORE_TYPES)
    for index, question in enumerate(survey.questions):
        path = f"questions[{index}]"
        if ids[question.id] > 1:
            errors.append(
                FieldError(f"{path}.id", "experience.v.duplicate", {"value": question.id})
            )
        if types.get(question.type, 0) > 1:
            errors.append(
                FieldError(f"{path}.type", "experience.v.one_score", {"value": question.type})
            )
        choice = question.type in (QuestionType.SINGLE, QuestionType.MULTIPLE)
        if choice and len(question.options) < 2:
            errors.append(FieldError(f"{path}.options", "experience.v.options_needed"))
        if not choice and question.options:
            errors.append(
                FieldError(
                    f"{path}.options", "experience.v.options_unused", {"type": question.type}
                )
            )
        codes = Counter(o.code for o in question.options)
        for o_index, option in enumerate(question.options):
            if codes[option.code] > 1:
                errors.append(
                    FieldError(
                        f"{path}.options[{o_index}].code",
                        "experience.v.duplicate",
                        {"value": option.code},
                    )
                )
        if question.type is QuestionType.RATING and question.attribute is None:
            errors.append(FieldError(f"{path}.attribute", "experience.v.attribute_needed"))
        if question.text is None and question.type not in SCORE_TYPES:
            errors.append(FieldError(f"{path}.text", "experience.v.text_needed"))
    for index, trigger in enumerate(survey.triggers):
        path = f"triggers[{index}]"
        if trigger.event is TriggerEvent.PERIODIC and trigger.every_days is None:
            errors.append(FieldError(f"{path}.every_days", "experience.v.every_days_needed"))
        if trigger.event is not TriggerEvent.PERIODIC and trigger.every_days is not None:
            errors.append(FieldError(f"{path}.every_days", "experience.v.every_days_unused"))
        if trigger.event is not TriggerEvent.PURCHASE and trigger.touchpoints:
            errors.append(FieldError(f"{path}.touchpoints", "experience.v.touchpoints_unused"))
    return errors


def validate_definition(data: Any, node: Any = None) -> SurveyDefinition:
    """Check parsed data; raise ``InvalidInput`` listing every problem (with lines from a file)."""
    return validate_document(
        data, node, model=SurveyDefinition, semantic=_semantic_errors, error=InvalidInput,
        keys="experience.v",
    )  # fmt: skip


def parse_definition_text(text: str) -> SurveyDefinition:
    """A survey file's text (YAML or JSON)."""
    return parse_document(
        text, model=SurveyDefinition, semantic=_semantic_errors, error=InvalidInput,
        keys="experience.v",
    )  # fmt: skip


# --- storing definitions ---------------------------------------------------------------------


class SurveyNotFound(NotFound):
    key = "experience.survey_not_found"


def get_survey(session: Session, code: str) -> Survey:
    survey = session.scalar(select(Survey).where(Survey.code == code))
    if survey is None:
        raise SurveyNotFound(code=code)
    return survey


def definition_of(survey: Survey) -> SurveyDefinition:
    return SurveyDefinition.model_validate(survey.definition)


def save_survey(
    session: Session, definition: SurveyDefinition, *, now: datetime, actor: str
) -> tuple[Survey, bool]:
    """Create a survey, or change a draft one; ``(survey, created)``.

    Once a survey is active its questions are what members answered: change it by closing
    it and creating a new code, so that answers always match their questions.
    """
    data = definition.model_dump(mode="json", exclude_none=True)
    existing = session.scalar(select(Survey).where(Survey.code == definition.code))
    if existing is None:
        survey = Survey(
            code=definition.code,
            kind=definition.kind.value,
            status=SurveyStatus.DRAFT.value,
            definition=data,
            created_at=now,
            updated_at=now,
            created_by=actor,
        )
        session.add(survey)
        session.flush()
        return survey, True
    if existing.status != SurveyStatus.DRAFT.value:
        raise Conflict("experience.survey_not_draft", code=existing.code, status=existing.status)
    existing.kind = definition.kind.value
    existing.definition = data
    existing.updated_at = now
    session.flush()
    return existing, False


_MOVES = {
    SurveyStatus.DRAFT: {SurveyStatus.ACTIVE, SurveyStatus.CLOSED},
    SurveyStatus.ACTIVE: {SurveyStatus.CLOSED},
    SurveyStatus.CLOSED: set(),
}


def set_status(session: Session, code: str, status: SurveyStatus, *, now: datetime) -> Survey:
    """Activate (start inviting) or close (stop inviting; open links still work) a survey."""
    survey = get_survey(session, code)
    current = SurveyStatus(survey.status)
    if status == current:
        return survey
    if status not in _MOVES[current]:
        raise Conflict(
            "experience.survey_status_move", code=code, status=current.value, to=status.value
        )
    survey.status = status.value
    survey.updated_at = now
    session.flush()
    return survey


def list_surveys(session: Session) -> list[Survey]:
    return list(session.scalars(select(Survey).order_by(Survey.id)))
