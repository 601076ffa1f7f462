"""CLI: ``memberlab cx ...``: touchpoints, surveys, links, the trigger job, scores and
follow-up cases, the same operations as ``/api/v1/experience``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import typer
from rich.markup import escape

from memberlab.core.cli_support import (
    JsonOption,
    TenantOption,
    actor,
    print_json,
    print_table,
    say,
    unit_of_work,
)
from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.i18n import current_language, t
from memberlab.core.tenants import get_tenant
from memberlab.experience import cases, invitations, journey, surveys
from memberlab.experience.jobs import run_jobs
from memberlab.experience.scores import METRICS, score_table
from memberlab.ledger.commands import parse_as_of
from memberlab.members import service as member_service

cx_app = typer.Typer(
    help="Customer experience: surveys, links, scores, follow-up cases. / 客户体验。",
    no_args_is_help=True,
)
survey_app = typer.Typer(help="Survey definitions. / 问卷。", no_args_is_help=True)
case_app = typer.Typer(help="Follow-up cases. / 跟进工单。", no_args_is_help=True)
cx_app.add_typer(survey_app, name="survey")
cx_app.add_typer(case_app, name="case")


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(errors=[FieldError(option, "core.v.date", {"value": value})]) from None


def _base_url(unit) -> str:  # type: ignore[no-untyped-def]
    return unit.state.settings.resolved_public_url


@cx_app.command("touchpoints")
def touchpoints_command(tenant: str | None = TenantOption, as_json: bool = JsonOption) -> None:
    """The journey's stages and touchpoints. / 旅程阶段与触点。"""
    with unit_of_work(tenant) as unit:
        views = journey.touchpoints(unit.session, current_language())
    if as_json:
        print_json([v.__dict__ for v in views])
        return
    print_table(
        [t("experience.cli.stage"), t("experience.cli.code"), t("experience.cli.name")],
        [(v.stage_name, v.code, v.name) for v in views],
    )


# --- surveys -------------------------------------------------------------------------------------


@survey_app.command("save")
def survey_save(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="YAML or JSON."),
    tenant: str | None = TenantOption,
) -> None:
    """Create a survey from a file, or change a draft. / 从文件创建问卷或修改草稿。"""
    definition = surveys.parse_definition_text(file.read_text(encoding="utf-8-sig"))
    with unit_of_work(tenant) as unit:
        survey, created = surveys.save_survey(unit.session, definition, now=unit.now, actor=actor())
        code, status = survey.code, survey.status
    say("experience.cli.saved" if created else "experience.cli.updated", code=code, status=status)


@survey_app.command("list")
def survey_list(tenant: str | None = TenantOption, as_json: bool = JsonOption) -> None:
    """Every survey with its status. / 全部问卷。"""
    with unit_of_work(tenant) as unit:
        rows = [
            (s.code, s.kind, s.status, surveys.definition_of(s).title.get(current_language()))
            for s in surveys.list_surveys(unit.session)
        ]
    if as_json:
        print_json([dict(zip(("code", "kind", "status", "title"), r, strict=True)) for r in rows])
        return
    print_table(
        [
            t("experience.cli.code"),
            t("experience.cli.kind"),
            t("experience.cli.status"),
            t("experience.cli.title"),
        ],
        rows,
    )


def _status(code: str, status: surveys.SurveyStatus, tenant: str | None) -> None:
    with unit_of_work(tenant) as unit:
        survey = surveys.set_status(unit.session, code, status, now=unit.now)
        say("experience.cli.status_set", code=survey.code, status=survey.status)


@survey_app.command("activate")
def survey_activate(code: str, tenant: str | None = TenantOption) -> None:
    """Start sending links. / 启用问卷。"""
    _status(code, surveys.SurveyStatus.ACTIVE, tenant)


@survey_app.command("close")
def survey_close(code: str, tenant: str | None = TenantOption) -> None:
    """Stop sending links (open links still work). / 停用问卷。"""
    _status(code, surveys.SurveyStatus.CLOSED, tenant)


@cx_app.command("invite")
def invite_command(
    survey: str = typer.Argument(..., help="Survey code. / 问卷代码。"),
    member_id: str = typer.Argument(..., help="Member id. / 会员号。"),
    touchpoint: str | None = typer.Option(None, "--touchpoint"),
    order_id: str | None = typer.Option(None, "--order-id"),
    ignore_cap: bool = typer.Option(False, "--ignore-contact-cap"),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """A single-use link for one member. / 为会员生成一次性问卷链接。"""
    with unit_of_work(tenant) as unit:
        member = member_service.get(unit.session, member_id)
        issued = invitations.invite_manually(
            unit.session,
            survey_code=survey,
            member=member,
            now=unit.now,
            base_url=_base_url(unit),
            touchpoint=touchpoint,
            order_id=order_id,
            respect_cap=not ignore_cap,
        )
        result = {
            "url": issued.url,
            "language": issued.invitation.language,
            "expires_at": issued.invitation.expires_at.isoformat(),
        }
    if as_json:
        print_json(result)
        return
    say("experience.cli.link", **result)


@cx_app.command("jobs")
def jobs_command(
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD or ISO time."),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Send due invitations and open cases for recent unhappy answers; safe to repeat.
    / 发送到期的问卷邀请、为近期不满意回答开工单；可重复运行。"""
    with unit_of_work(tenant) as unit:
        zone = get_tenant(unit.session, unit.tenant_id).timezone
        moment = parse_as_of(as_of, unit.now, zone)
        if moment > unit.now:
            raise InvalidInput(
                errors=[FieldError("--as-of", "ledger.v.future", {"value": moment.isoformat()})]
            )
        report = run_jobs(unit.session, as_of=moment, base_url=_base_url(unit))
    if as_json:
        print_json(report)
        return
    say(
        "experience.cli.jobs",
        as_of=report.as_of.isoformat(timespec="minutes"),
        invited=sum(report.invited.values()),
        capped=report.skipped_contact_cap,
        cases=report.cases_opened,
    )


# --- scores --------------------------------------------------------------------------------------


@cx_app.command("scores")
def scores_command(
    metric: str = typer.Option("nps", "--metric", help="nps | csat | ces"),
    by: list[str] = typer.Option([], "--by", help="touchpoint, store, channel (repeatable)."),
    period: str | None = typer.Option(None, "--period", help="month | quarter | year"),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """NPS, CSAT or CES with 95% intervals, by group. / 带置信区间的 NPS、CSAT、CES。"""
    from memberlab.analytics.data import responses_from_store

    errors = []
    if metric not in METRICS:
        expected = ", ".join(METRICS)
        errors.append(
            FieldError("--metric", "core.v.choice", {"value": metric, "expected": expected})
        )
    for group in by:
        if group not in ("touchpoint", "store", "channel"):
            params = {"value": group, "expected": "touchpoint, store, channel"}
            errors.append(FieldError("--by", "core.v.choice", params))
    if period not in (None, "month", "quarter", "year"):
        params = {"value": period, "expected": "month, quarter, year"}
        errors.append(FieldError("--period", "core.v.choice", params))
    if errors:
        raise InvalidInput(errors=errors)
    with unit_of_work(tenant) as unit:
        zone = get_tenant(unit.session, unit.tenant_id).timezone
        frame = responses_from_store(unit.session, timezone=zone)
    table = score_table(frame, metric, by=by, period=period)  # type: ignore[arg-type]
    if as_json:
        print_json(table.with_columns(pl.col(pl.Date).cast(pl.String)).to_dicts())
        return
    keys = (["period"] if period else []) + by
    print_table(
        [*keys, "n", metric.upper(), t("experience.cli.interval"), ""],
        [
            (
                *[row[k] for k in keys],
                row["n"],
                f"{row['value']:.1f}",
                f"{row['low']:.1f} - {row['high']:.1f}",
                t("experience.cli.too_small") if row["too_small"] else "",
            )
            for row in table.iter_rows(named=True)
        ],
    )


@cx_app.command("comments")
def comments_command(
    start: str | None = typer.Option(None, "--from", help="First day, YYYY-MM-DD."),
    end: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD."),
    touchpoint: str | None = typer.Option(None, "--touchpoint"),
    lexicon: Path | None = typer.Option(
        None, "--lexicon", exists=True, dir_okay=False, help="Your own aspects (YAML)."
    ),
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="csv, xlsx, parquet"),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """What comments talk about: aspects, sentiment, keywords, quotes (zh and en).
    / 评论分析：方面、情感、关键词、原话。"""
    from memberlab.dataio.export import write_tables
    from memberlab.experience.diagnosis import answers_frame, comment_summary

    first, last = _day(start, "--from"), _day(end, "--to")
    with unit_of_work(tenant) as unit:
        zone = get_tenant(unit.session, unit.tenant_id).timezone
        answers = answers_frame(
            unit.session, timezone=zone, start=first, end=last, touchpoint=touchpoint
        )
        cache = unit.state.settings.resolved_model_dir
    table, summary = comment_summary(answers, cache_dir=cache, lexicon_file=lexicon)
    if out is not None:
        write_tables({"aspects": summary, "mentions": table}, out)
    if as_json:
        print_json(summary.to_dicts())
        return
    name = "name_zh" if current_language() == "zh-CN" else "name_en"
    print_table(
        [
            t("experience.cli.aspect"),
            t("experience.cli.mentions"),
            t("experience.cli.negative"),
            t("experience.cli.quote"),
        ],
        [
            (
                row[name],
                row["mentions"],
                f"{100 * row['share_negative']:.0f}%",
                escape((row["quotes"] or [""])[0][:60]),
            )
            for row in summary.iter_rows(named=True)
        ],
    )


@cx_app.command("diagnose")
def diagnose_command(
    start: str | None = typer.Option(None, "--from", help="First day, YYYY-MM-DD."),
    end: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD."),
    lexicon: Path | None = typer.Option(
        None, "--lexicon", exists=True, dir_okay=False, help="Your own aspects (YAML)."
    ),
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="csv, xlsx, parquet"),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Drivers of NPS by touchpoint, aspects behind detractors, ranked pain points.
    / 诊断：NPS 驱动因素、贬损者关注点、痛点排名。"""
    from memberlab.analytics.data import transactions_from_store
    from memberlab.dataio.export import write_tables
    from memberlab.experience.diagnosis import answers_frame, diagnose, json_rows

    first, last = _day(start, "--from"), _day(end, "--to")
    with unit_of_work(tenant) as unit:
        zone = get_tenant(unit.session, unit.tenant_id).timezone
        answers = answers_frame(unit.session, timezone=zone, start=first, end=last)
        transactions = transactions_from_store(unit.session, timezone=zone)
        cache = unit.state.settings.resolved_model_dir
    found = diagnose(
        answers,
        transactions if transactions.height else None,
        cache_dir=cache,
        lexicon_file=lexicon,
    )
    if out is not None:
        frames = {
            "drivers": found.weights,
            "aspects": found.aspects,
            "pain_points": found.pain_points,
        }
        write_tables({k: v for k, v in frames.items() if v.width}, out)
    if as_json:
        print_json(
            {
                "weights": json_rows(found.weights),
                "skipped": found.skipped,
                "aspects": json_rows(found.aspects),
                "pain_points": json_rows(found.pain_points),
            }
        )
        return
    suffix = "_zh" if current_language() == "zh-CN" else "_en"
    print_table(
        [
            "#",
            t("experience.cases.touchpoint"),
            t("experience.cli.aspect"),
            t("experience.cli.negative"),
            t("experience.cli.nps_gap"),
            t("experience.cli.quote"),
        ],
        [
            (
                row["rank"],
                row[f"touchpoint{suffix}"],
                row[f"aspect{suffix}"],
                row["negative"],
                "-" if row["nps_gap"] is None else f"{row['nps_gap']:.1f}",
                escape((row["quotes"] or [""])[0][:50]),
            )
            for row in found.pain_points.head(10).iter_rows(named=True)
        ],
        title=t("experience.cli.pain_points"),
    )
    if found.weights.height:
        name = "name_zh" if current_language() == "zh-CN" else "name_en"
        print_table(
            [t("experience.cases.touchpoint"), t("experience.cli.attribute"), "n",
             t("experience.cli.share")],
            [
                (row["touchpoint"], row[name], row["n"], f"{100 * row['share']:.0f}%")
                for row in found.weights.filter(pl.col("rank") <= 3).iter_rows(named=True)
            ],
            title=t("experience.cli.drivers"),
        )  # fmt: skip
    for problem in found.skipped:
        say("experience.cli.skipped", reason=problem)


@cx_app.command("value")
def value_command(
    window_days: int = typer.Option(90, "--window-days", min=1, max=730),
    churn_days: int = typer.Option(180, "--churn-days", min=1, max=730),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """What promoters, passives and detractors did next; the worth of one NPS point.
    / 推荐者、被动者、贬损者后续行为，以及 1 分 NPS 的价值。"""
    from memberlab.analytics.data import transactions_from_store
    from memberlab.experience.diagnosis import answers_frame, json_rows
    from memberlab.experience.drivers import experience_value

    with unit_of_work(tenant) as unit:
        zone = get_tenant(unit.session, unit.tenant_id).timezone
        answers = answers_frame(unit.session, timezone=zone)
        transactions = transactions_from_store(unit.session, timezone=zone)
        now = unit.now
    value = experience_value(
        answers, transactions, window_days=window_days, churn_days=churn_days, as_of=now
    )
    if as_json:
        print_json({**value.__dict__, "table": json_rows(value.table)})
        return
    name = "name_zh" if current_language() == "zh-CN" else "name_en"
    print_table(
        [t("experience.cli.segment"), t("experience.cli.members"), t("experience.cli.repeat"),
         t("experience.cli.spend"), t("experience.cli.churn")],
        [
            (row[name], row["members"], f"{100 * row['repeat_rate']:.0f}%",
             f"{row['spend']:.1f}", f"{100 * row['churn_rate']:.0f}%")
            for row in value.table.iter_rows(named=True)
        ],
    )  # fmt: skip
    if value.value_per_point is not None:
        say(
            "experience.cli.point_value",
            value=f"{value.value_per_point:,.0f}",
            low=f"{value.low:,.0f}",
            high=f"{value.high:,.0f}",
            days=window_days,
        )


# --- cases ---------------------------------------------------------------------------------------


@case_app.command("list")
def case_list(
    overdue: bool = typer.Option(False, "--overdue", help="Only overdue. / 仅逾期。"),
    status: cases.CaseStatus | None = typer.Option(None, "--status"),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Follow-up cases, open ones first by due time. / 跟进工单。"""
    with unit_of_work(tenant) as unit:
        views = cases.list_cases(
            unit.session, now=unit.now, status=status, overdue=overdue, limit=500
        )
    if as_json:
        print_json([v.__dict__ for v in views])
        return
    if not views:
        say("experience.cli.no_cases")
        return
    print_table(
        [
            "#",
            t("experience.cases.member"),
            t("experience.cases.touchpoint"),
            t("experience.cases.score"),
            t("experience.cases.comment"),
            t("experience.cases.due"),
            t("experience.cases.status"),
        ],
        [
            (
                v.id,
                v.member_id,
                v.touchpoint,
                f"NPS {v.nps}" if v.nps is not None else f"CSAT {v.csat}",
                escape((v.comment or "")[:60]),  # a member's text, never markup
                v.due_at.isoformat(timespec="minutes")
                + (f" ({t('experience.cases.overdue')})" if v.overdue else ""),
                t(f"experience.cases.status_{v.status}"),
            )
            for v in views
        ],
    )


@case_app.command("assign")
def case_assign(case_id: int, assignee: str, tenant: str | None = TenantOption) -> None:
    """Give a case to someone. / 指派工单。"""
    with unit_of_work(tenant) as unit:
        cases.assign(unit.session, case_id, assignee, actor=actor(), now=unit.now)
    say("experience.cli.assigned", case=case_id, assignee=assignee)


@case_app.command("note")
def case_note(case_id: int, text: str, tenant: str | None = TenantOption) -> None:
    """Write down what was done. / 记录处理过程。"""
    with unit_of_work(tenant) as unit:
        cases.add_note(unit.session, case_id, text, actor=actor(), now=unit.now)
    say("experience.cli.noted", case=case_id)


@case_app.command("close")
def case_close(
    case_id: int,
    resolution: str = typer.Option(..., "--resolution", help="What was done. / 处理结果。"),
    points: int | None = typer.Option(None, "--points", help="Bonus points as a gesture."),
    coupon: str | None = typer.Option(None, "--coupon", help="A catalog coupon as a gesture."),
    tenant: str | None = TenantOption,
) -> None:
    """Close a case, with an optional gesture; the member is asked again.
    / 关闭工单（可补偿积分或优惠券），并回访。"""
    from memberlab.ledger.service import LedgerContext

    gesture = cases.Gesture(points=points, coupon=coupon) if points or coupon else None
    with unit_of_work(tenant) as unit:
        zone = get_tenant(unit.session, unit.tenant_id).timezone
        context = LedgerContext(unit.session, unit.tenant_id, unit.now, unit.state.vault,
                                actor(), zone)  # fmt: skip
        case = cases.close(
            unit.session,
            case_id,
            resolution=resolution,
            gesture=gesture,
            actor=actor(),
            now=unit.now,
            ledger_context=context,
            base_url=_base_url(unit),
        )
        asked = case.resurvey_pk is not None
    say("experience.cli.closed", case=case_id, resurvey=t(f"experience.cli.resurvey_{asked}"))


@case_app.command("measures")
def case_measures(tenant: str | None = TenantOption, as_json: bool = JsonOption) -> None:
    """Deadline-met and recovery rates. / 按时处理率与挽回率。"""
    with unit_of_work(tenant) as unit:
        result = cases.measures(unit.session, now=unit.now)
    if as_json:
        print_json(result.__dict__)
        return

    def share(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    say(
        "experience.cli.measures",
        opened=result.opened,
        open=result.open,
        overdue=result.overdue,
        met=share(result.deadline_met_rate),
        recovery=share(result.recovery_rate),
    )
