"""CLI: ``memberlab jobs run``, ``memberlab liability``, ``memberlab import transactions``,
``memberlab webhooks deliver``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

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
from memberlab.core.tenants import get_tenant
from memberlab.ledger import bulk
from memberlab.ledger.jobs import run_jobs
from memberlab.ledger.liability import liability
from memberlab.ledger.service import LedgerContext
from memberlab.webhooks.service import deliver_due

jobs_app = typer.Typer(help="Time-based jobs. / 定时任务。", no_args_is_help=True)
import_app = typer.Typer(help="Import data. / 导入数据。", no_args_is_help=True)
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
    """Release, expire, review tiers, birthdays, notices up to a date; safe to repeat.

    释放待入账积分、过期积分、等级复核、生日奖励、到期提醒；重复运行不会重复生效。
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
    if as_json:
        print_json(report)
    else:
        say("ledger.cli.jobs", **{**report.model_dump(), "as_of": report.as_of.isoformat()})


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
        ["expires", "points", "value"],
        [[m.month, m.points, m.value] for m in report.by_expiry_month],
    )
    print_table(
        ["month", "issued", "redeemed", "paid", "expired", "returned", "adjusted"],
        [
            [f.month, f.issued, f.redeemed, f.paid_with_points, f.expired, f.returned, f.adjusted]
            for f in report.flows
        ],
    )


@import_app.command("transactions")
def import_transactions(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or Parquet."),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Apply past purchases and returns through the program's rules (resumable).

    按会员计划规则导入历史消费与退货；中断后重新运行不会重复生效。
    """
    state = app_state()
    with unit_of_work(tenant) as unit:
        tenant_id = unit.tenant_id
    assert tenant_id is not None
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=as_json,
        transient=True,
    ) as bar:
        task = bar.add_task(file.name, total=None)
        report = bulk.import_transactions(
            state.database,
            tenant_id=tenant_id,
            path=file,
            now=state.clock(),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    summary = {
        "file": str(file),
        "rows": report.rows,
        "events": report.events,
        "applied": report.applied,
        "skipped": report.skipped,
        "rejected": report.rejected,
        "members_enrolled": report.members_enrolled,
        "rejects": report.rejects[:100],
    }
    if as_json:
        print_json(summary)
    else:
        say(
            "ledger.cli.import_done",
            file=file.name,
            rows=report.rows,
            applied=report.applied,
            skipped=report.skipped,
            rejected=report.rejected,
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
