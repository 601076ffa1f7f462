"""CLI: ``memberlab analyze clv|rfm|cohorts|tiers|points|churn``.

Each command reads its frames from a consultant's file (``--transactions FILE``, no store
needed) or from the tenant's store, runs the pure analysis of ``memberlab.analytics`` and
prints a summary (``--json`` for scripts); ``--out FILE`` writes the full result as CSV,
XLSX or Parquet (see ``memberlab.dataio.export``).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import typer

from memberlab.analytics import clv as clv_models
from memberlab.analytics import data
from memberlab.analytics.summary import rfm_summary
from memberlab.core.cli_support import (
    JsonOption,
    TenantOption,
    app_state,
    print_json,
    print_table,
    say,
    unit_of_work,
)
from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.i18n import current_language, t
from memberlab.dataio.export import write_tables
from memberlab.programs import service as program_service

analyze_app = typer.Typer(
    help="Member analytics: CLV, RFM, cohorts, tiers, points, churn. / 会员分析。",
    no_args_is_help=True,
)

TransactionsOption = typer.Option(
    None,
    "--transactions",
    exists=True,
    dir_okay=False,
    help="CSV/XLSX/Parquet with member, date and amount columns (default: the store). "
    "/ 交易文件（默认读取数据库）。",
)
OutOption = typer.Option(
    None, "--out", dir_okay=False, help="Write the full result (csv, xlsx, parquet). / 输出文件。"
)


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            errors=[FieldError(name, "analytics.v.bad_date", {"value": value})]
        ) from None


def _timezone(session: Any, now: datetime, default: str) -> str:
    try:
        version = program_service.active_version(session, as_of=now)
    except program_service.NoActiveProgram:
        return default
    return program_service.definition_of(version).timezone


def load_transactions(file: Path | None, tenant: str | None) -> tuple[pl.DataFrame, str]:
    """Purchases from ``file`` or from the tenant's store, and the time zone they are in."""
    state = app_state()
    if file is not None:
        timezone = state.settings.timezone
        frame, _ = data.transactions_from_file(file, timezone=timezone, now=state.clock())
        return frame, timezone
    with unit_of_work(tenant) as unit:
        timezone = _timezone(unit.session, unit.now, state.settings.timezone)
        return data.transactions_from_store(unit.session, timezone=timezone), timezone


def _write(out: Path | None, frames: dict[str, pl.DataFrame], timezone: str) -> list[str]:
    if out is None:
        return []
    return [str(p) for p in write_tables(frames, out, timezone=timezone)]


@analyze_app.command("clv")
def analyze_clv(
    transactions: Path | None = TransactionsOption,
    calibration_end: str | None = typer.Option(
        None, "--calibration-end", help="Last day of calibration (default: today). / 校准期末。"
    ),
    observation_end: str | None = typer.Option(
        None, "--observation-end", help="End of a holdout period to validate on. / 验证期末。"
    ),
    time_unit: str = typer.Option("day", "--time-unit", help="day | week"),
    model: str = typer.Option("bgnbd", "--model", help="bgnbd | pnbd"),
    months: int = typer.Option(12, "--months", help="CLV horizon in months. / 预测月数。"),
    margin: float = typer.Option(1.0, "--margin", help="Profit margin on spend. / 毛利率。"),
    annual_discount_rate: float = typer.Option(
        0.1, "--annual-discount-rate", help="Discount rate per year. / 年折现率。"
    ),
    tenant: str | None = TenantOption,
    out: Path | None = OutOption,
    as_json: bool = JsonOption,
) -> None:
    """Lifetime value: BG/NBD or Pareto/NBD with Gamma-Gamma spend, by maximum likelihood.

    生命周期价值：BG/NBD 或 Pareto/NBD 购买模型与 Gamma-Gamma 消费模型（最大似然估计）。
    """
    frame, timezone = load_transactions(transactions, tenant)
    purchases = frame.filter(pl.col("kind") == "purchase")
    end = _day(calibration_end, "calibration_end") or app_state().clock().date()
    holdout = _day(observation_end, "observation_end")
    summary = rfm_summary(
        purchases,
        calibration_end=end,
        observation_end=holdout,
        time_unit=time_unit,  # type: ignore[arg-type]
    )
    purchase_fit = clv_models.fit_purchase_model(summary, model=model)  # type: ignore[arg-type]
    spend_fit = clv_models.fit_gamma_gamma(summary)
    values = clv_models.customer_lifetime_value(
        purchase_fit,
        spend_fit,
        summary,
        months=months,
        annual_discount_rate=annual_discount_rate,
        margin=margin,
        time_unit=time_unit,  # type: ignore[arg-type]
    )
    lang = current_language()
    result: dict[str, Any] = {
        **purchase_fit.as_dict(lang),
        "spend_model": spend_fit.as_dict(lang),
        "frequency_spend_correlation": clv_models.spend_frequency_correlation(summary),
        "calibration_end": end.isoformat(),
        "time_unit": time_unit,
        "members": summary.height,
        "clv_total": float(values["clv"].sum()),
        "clv_mean": float(values["clv"].mean() or 0.0),
        "expected_alive": float(values["p_alive"].sum()),
    }
    frames = {"clv": summary.join(values, on="member_id", how="left")}
    if holdout is not None:
        comparison = clv_models.holdout_comparison(purchase_fit, summary)
        result["holdout"] = comparison.to_dicts()
        frames["holdout"] = comparison
    result["files"] = _write(out, frames, timezone)
    if as_json:
        print_json(result)
        return
    _show_fit(purchase_fit.as_dict(lang), t(f"analytics.cli.model.{model}"))
    _show_fit(spend_fit.as_dict(lang), t("analytics.cli.model.gamma_gamma"))
    say(
        "analytics.cli.clv",
        members=result["members"],
        alive=round(result["expected_alive"]),
        months=months,
        total=f"{result['clv_total']:,.2f}",
        mean=f"{result['clv_mean']:,.2f}",
    )
    for path in result["files"]:
        say("dataio.cli.exported", rows=summary.height, path=path)


def _show_fit(fit: dict[str, Any], title: str) -> None:
    rows = [
        (name, f"{value:.4g}", f"{fit['standard_errors'].get(name, float('nan')):.3g}")
        for name, value in fit["params"].items()
    ]
    print_table(
        [t("analytics.cli.parameter"), t("analytics.cli.estimate"), t("analytics.cli.se")],
        rows,
        title=f"{title} — {t('analytics.cli.loglik')} {fit['loglik']:.1f}, n = {fit['n']}",
    )
    for warning in fit["warnings"]:
        say("analytics.cli.warning", text=warning)


# --- the store's other analyses ----------------------------------------------------------------


def _store_frames(tenant: str | None, *names: str) -> tuple[dict[str, pl.DataFrame], str, Any]:
    """Frames read from the tenant's store (by ``analytics.data`` name), its time zone, and
    the active program (None without one)."""
    state = app_state()
    with unit_of_work(tenant) as unit:
        timezone = _timezone(unit.session, unit.now, state.settings.timezone)
        try:
            version = program_service.active_version(unit.session, as_of=unit.now)
            program = program_service.definition_of(version)
        except program_service.NoActiveProgram:
            program = None
        frames = {
            name: getattr(data, f"{name}_from_store")(unit.session, timezone=timezone)
            for name in names
        }
    return frames, timezone, program


def _today() -> date:
    return app_state().clock().date()


@analyze_app.command("rfm")
def analyze_rfm(
    as_of: str | None = typer.Option(None, "--as-of", help="Day of the analysis (default today)."),
    compare_to: str | None = typer.Option(
        None, "--compare-to", help="An earlier day: movement between segments. / 对比日期。"
    ),
    transactions: Path | None = TransactionsOption,
    tenant: str | None = TenantOption,
    out: Path | None = OutOption,
    as_json: bool = JsonOption,
) -> None:
    """RFM scores and segments (重要价值客户 ...), sizes and value shares. / RFM 分群。"""
    from memberlab.analytics.columnar import Prepared
    from memberlab.analytics.rfm import rfm_table, segment_movement, segment_summary

    loaded, timezone = load_transactions(transactions, tenant)
    frame = Prepared(loaded)  # the table and the movement share the days and member codes
    day = _day(as_of, "as_of") or _today()
    table = rfm_table(frame, as_of=day, time_zone=timezone)
    summary = segment_summary(table)
    frames = {"rfm": table, "segments": summary}
    result: dict[str, Any] = {"as_of": day.isoformat(), "members": table.height}
    if compare_to is not None:
        movement = segment_movement(
            frame,
            date_a=_day(compare_to, "compare_to"),  # type: ignore[arg-type]
            date_b=day,
            time_zone=timezone,
        )
        frames["movement"] = movement.long
        result["movement"] = movement.long.to_dicts()
    result["segments"] = summary.to_dicts()
    result["files"] = _write(out, frames, timezone)
    if as_json:
        print_json(result)
        return
    name = "name_zh" if current_language() == "zh-CN" else "name_en"
    print_table(
        [t("analytics.cli.segment"), t("analytics.cli.members"), t("analytics.cli.value_share")],
        [(r[name], r["members"], f"{100 * r['value_share']:.1f}%") for r in result["segments"]],
        title=t("analytics.cli.rfm_title", as_of=result["as_of"], members=table.height),
    )


@analyze_app.command("cohorts")
def analyze_cohorts(
    by: str = typer.Option(
        "join_month", "--by", help="join_month | first_channel | first_store | tier"
    ),
    tenant: str | None = TenantOption,
    out: Path | None = OutOption,
    as_json: bool = JsonOption,
) -> None:
    """Retention and revenue by cohort, as matrices. / 同期群留存与收入矩阵。"""
    from memberlab.analytics.cohorts import cohort_matrices

    frames, timezone, _ = _store_frames(tenant, "transactions", "members")
    matrices = cohort_matrices(
        frames["transactions"], members=frames["members"], by=by, as_of=_today(), time_zone=timezone
    )
    written = _write(out, {"retention": matrices.retention, "revenue": matrices.revenue}, timezone)
    if as_json:
        print_json(
            {"by": by, "last_month": matrices.last_month,
             "retention": matrices.retention.to_dicts(), "files": written}
        )  # fmt: skip
        return
    shown = matrices.retention.tail(24)
    rows = [[f"{v:.0%}" if isinstance(v, float) else v for v in row[:15]] for row in shown.rows()]
    print_table(shown.columns[:15], rows, title=t("analytics.cli.cohorts"))


@analyze_app.command("tiers")
def analyze_tiers(
    date_a: str = typer.Option(..., "--from", help="First day of the migration. / 起始日。"),
    date_b: str | None = typer.Option(None, "--to", help="Second day (default today)."),
    tenant: str | None = TenantOption,
    out: Path | None = OutOption,
    as_json: bool = JsonOption,
) -> None:
    """Tier migration between two days and members near the next tier. / 等级迁移。"""
    from memberlab.analytics.tiers import members_near_next_tier, tier_migration

    frames, timezone, program = _store_frames(tenant, "tier_history", "members", "transactions")
    tiers = [tier.code for tier in program.tiers] if program else None
    day_b = _day(date_b, "to") or _today()
    migration = tier_migration(
        frames["tier_history"],
        date_a=_day(date_a, "from"),  # type: ignore[arg-type]
        date_b=day_b,
        members=frames["members"],
        entry_tier=tiers[0] if tiers else None,
        tiers=tiers,
        time_zone=timezone,
    )
    near = (
        members_near_next_tier(
            frames["transactions"],
            [
                (tier.code, float(tier.threshold))
                for tier in program.tiers
                if not tier.invitation_only
            ],
            as_of=day_b,
            time_zone=timezone,
        )
        if program
        else pl.DataFrame()
    )
    written = _write(out, {"migration": migration.long, "near_next_tier": near}, timezone)
    if as_json:
        print_json(
            {"migration": migration.long.to_dicts(), "near_next_tier": near.height,
             "files": written}
        )  # fmt: skip
        return
    print_table(migration.wide.columns, migration.wide.rows(), title=t("analytics.cli.migration"))


@analyze_app.command("points")
def analyze_points(
    tenant: str | None = TenantOption,
    out: Path | None = OutOption,
    as_json: bool = JsonOption,
) -> None:
    """Issuance, redemption and breakage by cohort; forecast; IFRS 15 deferred revenue.
    / 积分发放、兑换与过期；预测；IFRS 15 递延收入。"""
    from memberlab.analytics.points import deferred_revenue, points_cohorts, points_forecast

    frames, timezone, program = _store_frames(tenant, "ledger", "lots")
    cohorts = points_cohorts(frames["ledger"], as_of=_today(), time_zone=timezone)
    forecast = points_forecast(cohorts, lots=frames["lots"], time_zone=timezone)
    value = program.points.value_per_point if program else 0
    view = deferred_revenue(
        frames["ledger"], value_per_point=value, as_of=_today(), lots=frames["lots"],
        time_zone=timezone, cohorts=cohorts,
    )  # fmt: skip
    written = _write(out, {"cohorts": cohorts.cohorts, "forecast": forecast.by_month}, timezone)
    result = {
        "outstanding_points": view.outstanding_points,
        "value_per_point": str(view.value_per_point),
        "expected_redemption_rate": round(view.expected_redemption_rate, 4),
        "expected_breakage_rate": view.expected_breakage_rate,
        "face_value": str(view.face_value),
        "deferred_revenue": str(view.deferred_revenue),
        "cohorts": cohorts.cohorts.to_dicts(),
        "files": written,
    }
    if as_json:
        print_json(result)
        return
    shown = ("outstanding_points", "face_value", "expected_redemption_rate", "deferred_revenue")
    say("analytics.cli.ifrs15", **{k: result[k] for k in shown})


@analyze_app.command("churn")
def analyze_churn(
    horizon_days: int = typer.Option(90, "--horizon-days", help="Churn: no purchase within."),
    tenant: str | None = TenantOption,
    out: Path | None = OutOption,
    as_json: bool = JsonOption,
) -> None:
    """Churn risk: gradient boosting validated on a later period (AUC, calibration,
    drivers). / 流失风险模型（时间外验证）。"""
    from memberlab.analytics.churn import churn_model

    frames, timezone, program = _store_frames(
        tenant, "transactions", "members", "tier_history", "ledger", "responses"
    )
    model = churn_model(
        frames["transactions"],
        horizon_days=horizon_days,
        members=frames["members"],
        tier_history=frames["tier_history"],
        tiers=[tier.code for tier in program.tiers] if program else None,
        ledger=frames["ledger"],
        responses=frames["responses"],
    )
    written = _write(
        out,
        {"scores": model.scores, "drivers": model.drivers, "calibration": model.calibration},
        timezone,
    )
    result = {
        "train_cutoff": model.train_cutoff.isoformat(),
        "validation_cutoff": model.validation_cutoff.isoformat(),
        "auc": model.auc,
        "brier": model.brier,
        "validation_churn_rate": model.validation_churn_rate,
        "drivers": model.drivers.head(10).to_dicts(),
        "files": written,
    }
    if as_json:
        print_json(result)
        return
    say("analytics.cli.churn", auc=f"{model.auc:.3f}", brier=f"{model.brier:.3f}",
        train=result["train_cutoff"], validation=result["validation_cutoff"])  # fmt: skip
    print_table(
        [t("analytics.cli.feature"), t("analytics.cli.importance")],
        [(r["feature"], f"{r['importance']:.4f}") for r in result["drivers"]],
    )
