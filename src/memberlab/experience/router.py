"""HTTP routes of the customer experience: touchpoints, asking rules, surveys, invitation
links, the trigger job, scores, and follow-up cases. The public answer page is in
``pages.py`` (no key: the link is the credential)."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import polars as pl
from fastapi import APIRouter, Header, Query, status
from fastapi.responses import JSONResponse

from memberlab.core.access import Permission
from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.i18n import current_language
from memberlab.core.tenants import get_tenant
from memberlab.core.web import RequestContext, requires
from memberlab.experience import cases, invitations, journey, surveys
from memberlab.experience.jobs import run_jobs
from memberlab.experience.schemas import (
    AspectOut,
    AssignIn,
    CaseMeasuresOut,
    CaseOut,
    CasePage,
    CloseIn,
    DiagnosisOut,
    ExperienceValueOut,
    InvitationCreate,
    InvitationOut,
    JobsRunIn,
    NoteIn,
    RulesOut,
    ScoreChangeOut,
    ScoreEstimateOut,
    ScoreRow,
    ScoresOut,
    StatusChange,
    SurveyOut,
    TouchpointOut,
    TriggerRunOut,
)
from memberlab.experience.scores import compare, score_table
from memberlab.ledger.idempotency import replay_or_run
from memberlab.ledger.router import ledger_context
from memberlab.members import service as member_service

router = APIRouter(prefix="/experience", tags=["experience"])

Manage = Annotated[RequestContext, requires(Permission.EXPERIENCE_MANAGE)]
Work = Annotated[RequestContext, requires(Permission.CASES_WORK)]
Read = Annotated[RequestContext, requires(Permission.REPORTS_READ)]


def _base_url(ctx: RequestContext) -> str:
    return ctx.state.settings.resolved_public_url


# --- journey and rules -------------------------------------------------------------------------


@router.get("/touchpoints", response_model=list[TouchpointOut], summary="The journey's touchpoints")
def list_touchpoints(ctx: Read) -> list[TouchpointOut]:
    views = journey.touchpoints(ctx.session, current_language())
    return [TouchpointOut.model_validate(v) for v in views]


@router.put("/touchpoints", response_model=TouchpointOut, summary="Add or change a touchpoint")
def put_touchpoint(body: journey.TouchpointInput, ctx: Manage) -> TouchpointOut:
    view = journey.save_touchpoint(ctx.session, body)
    return TouchpointOut.model_validate(view)


@router.get("/settings", response_model=RulesOut, summary="Rules for asking and following up")
def get_settings(ctx: Read) -> RulesOut:
    return RulesOut.model_validate(journey.rules(ctx.session))


@router.patch("/settings", response_model=RulesOut, summary="Change the contact cap, deadlines ...")
def patch_settings(body: journey.SettingsUpdate, ctx: Manage) -> RulesOut:
    rules = journey.update_rules(ctx.session, body, now=ctx.now)
    return RulesOut.model_validate(rules)


# --- surveys and links -------------------------------------------------------------------------


def _survey_out(survey: Any) -> SurveyOut:
    return SurveyOut(
        code=survey.code,
        kind=survey.kind,
        status=survey.status,
        definition=survey.definition,
        created_at=survey.created_at,
        updated_at=survey.updated_at,
    )


@router.post("/surveys", response_model=SurveyOut, summary="Create a survey, or change a draft")
def put_survey(body: dict[str, Any], ctx: Manage) -> JSONResponse:
    definition = surveys.validate_definition(body)
    survey, created = surveys.save_survey(
        ctx.session, definition, now=ctx.now, actor=ctx.principal.actor
    )
    return JSONResponse(
        _survey_out(survey).model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )


@router.get("/surveys", response_model=list[SurveyOut], summary="Every survey")
def get_surveys(ctx: Read) -> list[SurveyOut]:
    return [_survey_out(s) for s in surveys.list_surveys(ctx.session)]


@router.get("/surveys/{code}", response_model=SurveyOut, summary="One survey")
def get_survey(code: str, ctx: Read) -> SurveyOut:
    return _survey_out(surveys.get_survey(ctx.session, code))


@router.post("/surveys/{code}/status", response_model=SurveyOut, summary="Activate or close")
def set_survey_status(code: str, body: StatusChange, ctx: Manage) -> SurveyOut:
    survey = surveys.set_status(ctx.session, code, body.status, now=ctx.now)
    return _survey_out(survey)


@router.post(
    "/surveys/{code}/invitations",
    response_model=InvitationOut,
    status_code=status.HTTP_201_CREATED,
    summary="A single-use link for one member (Idempotency-Key required)",
)
def invite(
    code: str,
    body: InvitationCreate,
    ctx: Manage,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    if not idempotency_key:
        raise InvalidInput(errors=[FieldError("Idempotency-Key", "ledger.v.idempotency_key")])

    def run() -> tuple[int, dict[str, Any]]:
        member = member_service.get(ctx.session, body.member_id)
        issued = invitations.invite_manually(
            ctx.session,
            survey_code=code,
            member=member,
            now=ctx.now,
            base_url=_base_url(ctx),
            touchpoint=body.touchpoint,
            order_id=body.order_id,
            respect_cap=body.respect_contact_cap,
        )
        out = InvitationOut(
            id=issued.invitation.id,
            survey=code,
            member_id=member.member_id,
            url=issued.url,
            language=issued.invitation.language,
            expires_at=issued.invitation.expires_at,
        )
        return 201, out.model_dump(mode="json")

    answer = replay_or_run(
        ctx.session,
        scope="invitation",
        key=idempotency_key,
        payload={"survey": code, **body.model_dump(mode="json")},
        now=ctx.now,
        run=run,
    )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)


@router.post("/jobs", response_model=TriggerRunOut, summary="Send due invitations, open due cases")
def run_experience_jobs(
    body: JobsRunIn, ctx: Annotated[RequestContext, requires(Permission.JOBS_RUN)]
) -> TriggerRunOut:
    as_of = body.as_of or ctx.now
    if as_of.tzinfo is None:
        raise InvalidInput(errors=[FieldError("as_of", "core.v.datetime", {"value": str(as_of)})])
    if as_of > ctx.now:
        raise InvalidInput(errors=[FieldError("as_of", "ledger.v.future", {"value": str(as_of)})])
    return run_jobs(ctx.session, as_of=as_of, base_url=_base_url(ctx))


# --- scores ------------------------------------------------------------------------------------


class ScoreMetric(StrEnum):
    NPS = "nps"
    CSAT = "csat"
    CES = "ces"


class ScoreGroup(StrEnum):
    TOUCHPOINT = "touchpoint"
    STORE = "store"
    CHANNEL = "channel"
    TIER = "tier"
    SEGMENT = "segment"  # the member's RFM segment today


class ScorePeriod(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@router.get("/scores", response_model=ScoresOut, summary="NPS, CSAT or CES with intervals")
def get_scores(
    ctx: Read,
    metric: ScoreMetric = ScoreMetric.NPS,
    by: Annotated[list[ScoreGroup] | None, Query()] = None,
    period: ScorePeriod | None = None,
    start: date | None = Query(None, alias="from"),
    end: date | None = Query(None, alias="to"),
) -> ScoresOut:
    from memberlab.analytics.data import members_from_store, responses_from_store

    zone = get_tenant(ctx.session, ctx.tenant_id).timezone
    frame = responses_from_store(ctx.session, timezone=zone)
    groups = [g.value for g in by or []]
    if ScoreGroup.TIER.value in groups:
        tiers = members_from_store(ctx.session, timezone=zone).select("member_id", "tier")
        frame = frame.join(tiers, on="member_id", how="left")
    if ScoreGroup.SEGMENT.value in groups:
        frame = frame.join(_segments(ctx, zone), on="member_id", how="left")
    frame = _between(frame, start, end)
    table = score_table(frame, metric.value, by=groups, period=period.value if period else None)
    keys = (["period"] if period else []) + groups
    rows = [
        ScoreRow(
            group={k: (str(r[k]) if r[k] is not None else None) for k in keys},
            n=int(r["n"]),
            value=r["value"],
            low=r["low"],
            high=r["high"],
            too_small=bool(r["too_small"]),
        )
        for r in table.iter_rows(named=True)
    ]
    return ScoresOut(metric=metric.value, by=keys, rows=rows)


def _between(frame: pl.DataFrame, start: date | None, end: date | None) -> pl.DataFrame:
    if start is not None:
        frame = frame.filter(pl.col("responded_at").dt.date() >= start)
    if end is not None:
        frame = frame.filter(pl.col("responded_at").dt.date() <= end)
    return frame


def _segments(ctx: RequestContext, zone: str) -> pl.DataFrame:
    from memberlab.analytics.data import transactions_from_store
    from memberlab.analytics.rfm import rfm_table

    transactions = transactions_from_store(ctx.session, timezone=zone)
    if transactions.is_empty():
        return pl.DataFrame(schema={"member_id": pl.String, "segment": pl.String})
    today = ctx.now.astimezone(ZoneInfo(zone)).date()
    table = rfm_table(transactions, as_of=today, time_zone=zone)
    return table.select("member_id", pl.col("segment").cast(pl.String))


@router.get(
    "/scores/change",
    response_model=ScoreChangeOut,
    summary="Did a score change between two periods? (with its significance)",
)
def get_score_change(
    ctx: Read,
    before_from: date,
    before_to: date,
    after_from: date,
    after_to: date,
    metric: ScoreMetric = ScoreMetric.NPS,
    touchpoint: str | None = None,
) -> ScoreChangeOut:
    from memberlab.analytics.data import responses_from_store

    errors = []
    if before_to < before_from:
        errors.append(FieldError("before_to", "experience.v.date_order", {"other": "before_from"}))
    if after_to < after_from:
        errors.append(FieldError("after_to", "experience.v.date_order", {"other": "after_from"}))
    if errors:
        raise InvalidInput(errors=errors)
    zone = get_tenant(ctx.session, ctx.tenant_id).timezone
    frame = responses_from_store(ctx.session, timezone=zone)
    if touchpoint is not None:
        frame = frame.filter(pl.col("touchpoint") == touchpoint)
    column = metric.value
    before = _between(frame, before_from, before_to)[column].drop_nulls()
    after = _between(frame, after_from, after_to)[column].drop_nulls()
    for name, sample in (("before", before), ("after", after)):
        if sample.len() < 2:
            raise InvalidInput(
                errors=[FieldError(name, "experience.v.too_few_answers", {"n": sample.len()})]
            )
    change = compare(before, after, column)
    return ScoreChangeOut(
        metric=column,
        before=ScoreEstimateOut(**change.before.__dict__),
        after=ScoreEstimateOut(**change.after.__dict__),
        difference=change.difference,
        low=change.low,
        high=change.high,
        p_value=change.p_value,
        significant=change.significant,
    )


@router.get(
    "/comments",
    response_model=list[AspectOut],
    summary="What the comments talk about: aspects, sentiment, keywords, quotes",
)
def get_comments(
    ctx: Read,
    start: date | None = Query(None, alias="from"),
    end: date | None = Query(None, alias="to"),
    touchpoint: str | None = None,
) -> list[AspectOut]:
    from memberlab.experience.diagnosis import answers_frame, comment_summary

    zone = get_tenant(ctx.session, ctx.tenant_id).timezone
    answers = answers_frame(ctx.session, timezone=zone, start=start, end=end, touchpoint=touchpoint)
    _, summary = comment_summary(answers, cache_dir=ctx.state.settings.resolved_model_dir)
    return [AspectOut(**row) for row in summary.iter_rows(named=True)]


@router.get(
    "/drivers",
    response_model=DiagnosisOut,
    summary="What drives NPS (relative weights by touchpoint), what detractors complain "
    "about, and the ranked pain points",
)
def get_drivers(
    ctx: Read,
    start: date | None = Query(None, alias="from"),
    end: date | None = Query(None, alias="to"),
    resamples: Annotated[int, Query(ge=0, le=5000)] = 1000,
) -> DiagnosisOut:
    from memberlab.analytics.data import transactions_from_store
    from memberlab.experience.diagnosis import answers_frame, diagnose, json_rows

    zone = get_tenant(ctx.session, ctx.tenant_id).timezone
    answers = answers_frame(ctx.session, timezone=zone, start=start, end=end)
    transactions = transactions_from_store(ctx.session, timezone=zone)
    found = diagnose(
        answers,
        transactions if transactions.height else None,
        cache_dir=ctx.state.settings.resolved_model_dir,
        resamples=resamples,
    )
    return DiagnosisOut(
        weights=json_rows(found.weights),
        skipped=found.skipped,
        aspects=json_rows(found.aspects),
        pain_points=json_rows(found.pain_points),
    )


@router.get(
    "/value",
    response_model=ExperienceValueOut,
    summary="What promoters, passives and detractors did next, and what an NPS point is worth",
)
def get_experience_value(
    ctx: Read,
    window_days: Annotated[int, Query(ge=1, le=730)] = 90,
    churn_days: Annotated[int, Query(ge=1, le=730)] = 180,
) -> ExperienceValueOut:
    from memberlab.analytics.data import transactions_from_store
    from memberlab.experience.diagnosis import answers_frame, json_rows
    from memberlab.experience.drivers import experience_value

    zone = get_tenant(ctx.session, ctx.tenant_id).timezone
    answers = answers_frame(ctx.session, timezone=zone)
    transactions = transactions_from_store(ctx.session, timezone=zone)
    value = experience_value(
        answers, transactions, window_days=window_days, churn_days=churn_days, as_of=ctx.now
    )
    return ExperienceValueOut(
        segments=json_rows(value.table),
        members=value.members,
        answers=value.answers,
        window_days=value.window_days,
        churn_days=value.churn_days,
        spend_gap=value.spend_gap,
        value_per_point=value.value_per_point,
        low=value.low,
        high=value.high,
    )


# --- follow-up cases ---------------------------------------------------------------------------


@router.get("/cases", response_model=CasePage, summary="Follow-up cases (open first, by due time)")
def list_cases(
    ctx: Work,
    case_status: Annotated[cases.CaseStatus | None, Query(alias="status")] = None,
    overdue: bool = False,
    assignee: str | None = None,
    touchpoint: str | None = None,
    cursor: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CasePage:
    views = cases.list_cases(
        ctx.session,
        now=ctx.now,
        status=case_status,
        overdue=overdue,
        assignee=assignee,
        touchpoint=touchpoint,
        after=cursor,
        limit=limit,
    )
    next_cursor = str(max(v.id for v in views)) if len(views) == limit else None
    return CasePage(items=[CaseOut.model_validate(v) for v in views], next_cursor=next_cursor)


@router.get("/cases/measures", response_model=CaseMeasuresOut, summary="Deadline met, recovery")
def case_measures(ctx: Read, since: date | None = None) -> CaseMeasuresOut:
    start = datetime.combine(since, time.min, tzinfo=ctx.now.tzinfo) if since else None
    return CaseMeasuresOut.model_validate(cases.measures(ctx.session, now=ctx.now, since=start))


@router.get("/cases/{case_id}", response_model=CaseOut, summary="One case with its notes")
def get_case(case_id: int, ctx: Work) -> CaseOut:
    return CaseOut.model_validate(cases.view(ctx.session, case_id, now=ctx.now))


@router.post("/cases/{case_id}/assign", response_model=CaseOut, summary="Assign a case")
def assign_case(case_id: int, body: AssignIn, ctx: Work) -> CaseOut:
    cases.assign(ctx.session, case_id, body.assignee, actor=ctx.principal.actor, now=ctx.now)
    return CaseOut.model_validate(cases.view(ctx.session, case_id, now=ctx.now))


@router.post("/cases/{case_id}/notes", response_model=CaseOut, summary="Write what was done")
def note_case(case_id: int, body: NoteIn, ctx: Work) -> CaseOut:
    cases.add_note(ctx.session, case_id, body.text, actor=ctx.principal.actor, now=ctx.now)
    return CaseOut.model_validate(cases.view(ctx.session, case_id, now=ctx.now))


@router.post(
    "/cases/{case_id}/close",
    response_model=CaseOut,
    summary="Close with a resolution and an optional recovery gesture (points or a coupon)",
)
def close_case(case_id: int, body: CloseIn, ctx: Work) -> CaseOut:
    gesture = (
        cases.Gesture(points=body.gesture_points, coupon=body.gesture_coupon)
        if body.gesture_points or body.gesture_coupon
        else None
    )
    if gesture is not None and not ctx.principal.can(Permission.POINTS_ADJUST):
        from memberlab.core.errors import Forbidden

        raise Forbidden(
            "core.auth.role_refused",
            role=ctx.principal.role.value,
            permission=Permission.POINTS_ADJUST.value,
        )
    cases.close(
        ctx.session,
        case_id,
        resolution=body.resolution,
        gesture=gesture,
        actor=ctx.principal.actor,
        now=ctx.now,
        ledger_context=ledger_context(ctx) if gesture else None,
        base_url=_base_url(ctx),
    )
    return CaseOut.model_validate(cases.view(ctx.session, case_id, now=ctx.now))
