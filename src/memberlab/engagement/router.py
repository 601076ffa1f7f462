"""HTTP routes of the engagement: the terms (versions), what happens (events), agreed
changes, and where it stands."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Header, Query, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from memberlab.core.access import Permission
from memberlab.core.i18n import current_language
from memberlab.core.tenants import get_tenant
from memberlab.core.web import RequestContext, requires
from memberlab.engagement import answers, holidays, service
from memberlab.engagement.calendar import WorkingCalendar, default_calendar
from memberlab.engagement.definition import validate_definition
from memberlab.engagement.events import EventKind
from memberlab.engagement.status import EngagementStatus, describe_breach

router = APIRouter(prefix="/engagements", tags=["engagements"])
Manage = Annotated[RequestContext, requires(Permission.ENGAGEMENTS_MANAGE)]
Read = Annotated[RequestContext, requires(Permission.REPORTS_READ)]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    on: dt.date
    payload: dict[str, Any] = Field(default_factory=dict)


class ChangeApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: dt.date
    decided_by: str = Field(min_length=1, max_length=100)
    terms: dict[str, Any]


def _today(ctx: RequestContext) -> dt.date:
    zone = get_tenant(ctx.session, ctx.tenant_id).timezone
    return ctx.now.astimezone(ZoneInfo(zone)).date()


def _summary(engagement: Any) -> dict[str, Any]:
    return {
        "contract_number": engagement.contract_number,
        "status": engagement.status,
        "current_version": engagement.current_version,
        "created_at": engagement.created_at.isoformat(),
    }


def status_view(found: EngagementStatus, lang: str) -> dict[str, Any]:
    """Where an engagement stands, for JSON: dates, states, amounts, messages in ``lang``."""

    def money(value: Any) -> str:
        return format(value, "f")

    return {
        "as_of": found.as_of.isoformat(),
        "signed_on": found.signed_on.isoformat() if found.signed_on else None,
        "instalments": [
            {
                "code": s.code,
                "payable": money(s.payable),
                "paid": money(s.paid),
                "outstanding": money(s.outstanding),
                "state": s.state,
                "due": s.due.date.isoformat() if s.due else None,
                "due_provisional": s.due.provisional if s.due else None,
                "due_rule": s.due.describe(lang) if s.due else None,  # type: ignore[arg-type]
                "due_calendar_version": s.due.calendar_version if s.due else None,
                "days_overdue": s.days_overdue,
            }
            for s in found.schedule.instalments
        ],
        "deliverables": [
            {
                "code": d.code,
                "by": d.by.value,
                "due": d.due.isoformat(),
                "state": d.state,
                "submitted_on": d.submitted_on.isoformat() if d.submitted_on else None,
                "accepted_on": d.accepted_on.isoformat() if d.accepted_on else None,
                "late_days": d.late_days,
            }
            for d in found.deliverables
        ],
        "milestones": {k: v.isoformat() if v else None for k, v in found.milestones.items()},
        "standards": [
            {
                "code": s.code,
                "target": money(s.target),
                "state": s.state,
                "rounds": [
                    {"on": day.isoformat(), "value": money(value), "passed": passed}
                    for day, value, passed in s.rounds
                ],
                "improvement_rounds_left": s.improvement_rounds_left,
            }
            for s in found.standards
        ],
        "breaches": [
            {
                "type": b.breach_type.value,
                "subject": b.subject,
                "clause": b.clause,
                "since": b.since.isoformat(),
                "amount": money(b.result.amount) if b.result else None,
                "description": describe_breach(b).render(lang),  # type: ignore[arg-type]
                "warnings": [w.render(lang) for w in b.result.warnings]  # type: ignore[arg-type]
                if b.result
                else [],
            }
            for b in found.breaches
        ],
        "penalties_owed": {k: money(v) for k, v in found.penalties_total.items()},
        "warnings": [w.render(lang) for w in found.warnings],  # type: ignore[arg-type]
        "calendar": calendar_view(found.calendar),
    }


def calendar_view(calendar: WorkingCalendar | None) -> dict[str, Any]:
    """The working-day calendar dates were computed on: its version and its override."""
    calendar = calendar or default_calendar()
    override = calendar.override
    return {
        "version": calendar.version,
        "override": {
            "label": override.label,
            "source": override.source,
            "dated": override.dated.isoformat() if override.dated else None,
            "sha256": override.sha256,
        }
        if override
        else None,
    }


@router.post("/validate", summary="Check engagement terms without storing them")
def validate(body: dict[str, Any], ctx: Manage) -> dict[str, Any]:
    spec = validate_definition(body)
    return {"valid": True, "contract_number": spec.contract_number}


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an engagement from terms")
def create(body: dict[str, Any], ctx: Manage) -> dict[str, Any]:
    spec = validate_definition(body)
    engagement = service.create(ctx.session, spec, actor=ctx.principal.actor, now=ctx.now)
    return _summary(engagement)


@router.get("", summary="Every engagement")
def list_all(ctx: Read) -> list[dict[str, Any]]:
    return [_summary(e) for e in service.list_engagements(ctx.session)]


# --- the tenant's holiday table (before "/{number}": these paths are not contract numbers) ----


class HolidaysIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The override, in the form of holidays_cn.yaml (YAML).")
    source: str = Field(description="Where the table comes from: a notice, a company policy.")
    file_name: str | None = Field(default=None, max_length=300)


@router.get("/calendar/holidays", summary="The working-day calendar: built-in table and override")
def get_holidays(ctx: Read) -> dict[str, Any]:
    return holidays.view(ctx.session)


@router.put(
    "/calendar/holidays",
    summary="Store the tenant's holiday override (checked; every problem with its line)",
)
def put_holidays(body: HolidaysIn, ctx: Manage) -> dict[str, Any]:
    holidays.store(
        ctx.session, text=body.text, source=body.source, actor=ctx.principal.actor,
        now=ctx.now, file_name=body.file_name,
    )  # fmt: skip
    return holidays.view(ctx.session)


@router.delete("/calendar/holidays", summary="Remove the override: the built-in table applies")
def delete_holidays(ctx: Manage) -> dict[str, Any]:
    holidays.remove(ctx.session, actor=ctx.principal.actor, now=ctx.now)
    return holidays.view(ctx.session)


@router.get("/{number}", summary="One engagement with the terms in force")
def get_one(number: str, ctx: Read) -> dict[str, Any]:
    engagement = service.get(ctx.session, number)
    terms = service.terms(ctx.session, engagement)
    return {**_summary(engagement), "terms": terms.model_dump(mode="json")}


@router.get("/{number}/versions", summary="Every version of the terms, with why it changed")
def get_versions(number: str, ctx: Read) -> list[dict[str, Any]]:
    engagement = service.get(ctx.session, number)
    return [
        {
            "version": v.version,
            "reason": v.reason,
            "change_code": v.change_code,
            "content_hash": v.content_hash,
            "created_at": v.created_at.isoformat(),
            "created_by": v.created_by,
        }
        for v in service.versions(ctx.session, engagement)
    ]


@router.post("/{number}/events", summary="Record what happened (Idempotency-Key optional)")
def post_event(
    number: str,
    body: EventIn,
    ctx: Manage,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    engagement = service.get(ctx.session, number)
    recorded = service.record(
        ctx.session,
        engagement,
        kind=body.kind,
        on=body.on,
        payload=body.payload,
        key=idempotency_key,
        actor=ctx.principal.actor,
        now=ctx.now,
        today=_today(ctx),
    )
    event = recorded.event
    return JSONResponse(
        {"id": event.id, "kind": event.kind, "on": event.happened_on.isoformat(),
         "payload": event.payload, "key": event.key},
        status_code=status.HTTP_200_OK if recorded.replayed else status.HTTP_201_CREATED,
        headers={"Idempotent-Replayed": "true"} if recorded.replayed else {},
    )  # fmt: skip


@router.get("/{number}/events", summary="What happened, in order")
def get_events(number: str, ctx: Read) -> list[dict[str, Any]]:
    engagement = service.get(ctx.session, number)
    return [
        {
            "id": e.id,
            "kind": e.kind,
            "on": e.happened_on.isoformat(),
            "payload": e.payload,
            "recorded_by": e.recorded_by,
            "recorded_at": e.recorded_at.isoformat(),
        }
        for e in service.event_rows(ctx.session, engagement)
    ]


@router.get("/{number}/status", summary="Where it stands: payments, deliverables, breaches")
def get_status(number: str, ctx: Read, as_of: dt.date | None = None) -> dict[str, Any]:
    engagement = service.get(ctx.session, number)
    found = service.status(ctx.session, engagement, as_of or _today(ctx))
    return status_view(found, current_language())


@router.post(
    "/{number}/changes/{code}/approve",
    status_code=status.HTTP_201_CREATED,
    summary="Approve a change request: its new terms become the next version",
)
def approve_change(number: str, code: str, body: ChangeApproval, ctx: Manage) -> dict[str, Any]:
    engagement = service.get(ctx.session, number)
    version = service.approve_change(
        ctx.session,
        engagement,
        code=code,
        new_terms=body.terms,
        on=body.on,
        decided_by=body.decided_by,
        actor=ctx.principal.actor,
        now=ctx.now,
        today=_today(ctx),
    )
    return {"version": version.version, "reason": version.reason, "change_code": code}


@router.get("/{number}/reminders", summary="What falls due in the next days")
def get_reminders(
    number: str, ctx: Read, days: Annotated[int, Query(ge=1, le=366)] = 7
) -> list[dict[str, Any]]:
    from memberlab.engagement.jobs import reminder_key, sent_reminders
    from memberlab.engagement.status import reminders

    engagement = service.get(ctx.session, number)
    found = service.status(ctx.session, engagement, _today(ctx))
    spec = service.terms(ctx.session, engagement)
    lang = current_language()
    sent = {r.key: r.sent_at for r in sent_reminders(ctx.session, engagement)}
    return [
        {"on": r.on.isoformat(), "kind": r.kind, "subject": r.subject, "side": r.side,
         "message": r.message().render(lang),  # type: ignore[arg-type]
         "sent_at": sent[reminder_key(r)].isoformat() if reminder_key(r) in sent else None}
        for r in reminders(spec, found, days=days)
    ]  # fmt: skip


class MeasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: dt.date | None = None


@router.post(
    "/{number}/standards/{code}/measure",
    status_code=status.HTTP_201_CREATED,
    summary="Measure a standard from the data of its period and record the assessment",
)
def measure_standard(number: str, code: str, body: MeasureIn, ctx: Manage) -> dict[str, Any]:
    engagement = service.get(ctx.session, number)
    zone = get_tenant(ctx.session, ctx.tenant_id).timezone
    today = _today(ctx)
    recorded = service.measure_standard(
        ctx.session, engagement, code, on=body.on or today, timezone=zone,
        actor=ctx.principal.actor, now=ctx.now, today=today,
    )  # fmt: skip
    event = recorded.event
    return {"on": event.happened_on.isoformat(), **event.payload}


# --- evidence ------------------------------------------------------------------------------------


def _evidence_root(ctx: RequestContext) -> Path:
    return Path(ctx.state.settings.data_dir) / "evidence"


def _item(item: Any) -> dict[str, Any]:
    return {
        "seq": item.seq,
        "kind": item.kind,
        "title": item.title,
        "file_name": item.file_name,
        "sha256": item.sha256,
        "size": item.size,
        "uploaded_at": item.uploaded_at.isoformat(),
        "uploaded_by": item.uploaded_by,
        "chain_hash": item.chain_hash,
    }


@router.post(
    "/{number}/evidence",
    status_code=status.HTTP_201_CREATED,
    summary="Add a file to the evidence chain (multipart: file, kind, title)",
)
async def add_evidence(
    number: str,
    ctx: Manage,
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form()],
    title: Annotated[str, Form()],
) -> dict[str, Any]:
    from memberlab.engagement.evidence import MAX_FILE_BYTES, add_evidence

    engagement = service.get(ctx.session, number)
    data = await file.read(MAX_FILE_BYTES + 1)  # one byte more says "too large"
    item = add_evidence(
        ctx.session, _evidence_root(ctx), engagement_pk=engagement.id, kind=kind, title=title,
        uploaded_by=ctx.principal.actor, now=ctx.now, data=data,
        file_name=file.filename or "upload",
    )  # fmt: skip
    return _item(item)


@router.get("/{number}/evidence", summary="The evidence chain")
def list_evidence(number: str, ctx: Read) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from memberlab.engagement.models import EvidenceItem

    engagement = service.get(ctx.session, number)
    items = ctx.session.scalars(
        select(EvidenceItem)
        .where(EvidenceItem.engagement_pk == engagement.id)
        .order_by(EvidenceItem.seq)
    )
    return [_item(i) for i in items]


@router.get("/{number}/evidence/verify", summary="Check every file and the chain")
def verify_evidence(number: str, ctx: Read) -> dict[str, Any]:
    from memberlab.engagement.evidence import verify

    engagement = service.get(ctx.session, number)
    report = verify(ctx.session, _evidence_root(ctx), engagement.id)
    lang = current_language()
    return {
        "ok": report.ok,
        "final_chain_hash": report.final_chain_hash,
        "items": [
            {"seq": i.seq, "ok": i.ok, "problems": [f.message(lang) for f in i.findings]}
            for i in report.items
        ],
        "report": report.render(lang),
    }


# --- the needs questionnaire -------------------------------------------------------------------


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str | None = Field(default=None, description="zh-CN or en (default: the tenant's)")
    valid_days: int | None = Field(default=None, ge=1, le=365)


class AnswersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, Any] = Field(description="Question id -> answer (text, number, list).")
    on: dt.date | None = None
    answered_by: str | None = Field(default=None, max_length=100)
    language: str | None = None


@router.post(
    "/{number}/questionnaire/link",
    status_code=status.HTTP_201_CREATED,
    summary="A public link to the needs questionnaire (replaces the link still open)",
)
def questionnaire_link(number: str, body: LinkIn, ctx: Manage) -> dict[str, Any]:
    engagement = service.get(ctx.session, number)
    issued = answers.issue_link(
        ctx.session, engagement, base_url=ctx.state.settings.resolved_public_url,
        actor=ctx.principal.actor, now=ctx.now, language=body.language,
        valid_days=body.valid_days,
    )  # fmt: skip
    link = issued.link
    return {
        "id": link.id,
        "url": issued.url,
        "language": link.language,
        "expires_at": link.expires_at.isoformat(),
        "questionnaire": link.questionnaire["code"] + "@" + str(link.questionnaire["version"]),
    }


@router.get("/{number}/questionnaire", summary="The needs questionnaire's answers and links")
def questionnaire_answers(number: str, ctx: Read) -> dict[str, Any]:
    engagement = service.get(ctx.session, number)
    return answers.view(ctx.session, engagement, lang=current_language(), now=ctx.now)


@router.post(
    "/{number}/questionnaire/answers",
    summary="Import the questionnaire's answers (checked; the same answers again change nothing)",
)
def import_questionnaire(number: str, body: AnswersIn, ctx: Manage) -> JSONResponse:
    from memberlab.engagement.questionnaire import form_of

    engagement = service.get(ctx.session, number)
    submitted = answers.import_answers(
        ctx.session, engagement, {k: form_of(v) for k, v in body.answers.items()},
        actor=ctx.principal.actor, now=ctx.now, evidence_root=_evidence_root(ctx), on=body.on,
        answered_by=body.answered_by, language=body.language,
    )  # fmt: skip
    event = submitted.event
    return JSONResponse(
        {"event_id": event.id, "on": event.happened_on.isoformat(),
         "answers": submitted.answers, "evidence_seq": submitted.evidence_seq},
        status_code=status.HTTP_200_OK if submitted.replayed else status.HTTP_201_CREATED,
        headers={"Idempotent-Replayed": "true"} if submitted.replayed else {},
    )  # fmt: skip
