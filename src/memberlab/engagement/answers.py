"""The needs questionnaire's answers: a public link the client answers once, or a file
imported by the consultant; stored as the engagement's ``questionnaire`` event and added to
the evidence chain.

A link is ``<public url>/q/<token>``, following the survey links' design: the token is random
(128 bits) and only its SHA-256 is stored; the page needs no login; the questionnaire is
stored with the link, so the answers are checked against the questions the client saw. An
answer marks the link answered with a conditional update in the same transaction as the
event, so a link is answered at most once whatever the phones do. One link is open per
engagement: a new link replaces the one still open.

Every answer is checked (``questionnaire.check_answers``) before anything is written: a bad
answer is named and nothing is stored. The answers then become:

- the ``questionnaire`` event, which hands in the deliverable of the needs-questionnaire
  annex (the status sees it submitted on that day, and late if after its due date);
- an evidence item (``questionnaire``): the answers with their questions in zh-CN and en, as
  JSON, in the engagement's hash chain.

Imported files: YAML or JSON (``answers: {question id: value}``, with ``answered_by`` and
``answered_on`` if wanted, or the answers alone), or
a CSV or XLSX sheet, either two columns (``id`` and ``answer``, one row per question, as
``memberlab engagement questionnaire template`` writes it) or a survey tool's export with
one column per question (by id or by the question's text) and one row per answer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from memberlab.core.db import Database, session_tenant
from memberlab.core.errors import Conflict, FieldError, InvalidInput, NotFound
from memberlab.core.i18n import normalise_language
from memberlab.core.tenants import get_tenant
from memberlab.core.tokens import new_token, token_hash
from memberlab.engagement import service
from memberlab.engagement.definition import Annex
from memberlab.engagement.events import EventKind
from memberlab.engagement.models import Engagement, EngagementEvent, QuestionnaireLink
from memberlab.engagement.questionnaire import (
    QuestionnaireDefinition,
    check_answers,
    default_questionnaire,
    display,
    form_of,
)

LINK_PATH = "/q/"
EVIDENCE_FORMAT = "memberlab-questionnaire/1"


class LinkUnknown(NotFound):
    key = "engagement.questionnaire.link_unknown"


class LinkUsed(Conflict):
    key = "engagement.questionnaire.link_used"


class LinkExpired(Conflict):
    key = "engagement.questionnaire.link_expired"


class LinkReplaced(Conflict):
    key = "engagement.questionnaire.link_replaced"


LINK_PROBLEMS = (LinkUnknown, LinkUsed, LinkExpired, LinkReplaced)


def tenant_today(session: Session, now: dt.datetime) -> dt.date:
    zone = get_tenant(session, session_tenant(session)).timezone
    return now.astimezone(ZoneInfo(zone)).date()


# --- links -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    link: QuestionnaireLink
    url: str  # shown once: only the token's hash is kept


def issue_link(
    session: Session,
    engagement: Engagement,
    *,
    base_url: str,
    actor: str,
    now: dt.datetime,
    language: str | None = None,
    valid_days: int | None = None,
    definition: QuestionnaireDefinition | None = None,
) -> Issued:
    """A new link to the questionnaire; the link still open for this engagement is replaced.

    ``language`` is the page's language (default: the tenant's); the client can switch."""
    definition = definition or default_questionnaire()
    if language is not None and normalise_language(language) is None:
        raise InvalidInput(
            errors=[
                FieldError(
                    "language", "core.v.choice", {"expected": "zh-CN, en", "value": language}
                )
            ]
        )
    tenant = get_tenant(session, session_tenant(session))
    lang = normalise_language(language) or normalise_language(tenant.language) or "zh-CN"
    session.execute(
        update(QuestionnaireLink)
        .where(
            QuestionnaireLink.engagement_pk == engagement.id,
            QuestionnaireLink.answered_at.is_(None),
            QuestionnaireLink.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    token = new_token()
    link = QuestionnaireLink(
        engagement_pk=engagement.id,
        token_hash=token_hash(token),
        questionnaire=definition.model_dump(mode="json"),
        language=lang,
        created_at=now,
        created_by=actor,
        expires_at=now + dt.timedelta(days=valid_days or definition.link_valid_days),
    )
    session.add(link)
    session.flush()
    return Issued(link, f"{base_url.rstrip('/')}{LINK_PATH}{token}")


def tenant_of_link(database: Database, token: str) -> int:
    """The tenant a link belongs to: the one lookup made without a tenant (no key on the page)."""
    with database.session(platform=True) as session:
        found = session.scalar(
            select(QuestionnaireLink.tenant_id).where(
                QuestionnaireLink.token_hash == token_hash(token)
            )
        )
    if found is None:
        raise LinkUnknown()
    return found


@dataclass(frozen=True)
class OpenLink:
    link: QuestionnaireLink
    engagement: Engagement
    definition: QuestionnaireDefinition


def open_link(session: Session, token: str, *, now: dt.datetime) -> OpenLink:
    """The link's questionnaire, for the page; refuses a used, replaced or expired link."""
    link = session.scalar(
        select(QuestionnaireLink).where(QuestionnaireLink.token_hash == token_hash(token))
    )
    if link is None:
        raise LinkUnknown()
    problem: Conflict | None = None
    if link.answered_at is not None:
        problem = LinkUsed()
    elif link.revoked_at is not None:
        problem = LinkReplaced()
    elif link.expires_at <= now:
        problem = LinkExpired(expired=link.expires_at.isoformat(timespec="minutes"))
    if problem is not None:
        problem.language = link.language  # type: ignore[attr-defined]  # the page's language
        raise problem
    engagement = session.get(Engagement, link.engagement_pk)
    assert engagement is not None  # a foreign key
    if link.opened_at is None:
        link.opened_at = now
        session.flush()
    definition = QuestionnaireDefinition.model_validate(link.questionnaire)
    return OpenLink(link, engagement, definition)


def link_state(link: QuestionnaireLink, now: dt.datetime) -> str:
    if link.answered_at is not None:
        return "answered"
    if link.revoked_at is not None:
        return "replaced"
    if link.expires_at <= now:
        return "expired"
    return "open"


# --- storing answers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    event: EngagementEvent
    answers: dict[str, Any]
    replayed: bool
    evidence_seq: int | None


def submit_link(
    session: Session,
    token: str,
    form: Mapping[str, Sequence[str]],
    *,
    now: dt.datetime,
    evidence_root: Path,
) -> Submitted:
    """Store the answers given through a link; one answer per link, whatever happens."""
    opened = open_link(session, token, now=now)
    answers = check_answers(opened.definition, form)
    marked = session.execute(
        update(QuestionnaireLink)
        .where(
            QuestionnaireLink.id == opened.link.id,
            QuestionnaireLink.answered_at.is_(None),
            QuestionnaireLink.revoked_at.is_(None),
        )
        .values(answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkUsed()
    submitted = _store(
        session,
        opened.engagement,
        opened.definition,
        answers,
        source="link",
        language=opened.link.language,
        answered_by=None,
        on=tenant_today(session, now),
        key=f"questionnaire:link:{opened.link.id}",
        actor="questionnaire-link",
        now=now,
        evidence_root=evidence_root,
    )
    opened.link.answered_at = now
    opened.link.event_pk = submitted.event.id
    session.flush()
    return submitted


def import_answers(
    session: Session,
    engagement: Engagement,
    form: Mapping[str, Sequence[str]],
    *,
    actor: str,
    now: dt.datetime,
    evidence_root: Path,
    on: dt.date | None = None,
    answered_by: str | None = None,
    lines: Mapping[str, int] | None = None,
    language: str | None = None,
) -> Submitted:
    """Store answers brought in by the consultant (a file, or JSON through the API).

    Answers to questions the questionnaire does not have are refused too. The same answers
    imported again on the same day are the same event (nothing is stored twice)."""
    definition = default_questionnaire()
    today = tenant_today(session, now)
    answers = check_answers(definition, form, strict=True, lines=lines)
    return _store(
        session,
        engagement,
        definition,
        answers,
        source="import",
        language=normalise_language(language),
        answered_by=answered_by,
        on=on or today,
        key=None,
        actor=actor,
        now=now,
        evidence_root=evidence_root,
    )


def _store(
    session: Session,
    engagement: Engagement,
    definition: QuestionnaireDefinition,
    answers: dict[str, Any],
    *,
    source: str,
    language: str | None,
    answered_by: str | None,
    on: dt.date,
    key: str | None,
    actor: str,
    now: dt.datetime,
    evidence_root: Path,
) -> Submitted:
    from memberlab.engagement.evidence import add_evidence

    spec = service.terms(session, engagement)
    deliverable = next(
        (d.code for d in spec.deliverables if d.annex is Annex.NEEDS_QUESTIONNAIRE), None
    )
    by = (answered_by or str(answers.get("contact_name") or "") or "client").strip()[:100]
    payload: dict[str, Any] = {
        "answers": answers,
        "answered_by": by,
        "source": source,
        "questionnaire": definition.reference,
    }
    if deliverable:
        payload["deliverable"] = deliverable
    if language:
        payload["language"] = language
    recorded = service.record(
        session,
        engagement,
        kind=EventKind.QUESTIONNAIRE,
        on=on,
        payload=payload,
        key=key,
        actor=actor,
        now=now,
        today=tenant_today(session, now),
    )
    event = recorded.event
    if recorded.replayed:
        return Submitted(event, answers, True, event.evidence_seq)
    document = evidence_document(
        engagement.contract_number,
        definition,
        answers,
        source=source,
        answered_by=by,
        on=on,
        submitted_at=now,
        language=language,
    )
    item = add_evidence(
        session,
        evidence_root,
        engagement_pk=engagement.id,
        kind="questionnaire",
        title=f"{definition.title.zh} / {definition.title.en}",
        uploaded_by=actor[:64],
        now=now,
        data=document,
        file_name=f"needs-questionnaire-{engagement.contract_number}-{on:%Y%m%d}.json",
    )
    event.evidence_seq = item.seq
    session.flush()
    return Submitted(event, answers, False, item.seq)


def evidence_document(
    number: str,
    definition: QuestionnaireDefinition,
    answers: dict[str, Any],
    *,
    source: str,
    answered_by: str,
    on: dt.date,
    submitted_at: dt.datetime,
    language: str | None,
) -> bytes:
    """The answers as the evidence file: each with its question in zh-CN and en."""
    items = []
    for question in definition.questions:
        if question.id not in answers:
            continue
        value = answers[question.id]
        items.append(
            {
                "id": question.id,
                "question": {"zh-CN": question.text.zh, "en": question.text.en},
                "answer": value,
                "text": {
                    "zh-CN": display(question, value, "zh-CN"),
                    "en": display(question, value, "en"),
                },
            }
        )
    document = {
        "format": EVIDENCE_FORMAT,
        "contract_number": number,
        "questionnaire": definition.reference,
        "title": {"zh-CN": definition.title.zh, "en": definition.title.en},
        "source": source,
        "language": language,
        "answered_by": answered_by,
        "on": on.isoformat(),
        "submitted_at": submitted_at.astimezone(dt.UTC).isoformat(),
        "answers": items,
    }
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --- reading an answers file -------------------------------------------------------------------

ID_HEADERS = {"id", "question_id", "编号", "题号"}
QUESTION_HEADERS = {"question", "问题", "题目"}
ANSWER_HEADERS = {"answer", "answers", "回答", "答案"}
WRAPPER_FIELDS = ("answers", "answered_by", "answered_on", "language")
# Columns survey tools add around the answers (问卷星, 腾讯问卷, 金数据, Google and Microsoft
# Forms, SurveyMonkey): not questions of ours. The time of submission gives the day answered.
SUBMITTED_HEADERS = {
    "提交答卷时间", "提交时间", "结束答题时间", "完成时间",
    "timestamp", "completion time", "end date", "submitted at", "submission time",
}  # fmt: skip
SURVEY_TOOL_HEADERS = SUBMITTED_HEADERS | {
    "序号", "所用时间", "答题时长", "来源", "来源详情", "来自ip", "ip", "ip地址", "地理位置",
    "总分", "开始答题时间", "填写设备", "微信昵称", "用户id",
    "respondent id", "collector id", "start date", "start time", "ip address",
    "last modified time", "user agent",
}  # fmt: skip
_NUMBERING = re.compile(r"^\s*(?:Q\s*)?\d+\s*[.、．:：)）]\s*", re.IGNORECASE)


@dataclass
class AnswersFile:
    form: dict[str, list[str]]
    lines: dict[str, int] = field(default_factory=dict)  # line (YAML) or row (sheet) of each
    answered_by: str | None = None
    on: dt.date | None = None
    language: str | None = None


def _question_id(definition: QuestionnaireDefinition, header: str) -> str:
    """A column's question: by id, or by its text in either language (numbering and a
    required mark as survey tools write them are ignored)."""
    text = header.strip()
    if definition.question(text) is not None:
        return text
    plain = _NUMBERING.sub("", text).rstrip("*＊ ").casefold()
    for question in definition.questions:
        if plain in (question.text.zh.casefold(), question.text.en.casefold()):
            return question.id
    return text


def read_answers_file(path: Path, *, row: int | None = None) -> AnswersFile:
    """An answers file as a form (question id -> values), with where each answer is written.

    Problems with the file itself are ``InvalidInput`` naming the file (and line)."""
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        return _read_document(path)
    return _read_sheet(path, row)


def _read_document(path: Path) -> AnswersFile:
    from memberlab.programs.validation import InvalidProgram, line_of, load_document

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(
            errors=[
                FieldError(
                    path.name,
                    "engagement.file.unreadable",
                    {"file": path.name, "reason": str(error)},
                )
            ]
        ) from None
    try:
        data, node = load_document(text)
    except InvalidProgram as failure:
        raise InvalidInput(errors=failure.errors) from None
    if not isinstance(data, dict) or not data:
        raise InvalidInput(errors=[FieldError(path.name, "engagement.file.not_mapping", line=1)])
    prefix: tuple[str, ...] = ()
    found = AnswersFile(form={})
    if isinstance(data.get("answers"), dict):
        prefix = ("answers",)
        # YAML 1.1 reads a bare ``on:`` as true: it means the day answered
        data = {("answered_on" if k is True else k): v for k, v in data.items()}
        errors = [
            FieldError(str(k), "core.v.unknown_field", line=line_of(node, (str(k),)))
            for k in data
            if k not in WRAPPER_FIELDS
        ]
        found.answered_by = str(data["answered_by"]) if data.get("answered_by") else None
        found.language = str(data["language"]) if data.get("language") else None
        day = data.get("answered_on")
        if day is not None:
            try:
                found.on = dt.date.fromisoformat(str(day))
            except ValueError:
                line = line_of(node, ("answered_on",))
                errors.append(FieldError("answered_on", "core.v.date", {"value": str(day)},
                                         line=line))  # fmt: skip
        if errors:
            raise InvalidInput(errors=errors)
        data = data["answers"]
    definition = default_questionnaire()
    for key, value in data.items():
        question = _question_id(definition, str(key))
        found.form.setdefault(question, []).extend(form_of(value))
        line = line_of(node, (*prefix, str(key)))
        if line is not None:
            found.lines.setdefault(question, line)
    return found


def _read_sheet(path: Path, row: int | None) -> AnswersFile:
    from memberlab.dataio.sources import read_source

    source = read_source(path)
    frame = source.frame
    headers = {h.strip().casefold(): h for h in source.headers}
    definition = default_questionnaire()
    id_column = next((headers[h] for h in headers if h in ID_HEADERS), None)
    text_column = next((headers[h] for h in headers if h in QUESTION_HEADERS), None)
    answer_column = next((headers[h] for h in headers if h in ANSWER_HEADERS), None)
    found = AnswersFile(form={})
    if answer_column is not None and (id_column or text_column):  # one row per question
        for record in frame.iter_rows(named=True):
            ref = record.get(id_column) if id_column else None
            ref = ref or (record.get(text_column) if text_column else None)
            if not ref:
                continue
            question = _question_id(definition, str(ref))
            found.form.setdefault(question, []).extend(form_of(record.get(answer_column)))
            found.lines.setdefault(question, int(record["_row"]))
        return found
    rows = list(frame.iter_rows(named=True))  # one column per question, one row per answer
    if row is not None:
        rows = [r for r in rows if int(r["_row"]) == row]
        if not rows:
            raise InvalidInput(
                errors=[
                    FieldError(
                        "--row", "engagement.questionnaire.no_row", {"row": row, "file": path.name}
                    )
                ]
            )
    elif len(rows) > 1:
        raise InvalidInput(
            errors=[
                FieldError(
                    path.name,
                    "engagement.questionnaire.many_rows",
                    {"count": len(rows), "first": rows[0]["_row"], "last": rows[-1]["_row"]},
                )
            ]
        )
    (record,) = rows
    for header in source.headers:
        if not header.strip():
            continue
        question = _question_id(definition, header)
        tool_column = header.strip().casefold()
        if definition.question(question) is None and tool_column in SURVEY_TOOL_HEADERS:
            if tool_column in SUBMITTED_HEADERS and found.on is None:
                found.on = _day_of(record.get(header))
            continue
        found.form.setdefault(question, []).extend(form_of(record.get(header)))
        found.lines.setdefault(question, int(record["_row"]))
    return found


def _day_of(value: Any) -> dt.date | None:
    """The day of a submission time as survey tools write it (``2026/1/15 10:23:45``, an
    Excel serial, a datetime); ``None`` when it cannot be read."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value is None or not str(value).strip():
        return None
    import polars as pl

    from memberlab.dataio.values import parse_date

    return pl.select(parse_date(pl.lit(str(value).strip()))).item()


def template_rows(
    definition: QuestionnaireDefinition, lang: str
) -> list[tuple[str, str, str, str]]:
    """The questionnaire as rows to fill in: id, question, choices (or the form), answer."""
    rows = []
    for question in definition.questions:
        text = question.text.get(lang) + (" *" if question.required else "")
        if question.options:
            hint = " / ".join(f"{o.code}: {o.text.get(lang)}" for o in question.options)
        elif question.unit is not None:
            hint = question.unit.get(lang)
        else:
            hint = ""
        rows.append((question.id, text, hint, ""))
    return rows


# --- showing the answers -----------------------------------------------------------------------


def _answers_view(
    definition: QuestionnaireDefinition, answers: Mapping[str, Any], lang: str
) -> list[dict[str, Any]]:
    out = []
    for question in definition.questions:
        if question.id not in answers:
            continue
        section = definition.section(question.section)
        out.append(
            {
                "id": question.id,
                "section": section.title.get(lang) if section else None,
                "question": question.text.get(lang),
                "answer": answers[question.id],
                "text": display(question, answers[question.id], lang),
            }
        )
    known = {q.id for q in definition.questions}
    for key, value in answers.items():  # answers recorded by hand may use their own ids
        if key not in known:
            out.append(
                {
                    "id": key,
                    "section": None,
                    "question": key,
                    "answer": value,
                    "text": value
                    if isinstance(value, str)
                    else json.dumps(value, ensure_ascii=False),
                }
            )
    return out


def view(
    session: Session, engagement: Engagement, *, lang: str, now: dt.datetime
) -> dict[str, Any]:
    """The questionnaire, its links and every set of answers received (the latest last)."""
    links = list(
        session.scalars(
            select(QuestionnaireLink)
            .where(QuestionnaireLink.engagement_pk == engagement.id)
            .order_by(QuestionnaireLink.id)
        )
    )
    by_event = {link.event_pk: link for link in links if link.event_pk is not None}
    default = default_questionnaire()
    submissions = []
    for row in service.event_rows(session, engagement):
        if row.kind != EventKind.QUESTIONNAIRE.value:
            continue
        link = by_event.get(row.id)
        definition = QuestionnaireDefinition.model_validate(link.questionnaire) if link else default
        payload = row.payload
        submissions.append(
            {
                "event_id": row.id,
                "on": row.happened_on.isoformat(),
                "source": payload.get("source") or "manual",
                "answered_by": payload.get("answered_by"),
                "questionnaire": payload.get("questionnaire"),
                "language": payload.get("language"),
                "deliverable": payload.get("deliverable"),
                "evidence_seq": row.evidence_seq,
                "recorded_at": row.recorded_at.isoformat(),
                "answers": _answers_view(definition, payload.get("answers") or {}, lang),
            }
        )
    return {
        "questionnaire": {"reference": default.reference, "title": default.title.get(lang)},
        "answered": bool(submissions),
        "latest": submissions[-1] if submissions else None,
        "submissions": submissions,
        "links": [
            {
                "id": link.id,
                "state": link_state(link, now),
                "language": link.language,
                "created_at": link.created_at.isoformat(),
                "created_by": link.created_by,
                "expires_at": link.expires_at.isoformat(),
                "opened_at": link.opened_at.isoformat() if link.opened_at else None,
                "answered_at": link.answered_at.isoformat() if link.answered_at else None,
            }
            for link in links
        ],
    }
