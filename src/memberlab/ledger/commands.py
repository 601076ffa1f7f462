"""CLI: ``memberlab jobs run``, ``memberlab liability``, ``memberlab import transactions``,
``memberlab webhooks deliver``."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import typer

from memberlab.core.cli_support import (
    JsonOption,
    TenantOption,
    actor,
    app_state,
    print_json,
    print_table,
    say,
    unit_of_work,
)
from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.i18n import t
from memberlab.core.tenants import get_tenant
from memberlab.engagement.jobs import run_jobs as run_engagement_jobs
from memberlab.ledger.jobs import run_jobs
from memberlab.ledger.liability import liability
from memberlab.ledger.service import LedgerContext
from memberlab.webhooks.service import deliver_due

jobs_app = typer.Typer(help="Time-based jobs. / 定时任务。", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhooks. / Webhook 推送。", no_args_is_help=True)


def parse_as_of(value: str | None, default: datetime, timezone: str) -> datetime:
    """``2026-12-31`` (end of that day, local time) or a full ISO date-time."""
    if not value:
        return default
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value)
            return day.replace(hour=23, minute=59, second=59, tzinfo=ZoneInfo(timezone))
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            errors=[FieldError("--as-of", "core.v.datetime", {"value": value})]
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone))


@jobs_app.command("run")
def jobs_run(
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD or ISO time (default now)."),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Release, expire, review tiers, birthdays, notices, engagement reminders up to a date;
    safe to repeat.

    释放待入账积分、过期积分、等级复核、生日奖励、到期提醒、项目提醒；重复运行不会重复生效。
    """
    with unit_of_work(tenant) as unit:
        zone = get_tenant(unit.session, unit.tenant_id).timezone
        moment = parse_as_of(as_of, unit.now, zone)
        if moment > unit.now:
            raise InvalidInput(
                errors=[FieldError("--as-of", "ledger.v.future", {"value": moment.isoformat()})]
            )
        ctx = LedgerContext(unit.session, unit.tenant_id, unit.now, unit.state.vault, actor(), zone)
        report = run_jobs(ctx, as_of=moment)
        reminded = run_engagement_jobs(unit.session, as_of=moment)
    if as_json:
        print_json({**report.model_dump(mode="json"), "engagement_reminders": reminded.summary()})
    else:
        say("ledger.cli.jobs", **{**report.model_dump(), "as_of": report.as_of.isoformat()})
        say(
            "engagement.cli.reminders_sent",
            sent=reminded.sent,
            already=reminded.already_sent,
            queued=reminded.queued,
            waiting=reminded.waiting,
            engagements=reminded.engagements,
        )


def liability_command(
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Points outstanding by expiry month, and monthly flows. / 积分负债。"""
    with unit_of_work(tenant) as unit:
        report = liability(unit.session, as_of=unit.now)
    if as_json:
        print_json(report)
        return
    say(
        "ledger.cli.liability",
        points=report.outstanding_points,
        value=report.outstanding_value,
        currency=report.currency,
    )
    print_table(
        [t(f"ledger.cli.column.{c}") for c in ("expires", "points", "value")],
        [[m.month, m.points, m.value] for m in report.by_expiry_month],
    )
    print_table(
        [
            t(f"ledger.cli.column.{c}")
            for c in ("month", "issued", "redeemed", "paid", "expired", "returned", "adjusted")
        ],
        [
            [f.month, f.issued, f.redeemed, f.paid_with_points, f.expired, f.returned, f.adjusted]
            for f in report.flows
        ],
    )


@webhooks_app.command("deliver")
def webhooks_deliver(as_json: bool = JsonOption) -> None:
    """Deliver due webhook events now. / 立即推送待发送的事件。"""
    state = app_state()
    report = deliver_due(state.database, now=state.clock())
    if as_json:
        print_json(report.__dict__)
    else:
        say("webhooks.cli.delivered", **report.__dict__)
