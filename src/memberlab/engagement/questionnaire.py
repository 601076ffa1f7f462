"""The needs questionnaire (需求调查表): its questions, and the checking of an answer.

A questionnaire is written like the other MemberLab files (YAML or JSON), every text a person
reads in zh-CN and en; the default one for a membership-program engagement is
``needs_questionnaire.yaml`` (company and brand, channels and stores, members and the
current program, goals and pain points, budget and data, contacts)::

    code: needs
    version: 1
    title: {zh: 会员项目需求调查表, en: Membership program needs questionnaire}
    sections:
      - {code: members, title: {zh: 会员现状, en: Members today}}
    questions:
      - {id: member_count, section: members, type: number, integer: true, min: 0,
         required: true, text: {zh: 现有会员人数, en: Members today}}
      - id: current_program
        type: choice            # text | number | choice | multi_choice
        options:
          - {code: none, text: {zh: 尚无会员计划, en: No program yet}}
          - {code: points, text: {zh: 积分, en: Points}}

An answer arrives as a form (question id -> the values given: one per ticked box) from the
public page, or from an imported file. ``check_answers`` types every answer and names every
bad one (missing, not a number, out of range, not one of the choices, too long, not an
e-mail address or phone number) before anything is stored. A choice may be given by its
code or by its text in either language; numbers may be written with thousands separators
or with 万 / 亿.

Pure: no I/O besides reading the packaged default.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.programs.schema import LocalText
from memberlab.programs.validation import parse_document, validate_document

__all__ = [
    "InvalidQuestionnaire",
    "Question",
    "QuestionType",
    "QuestionnaireDefinition",
    "check_answers",
    "default_questionnaire",
    "display",
    "form_of",
    "parse_questionnaire_text",
    "validate_questionnaire",
]

Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
MAX_TEXT = 4000
# separators of several choices written in one cell: ; ； , ， 、 | and 问卷星's ┋
_SEPARATORS = re.compile(r"\s*[;；,，、|┋\n]\s*")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-()]{5,24}$")
_MULTIPLIERS = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}


class InvalidQuestionnaire(InvalidInput):
    key = "engagement.questionnaire.invalid"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class QuestionType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    CHOICE = "choice"  # one of the options
    MULTI_CHOICE = "multi_choice"  # any of the options


class Option(_Strict):
    code: Code
    text: LocalText


class Section(_Strict):
    code: Code
    title: LocalText


class Question(_Strict):
    id: Code
    type: QuestionType
    text: LocalText
    help: LocalText | None = None
    section: Code | None = None
    required: bool = False
    options: list[Option] = Field(default_factory=list)  # choice and multi_choice
    # text
    multiline: bool = False
    max_length: Annotated[int, Field(ge=1, le=MAX_TEXT)] = 2000
    format: Literal["email", "phone"] | None = None
    # number
    integer: bool = False
    min: Decimal | None = None
    max: Decimal | None = None
    unit: LocalText | None = None

    def option(self, value: str) -> Option | None:
        """The option ``value`` names: its code, or its text in either language."""
        wanted = value.strip().casefold()
        for option in self.options:
            if wanted in (option.code, option.text.zh.casefold(), option.text.en.casefold()):
                return option
        return None


class QuestionnaireDefinition(_Strict):
    code: Code
    version: Annotated[int, Field(ge=1)] = 1
    title: LocalText
    intro: LocalText | None = None
    thanks: LocalText | None = None
    sections: list[Section] = Field(default_factory=list)
    questions: list[Question]
    link_valid_days: Annotated[int, Field(ge=1, le=365)] = 30

    @property
    def reference(self) -> str:
        return f"{self.code}@{self.version}"

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def section(self, code: str | None) -> Section | None:
        return next((s for s in self.sections if s.code == code), None)


# --- checking a questionnaire ----------------------------------------------------------------


def _semantic_errors(spec: QuestionnaireDefinition) -> list[FieldError]:
    errors: list[FieldError] = []
    if not spec.questions:
        errors.append(FieldError("questions", "engagement.questionnaire.v.no_questions"))
    for path, counted in (
        ("questions", Counter(q.id for q in spec.questions)),
        ("sections", Counter(s.code for s in spec.sections)),
    ):
        for value, n in counted.items():
            if n > 1:
                errors.append(
                    FieldError(path, "engagement.questionnaire.v.duplicate", {"value": value})
                )
    sections = {s.code for s in spec.sections}
    for index, question in enumerate(spec.questions):
        path = f"questions[{index}]"
        choice = question.type in (QuestionType.CHOICE, QuestionType.MULTI_CHOICE)
        if choice and len(question.options) < 2:
            errors.append(FieldError(f"{path}.options", "engagement.questionnaire.v.options"))
        if not choice and question.options:
            errors.append(
                FieldError(
                    f"{path}.options",
                    "engagement.questionnaire.v.unused",
                    {"field": "options", "type": question.type.value},
                )
            )
        if choice:
            codes = Counter(o.code for o in question.options)
            errors.extend(
                FieldError(
                    f"{path}.options", "engagement.questionnaire.v.duplicate", {"value": code}
                )
                for code, n in codes.items()
                if n > 1
            )
        if question.type is not QuestionType.NUMBER:
            for field in ("integer", "min", "max", "unit"):
                if field in question.model_fields_set:
                    errors.append(
                        FieldError(
                            f"{path}.{field}",
                            "engagement.questionnaire.v.unused",
                            {"field": field, "type": question.type.value},
                        )
                    )
        elif question.min is not None and question.max is not None and question.min > question.max:
            errors.append(
                FieldError(
                    f"{path}.max",
                    "engagement.questionnaire.v.bounds",
                    {"min": question.min, "max": question.max},
                )
            )
        if question.type is not QuestionType.TEXT:
            for field in ("multiline", "max_length", "format"):
                if field in question.model_fields_set:
                    errors.append(
                        FieldError(
                            f"{path}.{field}",
                            "engagement.questionnaire.v.unused",
                            {"field": field, "type": question.type.value},
                        )
                    )
        if question.section is not None and question.section not in sections:
            errors.append(
                FieldError(
                    f"{path}.section",
                    "engagement.questionnaire.v.section",
                    {"value": question.section, "expected": ", ".join(sorted(sections)) or "-"},
                )
            )
    return errors


def validate_questionnaire(data: Any, node: Any = None) -> QuestionnaireDefinition:
    return validate_document(
        data,
        node,
        model=QuestionnaireDefinition,
        semantic=_semantic_errors,
        error=InvalidQuestionnaire,
        keys="engagement.questionnaire.v",
    )


def parse_questionnaire_text(text: str) -> QuestionnaireDefinition:
    return parse_document(
        text,
        model=QuestionnaireDefinition,
        semantic=_semantic_errors,
        error=InvalidQuestionnaire,
        keys="engagement.questionnaire.v",
    )


@lru_cache(maxsize=1)
def default_questionnaire() -> QuestionnaireDefinition:
    """The needs questionnaire of a membership-program engagement (packaged)."""
    text = (
        resources.files("memberlab.engagement")
        .joinpath("needs_questionnaire.yaml")
        .read_text(encoding="utf-8")
    )
    return parse_questionnaire_text(text)


# --- checking an answer ----------------------------------------------------------------------


def _number(raw: str) -> Decimal | None:
    text = raw.strip().replace(",", "").replace("，", "").replace(" ", "").replace("_", "")
    text = text.removesuffix("%")
    factor = Decimal(1)
    if text and text[-1] in _MULTIPLIERS:
        factor, text = _MULTIPLIERS[text[-1]], text[:-1]
    try:
        value = Decimal(text) * factor
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _check_number(question: Question, raw: str) -> tuple[Any, FieldError | None]:
    value = _number(raw)
    loc = question.id
    if value is None:
        return None, FieldError(loc, "engagement.questionnaire.v.number", {"value": raw[:40]})
    if question.integer and value != value.to_integral_value():
        return None, FieldError(loc, "engagement.questionnaire.v.integer", {"value": raw[:40]})
    if question.min is not None and value < question.min:
        return None, FieldError(
            loc, "engagement.questionnaire.v.min", {"value": raw[:40], "min": _plain(question.min)}
        )
    if question.max is not None and value > question.max:
        return None, FieldError(
            loc, "engagement.questionnaire.v.max", {"value": raw[:40], "max": _plain(question.max)}
        )
    return (int(value) if question.integer else _plain(value)), None


def _check_choices(question: Question, given: list[str]) -> tuple[Any, FieldError | None]:
    chosen: list[str] = []
    unknown: list[str] = []
    for value in given:
        option = question.option(value)
        parts = (
            [option]
            if option
            else [question.option(p) for p in _SEPARATORS.split(value) if p.strip()]
        )
        if option is None and question.type is QuestionType.MULTI_CHOICE and all(parts):
            chosen.extend(p.code for p in parts if p)
        elif option is not None:
            chosen.append(option.code)
        else:
            unknown.append(value)
    if unknown:
        expected = ", ".join(o.code for o in question.options)
        return None, FieldError(
            question.id,
            "engagement.questionnaire.v.choice",
            {"value": ", ".join(unknown)[:80], "expected": expected},
        )
    chosen = list(dict.fromkeys(chosen))
    if question.type is QuestionType.CHOICE:
        if len(chosen) > 1:
            return None, FieldError(
                question.id,
                "engagement.questionnaire.v.one_choice",
                {"value": ", ".join(chosen)[:80]},
            )
        return chosen[0], None
    order = [o.code for o in question.options]
    return sorted(chosen, key=order.index), None


def _check_text(question: Question, given: list[str]) -> tuple[Any, FieldError | None]:
    text = "\n".join(v.strip() for v in given)
    if len(text) > question.max_length:
        return None, FieldError(
            question.id,
            "engagement.questionnaire.v.too_long",
            {"length": len(text), "max": question.max_length},
        )
    if question.format == "email" and not _EMAIL.match(text):
        return None, FieldError(
            question.id, "engagement.questionnaire.v.email", {"value": text[:80]}
        )
    if question.format == "phone" and not _PHONE.match(text):
        return None, FieldError(
            question.id, "engagement.questionnaire.v.phone", {"value": text[:80]}
        )
    return text, None


def check_answers(
    definition: QuestionnaireDefinition,
    form: Mapping[str, Sequence[str]],
    *,
    strict: bool = False,
    lines: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Every question's answer, typed; ``InvalidInput`` naming each bad or missing one.

    ``strict`` also refuses answers to questions the questionnaire does not have (an imported
    file); ``lines`` gives the line or row of each answer in that file, for the messages.
    """
    lines = lines or {}
    errors: list[FieldError] = []
    answers: dict[str, Any] = {}
    if strict:
        known = [q.id for q in definition.questions]
        for key in form:
            if key not in known:
                errors.append(
                    FieldError(
                        key,
                        "engagement.questionnaire.v.unknown_question",
                        {"value": key, "expected": ", ".join(known)},
                        line=lines.get(key),
                    )
                )
    for question in definition.questions:
        given = [v for v in form.get(question.id, []) if v is not None and str(v).strip()]
        given = [str(v) for v in given]
        if not given:
            if question.required:
                errors.append(
                    FieldError(
                        question.id,
                        "engagement.questionnaire.v.required",
                        line=lines.get(question.id),
                    )
                )
            continue
        if question.type is QuestionType.NUMBER:
            if len(given) > 1:
                value, error = (
                    None,
                    FieldError(
                        question.id,
                        "engagement.questionnaire.v.number",
                        {"value": ", ".join(given)[:40]},
                    ),
                )
            else:
                value, error = _check_number(question, given[0])
        elif question.type in (QuestionType.CHOICE, QuestionType.MULTI_CHOICE):
            value, error = _check_choices(question, given)
        else:
            value, error = _check_text(question, given)
        if error is not None:
            errors.append(
                FieldError(error.loc, error.key, error.params, line=lines.get(question.id))
            )
        else:
            answers[question.id] = value
    if errors:
        raise InvalidInput(errors=errors)
    if not answers:
        raise InvalidInput(errors=[FieldError("answers", "engagement.questionnaire.v.empty")])
    return answers


def form_of(value: Any) -> list[str]:
    """A value from a file (text, number, list, nothing) as the values of a form field."""
    if value is None:
        return []
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in form_of(v)]
    if isinstance(value, Decimal):
        return [_plain(value)]
    return [str(value)]


# --- showing an answer -----------------------------------------------------------------------


def display(question: Question, value: Any, lang: str) -> str:
    """An answer as a person reads it: choices by their text, numbers with their unit."""
    if value is None:
        return ""
    if question.type in (QuestionType.CHOICE, QuestionType.MULTI_CHOICE):
        codes = value if isinstance(value, list) else [value]
        separator = "、" if lang.startswith("zh") else ", "
        texts = []
        for code in codes:
            option = question.option(str(code))
            texts.append(option.text.get(lang) if option else str(code))
        return separator.join(texts)
    if question.type is QuestionType.NUMBER and question.unit is not None:
        unit = question.unit.get(lang)
        return f"{value}{unit}" if unit == "%" or lang.startswith("zh") else f"{value} {unit}"
    return str(value)
